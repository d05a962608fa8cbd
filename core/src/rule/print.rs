//! Tree → canonical rule text: lower-case keywords, single spaces, parentheses only where
//! needed, strings with the shortest escapes. [`super::parser::parse`] of the text gives back
//! the same tree (spans aside), including the shape of `and` / `or` chains: a chain printed
//! without parentheses is exactly the balanced tree the parser builds, and any other shape is
//! printed with parentheses.
//!
//! Limits of the round trip (never met by parsed trees): a duration prints in whole seconds
//! (truncated), a non-finite float prints as Rust does (`NaN`, `inf`), an empty column name
//! prints as two backticks (which the parser rejects).

use std::fmt::Write as _;

use super::ast::{Expr, ExprKind, Literal, MatchOp, Sign};
use super::name::is_bare_name;

/// The canonical text of `expr`.
pub fn print(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr, Level::Or);
    out
}

/// Binding strength, loosest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Or,
    And,
    Not,
    Predicate,
    Additive,
    Primary,
}

fn level(expr: &Expr) -> Level {
    match expr.kind {
        ExprKind::Or(..) => Level::Or,
        ExprKind::And(..) => Level::And,
        ExprKind::Not(_) => Level::Not,
        ExprKind::Compare { .. }
        | ExprKind::In { .. }
        | ExprKind::Between { .. }
        | ExprKind::IsNull { .. }
        | ExprKind::Match { .. } => Level::Predicate,
        ExprKind::Shift { .. } => Level::Additive,
        ExprKind::Literal(_)
        | ExprKind::Column(_)
        | ExprKind::Now
        | ExprKind::Lower(_)
        | ExprKind::InList(_) => Level::Primary,
    }
}

/// Writes `expr`, in parentheses when it binds looser than `min`.
fn write_expr(out: &mut String, expr: &Expr, min: Level) {
    if level(expr) < min {
        out.push('(');
        write_expr(out, expr, Level::Or);
        out.push(')');
        return;
    }
    match &expr.kind {
        ExprKind::Literal(lit) => out.push_str(&literal(lit)),
        ExprKind::Column(name) => out.push_str(&column(name)),
        ExprKind::Now => out.push_str("now()"),
        ExprKind::Lower(inner) => {
            out.push_str("lower(");
            write_expr(out, inner, Level::Or);
            out.push(')');
        }
        ExprKind::InList(name) => {
            out.push_str("in_list(");
            out.push_str(&string(name));
            out.push(')');
        }
        ExprKind::Shift { base, sign, by } => {
            write_expr(out, base, Level::Additive);
            out.push_str(match sign {
                Sign::Plus => " + ",
                Sign::Minus => " - ",
            });
            write_expr(out, by, Level::Primary);
        }
        ExprKind::Compare { op, left, right } => {
            write_expr(out, left, Level::Additive);
            let _ = write!(out, " {} ", op.symbol());
            write_expr(out, right, Level::Additive);
        }
        ExprKind::In {
            value,
            items,
            negated,
        } => {
            write_expr(out, value, Level::Additive);
            out.push_str(if *negated { " not in (" } else { " in (" });
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(out, item, Level::Additive);
            }
            out.push(')');
        }
        ExprKind::Between {
            value,
            low,
            high,
            negated,
        } => {
            write_expr(out, value, Level::Additive);
            out.push_str(if *negated {
                " not between "
            } else {
                " between "
            });
            write_expr(out, low, Level::Additive);
            out.push_str(" and ");
            write_expr(out, high, Level::Additive);
        }
        ExprKind::IsNull { value, negated } => {
            write_expr(out, value, Level::Additive);
            out.push_str(if *negated { " is not null" } else { " is null" });
        }
        ExprKind::Match {
            op,
            ignore_case,
            value,
            pattern,
        } => {
            write_expr(out, value, Level::Additive);
            out.push(' ');
            if *ignore_case {
                out.push('i');
            }
            out.push_str(match op {
                MatchOp::Contains => "contains",
                MatchOp::StartsWith => "starts_with",
                MatchOp::EndsWith => "ends_with",
            });
            out.push(' ');
            write_expr(out, pattern, Level::Additive);
        }
        ExprKind::Not(inner) => {
            out.push_str("not ");
            write_expr(out, inner, Level::Not);
        }
        ExprKind::And(..) => write_chain(out, expr, Level::And),
        ExprKind::Or(..) => write_chain(out, expr, Level::Or),
    }
}

