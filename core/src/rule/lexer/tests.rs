use super::*;
use crate::rule::ast::MatchOp;

fn kinds(text: &str) -> Vec<TokenKind> {
    lex(text).into_iter().map(|t| t.kind).collect()
}

fn error(text: &str) -> RuleError {
    match lex(text).into_iter().find_map(|t| match t.kind {
        TokenKind::Error(e) => Some(e),
        _ => None,
    }) {
        Some(e) => e,
        None => panic!("no error in {text:?}"),
    }
}

#[test]
fn operators_and_words() {
    use TokenKind::*;
    assert_eq!(
        kinds("a=b!=c<>d<e<=f>g>=h+-(),"),
        vec![
            Ident("a".into()),
            Eq,
            Ident("b".into()),
            Ne,
            Ident("c".into()),
            Ne,
            Ident("d".into()),
            Lt,
            Ident("e".into()),
            Le,
            Ident("f".into()),
            Gt,
            Ident("g".into()),
            Ge,
            Ident("h".into()),
            Plus,
            Minus,
            LParen,
            RParen,
            Comma,
            Eof
        ]
    );
    assert_eq!(
        kinds("AND Or nOt IStarts_With in_list"),
        vec![
            Keyword(super::Keyword::And),
            Keyword(super::Keyword::Or),
            Keyword(super::Keyword::Not),
            Keyword(super::Keyword::Match(MatchOp::StartsWith, true)),
            Ident("in_list".into()),
            Eof
        ]
    );
}

#[test]
fn numbers_durations_and_dates() {
    use TokenKind::*;
    assert_eq!(
        kinds("18 2.5 1e3 1E-2 007"),
        vec![Int(18), Float(2.5), Float(1000.0), Float(0.01), Int(7), Eof]
    );
    assert_eq!(
        kinds("2w 30d 12h 15m 45s"),
        vec![
            Duration(14 * 86_400_000_000),
            Duration(30 * 86_400_000_000),
            Duration(12 * 3_600_000_000),
            Duration(15 * 60_000_000),
            Duration(45_000_000),
            Eof
        ]
    );
    assert_eq!(
        kinds("2026-01-31"),
        vec![Date(crate::time::Date::parse(b"2026-01-31").unwrap()), Eof]
    );
    assert_eq!(
        kinds("2026-01-31T12:00:00+01:00)"),
        vec![
            DateTime(Timestamp::parse(b"2026-01-31T11:00:00Z").unwrap()),
            RParen,
            Eof
        ]
    );
    assert_eq!(kinds("18446744073709551615"), vec![Int(u64::MAX), Eof]);
}

#[test]
fn strings_and_quoted_names() {
    use TokenKind::*;
    assert_eq!(
        kinds(r#""a\"b\\c\n\t\r\u{1F600}" `first name` `a\`b`"#),
        vec![
            Str("a\"b\\c\n\t\r😀".into()),
            Quoted("first name".into()),
            Quoted("a`b".into()),
            Eof
        ]
    );
    let tokens = lex("  \"é\"  ");
    assert_eq!(tokens[0].span, Span::new(2, 6));
    assert_eq!(tokens[1].span, Span::new(8, 8));
}

#[test]
fn errors_have_spans() {
    let e = error("x = \"abc");
    assert_eq!(
        (e.span, e.message.as_str()),
        (Span::new(4, 8), "unterminated string — add the closing \"")
    );
    let e = error(r#"x = "a\qb""#);
    assert_eq!(e.span, Span::new(6, 8));
    assert!(e.message.starts_with("unknown escape \"\\q\""));
    assert_eq!(error(r#""\u{110000}""#).span, Span::new(1, 11));
    assert_eq!(error(r#""\u12""#).span, Span::new(1, 3));
    assert_eq!(
        error("2026-02-30").message,
        "invalid date \"2026-02-30\": day does not exist in that month"
    );
    assert_eq!(error("18abc").span, Span::new(0, 5));
    assert_eq!(error("1.5d").span, Span::new(0, 4));
    assert_eq!(
        error("99999999999999999999").message,
        "whole number too large (at most 9223372036854775807)"
    );
    assert_eq!(error("1e999").message, "number too large");
    assert_eq!(error("15250284452472w").message, "duration too long");
    assert_eq!(error("a % b").span, Span::new(2, 3));
    assert_eq!(error("née").span, Span::new(0, 4));
    assert_eq!(error("a\u{a0}b").message, "unexpected character U+00A0");
    assert_eq!(
        error("``").message,
        "a column name in backticks cannot be empty"
    );
    // Nothing after the first error.
    assert_eq!(lex("'x' = 1").len(), 2);
}
