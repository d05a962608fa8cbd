//! Segment rules: one small language to choose recipients, parsed once into a typed tree,
//! evaluated over the recipients' columns (browser and host) and compiled to SQL for the
//! database — and both paths agree (differential tests against SQLite).
//!
//! ```text
//! country in ("NL", "BE") and age >= 18 and last_order > now() - 90d and not in_list("suppressed")
//! ```
//!
//! - [`ast`]: the tree, [`ast::Schema`] (columns and types) and [`ast::Rule`] (a checked tree);
//! - `lexer`, [`parser`]: text → tree, with byte spans (`name`: keywords, bare names and quoting,
//!   shared by the lexer, the checker and the printer); [`check`]: types against a schema;
//!   [`print`](mod@print): tree → canonical text; [`error`]: [`RuleError`] with a caret rendering;
//! - [`eval`]: three-valued evaluation over a [`crate::recipients::RecipientsTable`];
//! - [`sql`]: a `WHERE` clause for SQLite or PostgreSQL with bound parameters;
//! - [`preview`]: counts, samples, breakdowns and overlaps for the browser and the server.
//!
//! The grammar with examples is in `docs/segment-rules.md`.

pub mod ast;
pub mod check;
pub mod error;
pub mod eval;
mod lexer;
mod name;
pub mod parser;
pub mod preview;
pub mod print;
pub mod sql;

pub use ast::{Rule, Schema, Span, Type};
pub use error::RuleError;

impl Rule {
    /// Parses `text` and type-checks it against `schema` (and, when given, the names of the
    /// lists `in_list` may refer to): the one way from rule text to something to evaluate or
    /// compile.
    pub fn new(text: &str, schema: &Schema, lists: Option<&[String]>) -> Result<Rule, RuleError> {
        check::check(parser::parse(text)?, schema, lists)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_checks_and_fails_helpfully() {
        let schema = Schema::new([
            ("id".to_owned(), Type::Int),
            ("country".to_owned(), Type::String),
            ("age".to_owned(), Type::Int),
            ("last_order".to_owned(), Type::DateTime),
        ]);
        let lists = ["suppressed".to_owned()];
        let text = r#"country in ("NL", "BE") and age >= 18 and last_order > now() - 90d and not in_list("suppressed")"#;
        assert!(Rule::new(text, &schema, Some(&lists)).is_ok());
        let err = Rule::new("agee >= 18", &schema, None).unwrap_err();
        assert_eq!(
            err.render("agee >= 18"),
            "agee >= 18\n^^^^ unknown column \"agee\" — did you mean \"age\"?"
        );
        let err = Rule::new(r#"in_list("supressed")"#, &schema, Some(&lists)).unwrap_err();
        assert!(
            err.message.contains("did you mean \"suppressed\""),
            "{}",
            err.message
        );
    }
}
