use proptest::prelude::*;

use super::*;
use crate::rule::ast::{MatchOp, Schema, Type};
use crate::rule::check::check;
use crate::rule::print::print;
use crate::rule::print::tests::{arb_expr, erase};

fn schema() -> Schema {
    Schema::new(
        [
            ("id", Type::Int),
            ("age", Type::Int),
            ("score", Type::Float),
            ("country", Type::String),
            ("email", Type::String),
            ("first name", Type::String),
            ("and", Type::String),
            ("vip", Type::Bool),
            ("signup", Type::Date),
            ("last_order", Type::DateTime),
        ]
        .map(|(n, t)| (n.to_owned(), t)),
    )
}

fn lists() -> Vec<String> {
    vec!["suppressed".to_owned(), "newsletter".to_owned()]
}

/// The first error of parsing and checking `text`.
fn error(text: &str) -> RuleError {
    match parse(text).and_then(|e| check(e, &schema(), Some(&lists()))) {
        Ok(rule) => panic!("{text:?} is valid: {}", print(rule.expr())),
        Err(e) => e,
    }
}

/// A compact tree: `(and (>= age 18) (in country "NL" "BE"))`.
fn tree(expr: &Expr) -> String {
    let list = |head: &str, parts: Vec<&Expr>| {
        let mut s = format!("({head}");
        for p in parts {
            s.push(' ');
            s.push_str(&tree(p));
        }
        s.push(')');
        s
    };
    let not = |negated: bool, name: &str| {
        if negated {
            format!("not-{name}")
        } else {
            name.to_owned()
        }
    };
    match &expr.kind {
        ExprKind::Literal(_) | ExprKind::Column(_) => print(expr),
        ExprKind::Now => "now".to_owned(),
        ExprKind::Lower(x) => list("lower", vec![x]),
        ExprKind::Shift { base, sign, by } => {
            list(if *sign == Sign::Plus { "+" } else { "-" }, vec![base, by])
        }
        ExprKind::Compare { op, left, right } => list(op.symbol(), vec![left, right]),
        ExprKind::In {
            value,
            items,
            negated,
        } => list(
            &not(*negated, "in"),
            std::iter::once(&**value).chain(items).collect(),
        ),
        ExprKind::Between {
            value,
            low,
            high,
            negated,
        } => list(&not(*negated, "between"), vec![value, low, high]),
        ExprKind::IsNull { value, negated } => list(
            if *negated { "is-not-null" } else { "is-null" },
            vec![value],
        ),
        ExprKind::Match {
            op,
            ignore_case,
            value,
            pattern,
        } => {
            let name = match op {
                MatchOp::Contains => "contains",
                MatchOp::StartsWith => "starts_with",
                MatchOp::EndsWith => "ends_with",
            };
            list(
                &format!("{}{name}", if *ignore_case { "i" } else { "" }),
                vec![value, pattern],
            )
        }
        ExprKind::InList(name) => format!("(in_list {name:?})"),
        ExprKind::Not(x) => list("not", vec![x]),
        ExprKind::And(l, r) => list("and", vec![l, r]),
        ExprKind::Or(l, r) => list("or", vec![l, r]),
    }
}

const VALID: &[&str] = &[
    r#"country in ("NL", "BE") and age >= 18 and last_order > now() - 90d and not in_list("suppressed")"#,
    "vip",
    "vip and age >= 18",
    r#"age >= 18 AND NOT vip OR Country_Is_Not_A_Column_Here_But_Parses = "NL""#,
    "not vip or score < 2.5",
    r#"(country = "NL" or country = "BE") and vip = true"#,
    "age between 18 and 65",
    "age not between 18 and 65 and score between -1 and 1.5",
    "signup is null or last_order is not null",
    r#"email ends_with "@example.com""#,
    r#"email iends_with "@EXAMPLE.com" or email icontains "sale" or email istarts_with "info""#,
    r#"lower(email) contains "sale" and country starts_with "N""#,
    "signup >= 2026-01-31",
    "last_order < 2026-01-31T12:00:00Z",
    "last_order >= 2026-01-31t12:00:00.5+01:00",
    "signup + 30d > now()",
    "last_order > now() - 12h - 30m and last_order <= now() + 2w - 45s",
    "score > -0.5 and score < 1e3 and score != 2.5E-3",
    "age != -9223372036854775808 and age <> 9223372036854775807",
    r#"`first name` = "Zoë \"Z\" \\ \u{1F600}\n\t""#,
    r#"country not in ("NL", "BE", "DE",)"#,
    "age = 1 or age = 2 or age = 3 or age = 4 or age = 5",
    "not not vip",
    "((age > 1))",
    "true",
    r#"id in (1, 2, 3) and in_list("newsletter")"#,
    "last_order between 2026-01-01 and now() + 2w",
    "signup = last_order and vip in (true)",
    "age >= 18\n\tand\n\tvip",
    r#"`and` = "x" and lower(`first name`) = lower("ÉMILE")"#,
    "NOW() > LOWER_CASE_IS_A_COLUMN and LOWER(email) = email",
];

