//! Rule errors: a byte span of the rule text and a message a marketer understands.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ast::Span;

/// What is wrong with a rule, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} (at {span})")]
pub struct RuleError {
    /// The part of the rule text to point at.
    pub span: Span,
    /// Lower-case, no trailing period, e.g. `unknown column "agee" — did you mean "age"?`.
    pub message: String,
}

impl RuleError {
    /// An error at `span`.
    pub fn new(span: Span, message: impl Into<String>) -> RuleError {
        RuleError {
            span,
            message: message.into(),
        }
    }

    /// The message under the offending line of `text`, with carets under the span:
    ///
    /// ```text
    /// agee >= 18
    /// ^^^^ unknown column "agee" — did you mean "age"?
    /// ```
    pub fn render(&self, text: &str) -> String {
        let floor = |mut i: usize| {
            i = i.min(text.len());
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let start = floor(self.span.start as usize);
        let end = floor(self.span.end as usize).max(start);
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = &text[line_start..line_end];
        let lead = text[line_start..start].chars().count();
        let width = text[start..end.min(line_end)].chars().count().max(1);
        format!(
            "{line}\n{}{} {}",
            " ".repeat(lead),
            "^".repeat(width),
            self.message
        )
    }
}

impl fmt::Display for super::ast::Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carets_sit_under_the_span() {
        let err = RuleError::new(
            Span::new(0, 4),
            "unknown column \"agee\" — did you mean \"age\"?",
        );
        assert_eq!(
            err.render("agee >= 18"),
            "agee >= 18\n^^^^ unknown column \"agee\" — did you mean \"age\"?"
        );
        // At the very end of the text: the caret goes right after it.
        let err = RuleError::new(Span::new(16, 16), "expected a value after \">=\"");
        assert_eq!(
            err.render("x = 1 and\nage >="),
            "age >=\n      ^ expected a value after \">=\""
        );
        // A span past the end is clamped, never a panic.
        assert!(
            RuleError::new(Span::new(99, 120), "m")
                .render("abc")
                .ends_with("^ m")
        );
        // Carets count characters, not bytes; a span inside a character is widened, not a panic.
        let err = RuleError::new(Span::new(7, 11), "m");
        assert_eq!(err.render("née = \"é\""), "née = \"é\"\n      ^^^ m");
        let err = RuleError::new(Span::new(9, 9), "m");
        assert_eq!(err.render("née = \"é\""), "née = \"é\"\n       ^ m");
    }
}
