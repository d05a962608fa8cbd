//! Names in rule text, shared by the lexer, the checker and the printer (a leaf: it uses none
//! of them): the keywords and function names, which names may be written bare, and how a name
//! is quoted in a message.

use super::ast::MatchOp;

/// A keyword (matched without regard to case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    And,
    Or,
    Not,
    In,
    Between,
    Is,
    Null,
    True,
    False,
    /// `contains`, `starts_with`, `ends_with` and their `i`-variants (`true`).
    Match(MatchOp, bool),
}

impl Keyword {
    /// The keyword of a bare word, if it is one.
    pub(crate) fn of(word: &str) -> Option<Keyword> {
        let lower = word.to_ascii_lowercase();
        Some(match lower.as_str() {
            "and" => Keyword::And,
            "or" => Keyword::Or,
            "not" => Keyword::Not,
            "in" => Keyword::In,
            "between" => Keyword::Between,
            "is" => Keyword::Is,
            "null" => Keyword::Null,
            "true" => Keyword::True,
            "false" => Keyword::False,
            "contains" => Keyword::Match(MatchOp::Contains, false),
            "icontains" => Keyword::Match(MatchOp::Contains, true),
            "starts_with" => Keyword::Match(MatchOp::StartsWith, false),
            "istarts_with" => Keyword::Match(MatchOp::StartsWith, true),
            "ends_with" => Keyword::Match(MatchOp::EndsWith, false),
            "iends_with" => Keyword::Match(MatchOp::EndsWith, true),
            _ => return None,
        })
    }

    /// The keyword as printed.
    pub(crate) fn text(self) -> &'static str {
        match self {
            Keyword::And => "and",
            Keyword::Or => "or",
            Keyword::Not => "not",
            Keyword::In => "in",
            Keyword::Between => "between",
            Keyword::Is => "is",
            Keyword::Null => "null",
            Keyword::True => "true",
            Keyword::False => "false",
            Keyword::Match(MatchOp::Contains, false) => "contains",
            Keyword::Match(MatchOp::Contains, true) => "icontains",
            Keyword::Match(MatchOp::StartsWith, false) => "starts_with",
            Keyword::Match(MatchOp::StartsWith, true) => "istarts_with",
            Keyword::Match(MatchOp::EndsWith, false) => "ends_with",
            Keyword::Match(MatchOp::EndsWith, true) => "iends_with",
        }
    }
}

/// The functions: `now()`, `lower(x)`, `in_list("name")` (names matched without regard to case).
pub(crate) const FUNCTIONS: [&str; 3] = ["now", "lower", "in_list"];

/// Whether `b` may continue a bare identifier.
pub(crate) fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `name` can be written without backticks: `[A-Za-z_][A-Za-z0-9_]*`, not a keyword or
/// function name.
pub(crate) fn is_bare_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    matches!(bytes.first(), Some(b) if b.is_ascii_alphabetic() || *b == b'_')
        && bytes.iter().all(|&b| is_ident_byte(b))
        && Keyword::of(name).is_none()
        && !FUNCTIONS.iter().any(|f| f.eq_ignore_ascii_case(name))
}

/// `name` for a message: quoted, long names shortened.
pub(crate) fn quoted(name: &str) -> String {
    const MAX: usize = 40;
    if name.chars().count() <= MAX {
        format!("\"{name}\"")
    } else {
        let head: String = name.chars().take(MAX).collect();
        format!("\"{head}…\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names() {
        assert!(is_bare_name("age"));
        assert!(is_bare_name("_x9"));
        assert!(!is_bare_name("AND"));
        assert!(!is_bare_name("now"));
        assert!(!is_bare_name("first name"));
        assert!(!is_bare_name("9x"));
        assert!(!is_bare_name(""));
    }
}