#[test]
fn valid_rules() {
    let mut out = String::new();
    for text in VALID {
        let expr = parse(text).unwrap_or_else(|e| panic!("{}", e.render(text)));
        let printed = print(&expr);
        assert_eq!(erase(&parse(&printed).unwrap()), erase(&expr), "{printed}");
        let checked = match check(expr.clone(), &schema(), Some(&lists())) {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.render(text),
        };
        out.push_str(&format!(
            "rule:  {text}\nprint: {printed}\ntree:  {}\ncheck: {checked}\n\n",
            tree(&expr)
        ));
    }
    insta::assert_snapshot!(out);
}

/// Invalid rules: `(label, text)`; the label is the text itself when empty.
fn invalid() -> Vec<(String, String)> {
    let short = [
        "agee >= 18",
        "AGE >= 18",
        "age >=",
        "age >= )",
        "age >= 18)",
        "(age >= 18",
        "(age >= 18 country = \"NL\")",
        "country = \"NL",
        "country = \"N\\qL\"",
        "country = \"\\u{110000}\"",
        "age between 18 65",
        "age between 18 and",
        "signup > \"2026-01-31x\"",
        "signup > 2026-02-30",
        "last_order > 2026-01-31T25:00:00Z",
        "age = null",
        "age != null",
        "country in (\"NL\", null)",
        "90d > 3",
        "age + 30d > 5",
        "now() - 5 > signup",
        "vip < true",
        "vip = 1",
        "country in (email)",
        "country in ()",
        "country in \"NL\"",
        "country in (\"NL\" \"BE\")",
        "18 is null",
        "signup is 5",
        "age contains \"1\"",
        "email contains 5",
        "lower(age) = \"x\"",
        "in_list(\"supressed\")",
        "in_list(suppressed)",
        "in_list(\"\")",
        "age",
        "\"NL\"",
        "age >= 18 and score",
        "not email",
        "age >= 99999999999999999999",
        "age >= 9223372036854775808",
        "score > 1e999",
        "last_order > now() - 99999999999999w",
        "signup + 1.5d > now()",
        "age = 18 = 19",
        "age == 18",
        "country = 'NL'",
        "age >= 18 country = \"NL\"",
        "age >= 18 && vip",
        "lowr(email) = \"x\"",
        "foo(1)",
        "now(1) > signup",
        "in = 5",
        "née = 1",
        "age not 5",
        "`` = 1",
        "`first name = 1",
        "5x = 1",
        "age > -x",
        "age % 2 = 0",
        "vip and",
        "age >= or vip",
        "",
        "   ",
    ];
    let mut cases: Vec<(String, String)> = short
        .iter()
        .map(|t| (String::new(), (*t).to_owned()))
        .collect();
    let mut long = "age >= 18 and\n".repeat(MAX_TEXT_BYTES / 14 + 1);
    long.push_str("vip");
    cases.push((format!("{} bytes of text", long.len()), long));
    let parens = format!(
        "{}vip{}",
        "(\n".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    cases.push((format!("{} nested parentheses", MAX_DEPTH + 1), parens));
    let nots = format!("{}vip", "not\n".repeat(MAX_DEPTH + 1));
    cases.push((format!("{} nested \"not\"", MAX_DEPTH + 1), nots));
    let shifts = format!("signup > now(){}", "\n- 1d".repeat(MAX_DEPTH + 1));
    cases.push((format!("{} chained \"-\"", MAX_DEPTH + 1), shifts));
    let items: Vec<String> = (0..=MAX_IN_ITEMS).map(|i| i.to_string()).collect();
    let big_in = format!("age in (\n{}\n)", items.join(",\n"));
    cases.push((format!("{} values in \"in\"", MAX_IN_ITEMS + 1), big_in));
    cases
}

#[test]
fn invalid_rules() {
    let mut out = String::new();
    for (label, text) in invalid() {
        let err = error(&text);
        let label = if label.is_empty() {
            format!("{text:?}")
        } else {
            label
        };
        out.push_str(&format!(
            "── {label} (at {})\n{}\n\n",
            err.span,
            err.render(&text)
        ));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn limits_are_exact() {
    // 64 levels of parentheses, 64 "not", 10,000 values and 65,536 bytes all pass.
    let parens = format!("{}vip{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    parse(&parens).unwrap();
    parse(&format!("{}vip", "not ".repeat(MAX_DEPTH))).unwrap();
    let items: Vec<String> = (0..MAX_IN_ITEMS).map(|i| i.to_string()).collect();
    let expr = parse(&format!("age in ({})", items.join(","))).unwrap();
    check(expr, &schema(), None).unwrap();
    let mut text = "vip".to_owned();
    text.push_str(&" ".repeat(MAX_TEXT_BYTES - text.len()));
    parse(&text).unwrap();
    text.push(' ');
    assert!(
        parse(&text)
            .unwrap_err()
            .message
            .starts_with("the rule is too long")
    );
}

#[test]
fn long_chains_make_shallow_trees() {
    fn depth(e: &Expr) -> usize {
        match &e.kind {
            ExprKind::And(l, r) | ExprKind::Or(l, r) => 1 + depth(l).max(depth(r)),
            ExprKind::Not(x) => 1 + depth(x),
            _ => 1,
        }
    }
    let text = vec!["vip"; 9_000].join(" or ");
    let expr = parse(&text).unwrap();
    assert_eq!(depth(&expr), 15); // 14 levels of "or" over the leaves
    assert_eq!(expr.span, Span::new(0, text.len()));
}

#[test]
fn spans_cover_the_source() {
    let text = r#"not (age >= 18) and country in ("NL") and lower(`first name`) contains "x""#;
    let expr = parse(text).unwrap();
    let ExprKind::And(left, right) = &expr.kind else {
        panic!()
    };
    assert_eq!(expr.span, Span::new(0, text.len()));
    let ExprKind::And(not, _) = &left.kind else {
        panic!()
    };
    assert_eq!(
        &text[not.span.start as usize..not.span.end as usize],
        "not (age >= 18"
    );
    assert_eq!(
        &text[right.span.start as usize..right.span.end as usize],
        r#"lower(`first name`) contains "x""#
    );
    let expr = parse("x > -5").unwrap();
    let ExprKind::Compare { right, .. } = &expr.kind else {
        panic!()
    };
    assert_eq!(right.span, Span::new(4, 6));
    assert_eq!(right.kind, ExprKind::Literal(Literal::Int(-5)));
}

/// Fragments of rules, glued at random.
fn token_soup() -> impl Strategy<Value = String> {
    let fragment = prop::sample::select(vec![
        "age",
        "vip",
        "`x y`",
        "\"NL\"",
        "\"",
        "`",
        "(",
        ")",
        ",",
        "=",
        "!=",
        "<",
        ">=",
        "+",
        "-",
        "and",
        "or",
        "not",
        "in",
        "between",
        "is",
        "null",
        "true",
        "contains",
        "iends_with",
        "now",
        "lower",
        "in_list",
        "18",
        "-5",
        "2.5",
        "1e3",
        "30d",
        "2026-01-31",
        "2026-01-31T12:00:00Z",
        "2026-13-01",
        "\\",
        "\\u{",
        "é",
        " ",
        "\n",
    ]);
    prop::collection::vec((fragment, any::<bool>()), 0..40).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(f, space)| if space { format!("{f} ") } else { f.to_owned() })
            .collect()
    })
}

fn never_panics(text: &str) -> Result<(), TestCaseError> {
    match parse(text) {
        Ok(expr) => {
            let printed = print(&expr);
            let again = parse(&printed).map_err(|e| TestCaseError::fail(e.render(&printed)))?;
            prop_assert_eq!(erase(&again), erase(&expr));
            let _ = check(expr, &schema(), Some(&lists()));
        }
        Err(e) => {
            prop_assert!(e.span.start <= e.span.end && e.span.end as usize <= text.len());
            prop_assert!(text.is_char_boundary(e.span.start as usize));
            prop_assert!(text.is_char_boundary(e.span.end as usize));
            prop_assert!(!e.message.is_empty());
            let _ = e.render(text);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,60}") {
        never_panics(&text)?;
    }

    #[test]
    fn token_soups_never_panic(text in token_soup()) {
        never_panics(&text)?;
    }
}

#[test]
fn examples_of_the_documentation_check() {
    let schema = Schema::new(
        [
            ("age", Type::Int),
            ("score", Type::Float),
            ("country", Type::String),
            ("city", Type::String),
            ("email", Type::String),
            ("phone", Type::String),
            ("first name", Type::String),
            ("e-mail", Type::String),
            ("and", Type::String),
            ("née", Type::String),
            ("vip", Type::Bool),
            ("signup", Type::Date),
            ("last_order", Type::DateTime),
        ]
        .map(|(n, t)| (n.to_owned(), t)),
    );
    let examples = [
        r#"country in ("NL", "BE") and age >= 18 and last_order > now() - 90d and not in_list("suppressed")"#,
        r#"country = "NL""#,
        r#"country != "NL""#,
        r#"country <> "NL""#,
        "age >= 18",
        "score < 2.5",
        "signup > 2026-01-31",
        r#"country in ("NL", "BE", "DE")"#,
        r#"country not in ("NL", "BE")"#,
        "age between 18 and 65",
        "age not between 0 and 17",
        "phone is null",
        "phone is not null",
        r#"email contains "sale""#,
        r#"city starts_with "Amster""#,
        r#"email ends_with "@example.com""#,
        r#"email icontains "SALE""#,
        r#"lower(email) contains "sale""#,
        "vip",
        "not vip",
        "vip = false",
        "last_order > now() - 90d",
        "signup + 30d < now()",
        r#"in_list("newsletter")"#,
        r#"not in_list("suppressed")"#,
        r#"`first name` = "Emma""#,
        r#"`e-mail` ends_with "@example.com""#,
        r#"`and` = "x""#,
        "`née` is not null",
        "score between 0 and 2.5",
        "signup < last_order",
        "signup >= 2026-01-01",
        "last_order < 2026-01-31T12:00:00Z",
        "last_order < 2026-01-31T12:00:00.5+01:00",
        "vip = true",
        r#"country in ("NL", "BE",)"#,
        r#"email iends_with "@EXAMPLE.COM""#,
        r#"lower(city) = "amsterdam""#,
        "signup + 30d > now()",
        "last_order < now() - 1w - 12h",
        r#"not (email contains "test")"#,
        r#"country IN ("NL","BE",) AND  age>=18"#,
    ];
    for text in examples {
        let lists = lists();
        let result = parse(text).and_then(|e| check(e, &schema, Some(&lists)));
        if let Err(e) = result {
            panic!("{}", e.render(text));
        }
    }
}

// Print, then parse: the printer's canonical text reads back as the same tree.

fn round_trip(text: &str) -> String {
    let expr = parse(text).unwrap_or_else(|e| panic!("{}", e.render(text)));
    let printed = print(&expr);
    let again = parse(&printed).unwrap_or_else(|e| panic!("{}", e.render(&printed)));
    assert_eq!(erase(&again), erase(&expr), "{printed}");
    printed
}

#[test]
fn prints_canonical_text() {
    assert_eq!(
        round_trip(
            "COUNTRY IN (\"NL\",\"BE\",) AND  age>=18 And last_order>now()-90d and NOT in_list(\"suppressed\")"
        ),
        "COUNTRY in (\"NL\", \"BE\") and age >= 18 and last_order > now() - 90d and not in_list(\"suppressed\")"
    );
    assert_eq!(round_trip("(a or b) and c"), "(a or b) and c");
    assert_eq!(round_trip("a or (b and c)"), "a or b and c");
    assert_eq!(round_trip("not (a = 1)"), "not a = 1");
    assert_eq!(round_trip("(not a) = b"), "(not a) = b");
    assert_eq!(round_trip("a - (b - 1d)"), "a - (b - 1d)");
    assert_eq!(round_trip("(a - b) - 1d"), "a - b - 1d");
    assert_eq!(round_trip("x - -5"), "x - -5");
    assert_eq!(
        round_trip("`first name` = \"a\\\"b\\\\c\\n\\u{7}é\""),
        "`first name` = \"a\\\"b\\\\c\\né\"".replace('é', "\\u{7}é")
    );
    assert_eq!(
        round_trip("`and` or `now` or `Lower` or `x\\``"),
        "`and` or `now` or `Lower` or `x\\``"
    );
}

#[test]
fn chains_keep_their_shape() {
    // Flat chains are the parser's balanced trees; other shapes keep parentheses.
    assert_eq!(
        round_trip("a and b and c and d and e"),
        "a and b and c and d and e"
    );
    assert_eq!(round_trip("a and (b and c)"), "a and (b and c)");
    assert_eq!(round_trip("(a and b) and c"), "a and b and c");
    assert_eq!(
        round_trip("((a and b) and c) and d"),
        "(a and b and c) and d"
    );
    assert_eq!(round_trip("a or b or (c or d)"), "a or b or c or d");
    assert_eq!(round_trip("a or (b or c or d)"), "a or (b or c or d)");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn print_then_parse_keeps_the_tree(expr in arb_expr()) {
        let printed = print(&expr);
        let parsed = parse(&printed).map_err(|e| TestCaseError::fail(e.render(&printed)))?;
        prop_assert_eq!(erase(&parsed), erase(&expr), "{}", printed);
        // Printing is canonical: the printed text prints as itself.
        prop_assert_eq!(print(&parsed), printed);
    }
}