/// The two operands of `expr` when it is a node of the chain at `chain` (`And` or `Or`).
fn operands(expr: &Expr, chain: Level) -> Option<(&Expr, &Expr)> {
    match (&expr.kind, chain) {
        (ExprKind::And(l, r), Level::And) | (ExprKind::Or(l, r), Level::Or) => Some((l, r)),
        _ => None,
    }
}

/// Every maximal non-chain node under `expr`, left to right.
fn leaves<'e>(expr: &'e Expr, chain: Level, out: &mut Vec<&'e Expr>) {
    match operands(expr, chain) {
        Some((l, r)) => {
            leaves(l, chain, out);
            leaves(r, chain, out);
        }
        None => out.push(expr),
    }
}

/// Whether `expr` is the parser's balanced tree over `n` leaves.
fn is_balanced(expr: &Expr, chain: Level, n: usize) -> bool {
    match operands(expr, chain) {
        None => n == 1,
        Some((l, r)) => {
            let left = n.div_ceil(2);
            n >= 2 && is_balanced(l, chain, left) && is_balanced(r, chain, n - left)
        }
    }
}

/// An `and` / `or` node: the flat chain when balanced, else its two sides (a side that is
/// itself a chain node in parentheses).
fn write_chain(out: &mut String, expr: &Expr, chain: Level) {
    let keyword = if chain == Level::And { " and " } else { " or " };
    // Operands bind tighter than the chain; a nested node of the same chain gets parentheses.
    let operand = match chain {
        Level::And => Level::Not,
        _ => Level::And,
    };
    let mut items = Vec::new();
    leaves(expr, chain, &mut items);
    if is_balanced(expr, chain, items.len()) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(keyword);
            }
            write_expr(out, item, operand);
        }
    } else if let Some((l, r)) = operands(expr, chain) {
        write_expr(out, l, operand);
        out.push_str(keyword);
        write_expr(out, r, operand);
    }
}

/// A literal as rule text: `"NL"`, `18`, `-2.5`, `2026-01-31`, `30d`, `true`, `null`.
pub(crate) fn literal(lit: &Literal) -> String {
    match lit {
        Literal::Null => "null".to_owned(),
        Literal::Bool(b) => b.to_string(),
        Literal::Int(n) => n.to_string(),
        Literal::Float(x) => format!("{x:?}"),
        Literal::String(s) => string(s),
        Literal::Date(d) => d.to_string(),
        Literal::DateTime(t) => t.to_string(),
        Literal::Duration(micros) => duration(*micros),
    }
}

/// A duration in the largest unit that divides it (whole seconds, truncated).
fn duration(micros: i64) -> String {
    let seconds = micros / 1_000_000;
    let (amount, unit) = [(604_800, "w"), (86_400, "d"), (3_600, "h"), (60, "m")]
        .into_iter()
        .find(|&(size, _)| seconds != 0 && seconds % size == 0)
        .map_or((seconds, "s"), |(size, unit)| (seconds / size, unit));
    format!("{amount}{unit}")
}

/// A column name: bare when it can be, else in backticks.
fn column(name: &str) -> String {
    if is_bare_name(name) {
        name.to_owned()
    } else {
        quote(name, '`')
    }
}

/// Text in double quotes.
fn string(text: &str) -> String {
    quote(text, '"')
}

/// `text` between `delimiter`s, with `\` escapes for the delimiter, `\` and control characters.
fn quote(text: &str, delimiter: char) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(delimiter);
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == delimiter => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push(delimiter);
    out
}

#[cfg(test)]
pub(crate) mod tests;
