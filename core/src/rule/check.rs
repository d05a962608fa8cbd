//! The type checker: a parsed tree against the recipients' [`Schema`] (and, optionally, the
//! known list names), before anything is evaluated. An ill-typed rule is an error with a span
//! and a message — comparing a date column with text is never an empty result.
//!
//! The rules (the evaluator and the SQL compiler rely on them):
//!
//! - the root, the operands of `and`, `or` and `not` are conditions ([`Type::Bool`]); a
//!   true/false column alone is a condition;
//! - `= != < <= > >=`, `in` and `between` compare numbers with numbers (whole or not), text with
//!   text, dates and dates-and-times in any mix (a date is its midnight UTC), and true/false
//!   values with each other for `=`, `!=` and `in` only; `null` is never compared (`is null`);
//! - `in (…)` holds 1 to [`MAX_IN_ITEMS`] literal values;
//! - `is null` / `is not null` test a column or an expression, not a literal;
//! - `contains`, `starts_with`, `ends_with` (and their `i`-variants) and `lower(…)` take text;
//! - a duration only appears as the right side of `+` / `-` after a date or date-and-time
//!   expression; the result is a date and time;
//! - `in_list("name")`: a non-empty name, one of the known lists when they are given.

use super::ast::{CmpOp, Expr, ExprKind, Literal, MatchOp, Rule, Schema, Type};
use super::error::RuleError;
use super::name::quoted;
use super::print;

/// Most values an `in (…)` list may hold.
pub const MAX_IN_ITEMS: usize = 10_000;

/// Deepest tree the checker walks (a safeguard for trees not made by the parser, whose trees
/// stay far below it).
const MAX_TREE_DEPTH: usize = 2_048;

/// Checks `expr` against `schema` and, when `lists` is given, the list names of `in_list`.
pub fn check(expr: Expr, schema: &Schema, lists: Option<&[String]>) -> Result<Rule, RuleError> {
    let checker = Checker { schema, lists };
    let ty = checker.infer(&expr, 0)?;
    if ty != Type::Bool {
        return Err(RuleError::new(
            expr.span,
            format!(
                "{} is not a condition (true/false) — compare it with a value, e.g. \"age >= 18\"",
                what(&expr, ty)
            ),
        ));
    }
    Ok(Rule::from_checked(expr))
}

/// The type of a node of a checked tree (`None` for an unknown column).
pub fn type_of(expr: &Expr, schema: &Schema) -> Option<Type> {
    match &expr.kind {
        ExprKind::Literal(lit) => Some(lit.ty()),
        ExprKind::Column(name) => schema.get(name),
        ExprKind::Now | ExprKind::Shift { .. } => Some(Type::DateTime),
        ExprKind::Lower(_) => Some(Type::String),
        ExprKind::Compare { .. }
        | ExprKind::In { .. }
        | ExprKind::Between { .. }
        | ExprKind::IsNull { .. }
        | ExprKind::Match { .. }
        | ExprKind::InList(_)
        | ExprKind::Not(_)
        | ExprKind::And(..)
        | ExprKind::Or(..) => Some(Type::Bool),
    }
}

/// Whether values of types `a` and `b` compare; `ordered`: with `<`, `<=`, `>`, `>=` or
/// `between` (true/false values only compare for equality).
pub(crate) fn comparable(a: Type, b: Type, ordered: bool) -> bool {
    use Type::{Bool, Date, DateTime, Float, Int, String};
    match (a, b) {
        (Int | Float, Int | Float) | (String, String) | (Date | DateTime, Date | DateTime) => true,
        (Bool, Bool) => !ordered,
        _ => false,
    }
}

/// The closest of `candidates` to `name`: equal ignoring case, or within `max_edits` edits.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    max_edits: usize,
) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let candidate_lower = candidate.to_lowercase();
        let distance = if candidate_lower == lower {
            0
        } else if lower.len() > 256 || candidate_lower.len() > 256 {
            continue;
        } else {
            match edit_distance(&lower, &candidate_lower, max_edits) {
                Some(d) => d,
                None => continue,
            }
        };
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance between `a` and `b` (over characters) when at most `limit`.
fn edit_distance(a: &str, b: &str, limit: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            row[j + 1] = substitute.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        std::mem::swap(&mut prev, &mut row);
    }
    Some(prev[b.len()]).filter(|&d| d <= limit)
}

/// A node and its type in marketer words: `date column "signup"`, `text "NL"`, `now()`.
fn what(expr: &Expr, ty: Type) -> String {
    match &expr.kind {
        ExprKind::Column(name) => format!("{ty} column {}", quoted(name)),
        ExprKind::Literal(Literal::Null) => "null".to_owned(),
        ExprKind::Literal(Literal::String(s)) => format!("text {}", quoted(s)),
        ExprKind::Literal(Literal::Bool(b)) => format!("the true/false value {b}"),
        ExprKind::Literal(lit) => {
            let text = print::literal(lit);
            if text.chars().count() > 40 {
                format!("{ty} value")
            } else {
                format!("{ty} {text}")
            }
        }
        ExprKind::Now => "now()".to_owned(),
        ExprKind::Lower(_) => "lower(…)".to_owned(),
        ExprKind::Shift { .. } => format!("{ty} value"),
        _ => "a condition".to_owned(),
    }
}

/// The name of a text match as written.
fn match_name(op: MatchOp, ignore_case: bool) -> &'static str {
    match (op, ignore_case) {
        (MatchOp::Contains, false) => "contains",
        (MatchOp::Contains, true) => "icontains",
        (MatchOp::StartsWith, false) => "starts_with",
        (MatchOp::StartsWith, true) => "istarts_with",
        (MatchOp::EndsWith, false) => "ends_with",
        (MatchOp::EndsWith, true) => "iends_with",
    }
}

struct Checker<'a> {
    schema: &'a Schema,
    lists: Option<&'a [String]>,
}

impl Checker<'_> {
    /// The type of `expr`, or the first error in it (left to right).
    fn infer(&self, expr: &Expr, depth: usize) -> Result<Type, RuleError> {
        if depth > MAX_TREE_DEPTH {
            return Err(RuleError::new(expr.span, "the rule is nested too deeply"));
        }
        let depth = depth + 1;
        let err = |at: &Expr, message: String| Err(RuleError::new(at.span, message));
        match &expr.kind {
            ExprKind::Literal(lit) => Ok(lit.ty()),
            ExprKind::Column(name) => self.column(expr, name),
            ExprKind::Now => Ok(Type::DateTime),
            ExprKind::Lower(inner) => {
                let ty = self.infer(inner, depth)?;
                if ty != Type::String {
                    return err(
                        inner,
                        format!("lower() works on text, not on {}", what(inner, ty)),
                    );
                }
                Ok(Type::String)
            }
            ExprKind::Shift { base, sign, by } => {
                let base_ty = self.infer(base, depth)?;
                let by_ty = self.infer(by, depth)?;
                if !matches!(base_ty, Type::Date | Type::DateTime) {
                    return err(
                        base,
                        format!(
                            "only a date or a date and time can be shifted by a duration, not {}",
                            what(base, base_ty)
                        ),
                    );
                }
                if by_ty != Type::Duration {
                    let symbol = match sign {
                        super::ast::Sign::Plus => "+",
                        super::ast::Sign::Minus => "-",
                    };
                    return err(
                        by,
                        format!(
                            "expected a duration such as 30d or 12h after \"{symbol}\", found {}",
                            what(by, by_ty)
                        ),
                    );
                }
                Ok(Type::DateTime)
            }
            ExprKind::Compare { op, left, right } => {
                let left_ty = self.value(left, depth, *op == CmpOp::Ne)?;
                let right_ty = self.value(right, depth, *op == CmpOp::Ne)?;
                let ordered = !matches!(op, CmpOp::Eq | CmpOp::Ne);
                self.pair(left, left_ty, right, right_ty, ordered, op.symbol())?;
                Ok(Type::Bool)
            }
            ExprKind::In {
                value,
                items,
                negated,
            } => {
                let value_ty = self.value(value, depth, *negated)?;
                if items.is_empty() {
                    return err(expr, "an \"in\" list needs at least one value".to_owned());
                }
                if let Some(extra) = items.get(MAX_IN_ITEMS) {
                    return err(
                        extra,
                        "an \"in\" list holds at most 10,000 values — use in_list(\"…\") for more"
                            .to_owned(),
                    );
                }
                for item in items {
                    let ExprKind::Literal(lit) = &item.kind else {
                        let ty = self.infer(item, depth)?;
                        return err(
                            item,
                            format!(
                                "an \"in\" list holds fixed values such as \"NL\" or 18, not {}",
                                what(item, ty)
                            ),
                        );
                    };
                    if *lit == Literal::Null {
                        return err(item, null_hint(*negated));
                    }
                    let item_ty = lit.ty();
                    self.pair(value, value_ty, item, item_ty, false, "in")?;
                }
                Ok(Type::Bool)
            }
            ExprKind::Between {
                value,
                low,
                high,
                negated,
            } => {
                let value_ty = self.value(value, depth, *negated)?;
                let low_ty = self.value(low, depth, *negated)?;
                let high_ty = self.value(high, depth, *negated)?;
                self.pair(value, value_ty, low, low_ty, true, "between")?;
                self.pair(value, value_ty, high, high_ty, true, "between")?;
                Ok(Type::Bool)
            }
            ExprKind::IsNull { value, negated } => {
                if matches!(value.kind, ExprKind::Literal(_)) {
                    let not = if *negated { " not" } else { "" };
                    return err(
                        value,
                        format!(
                            "\"is{not} null\" tests a column or an expression, not a fixed value"
                        ),
                    );
                }
                self.infer(value, depth)?;
                Ok(Type::Bool)
            }
            ExprKind::Match {
                op,
                ignore_case,
                value,
                pattern,
            } => {
                let name = match_name(*op, *ignore_case);
                let value_ty = self.infer(value, depth)?;
                if value_ty != Type::String {
                    return err(
                        value,
                        format!("\"{name}\" works on text, not on {}", what(value, value_ty)),
                    );
                }
                let pattern_ty = self.infer(pattern, depth)?;
                if pattern_ty != Type::String {
                    return err(
                        pattern,
                        format!(
                            "\"{name}\" needs text to look for, not {}",
                            what(pattern, pattern_ty)
                        ),
                    );
                }
                Ok(Type::Bool)
            }
            ExprKind::InList(name) => {
                if name.is_empty() {
                    return err(
                        expr,
                        "in_list() needs the name of a list, e.g. in_list(\"suppressed\")"
                            .to_owned(),
                    );
                }
                if let Some(lists) = self.lists
                    && !lists.iter().any(|l| l == name)
                {
                    let message = match did_you_mean(name, lists.iter().map(String::as_str), 2) {
                        Some(s) => format!(
                            "unknown list {} — did you mean {}?",
                            quoted(name),
                            quoted(s)
                        ),
                        None => format!("unknown list {}", quoted(name)),
                    };
                    return err(expr, message);
                }
                Ok(Type::Bool)
            }
            ExprKind::Not(inner) => {
                self.condition(inner, depth, "\"not\" needs a condition after it")?;
                Ok(Type::Bool)
            }
            ExprKind::And(left, right) => {
                self.condition(left, depth, "\"and\" needs a condition on each side")?;
                self.condition(right, depth, "\"and\" needs a condition on each side")?;
                Ok(Type::Bool)
            }
            ExprKind::Or(left, right) => {
                self.condition(left, depth, "\"or\" needs a condition on each side")?;
                self.condition(right, depth, "\"or\" needs a condition on each side")?;
                Ok(Type::Bool)
            }
        }
    }

    /// The type of column `name`, or an unknown-column error with a suggestion.
    fn column(&self, expr: &Expr, name: &str) -> Result<Type, RuleError> {
        if let Some(ty) = self.schema.get(name) {
            return Ok(ty);
        }
        let names = self.schema.columns().iter().map(|(n, _)| n.as_str());
        let message = match did_you_mean(name, names, 2) {
            Some(s) => format!(
                "unknown column {} — did you mean {}?",
                quoted(name),
                quoted(s)
            ),
            None => format!("unknown column {}", quoted(name)),
        };
        Err(RuleError::new(expr.span, message))
    }

    /// An operand of `and` / `or` / `not`: a condition.
    fn condition(&self, expr: &Expr, depth: usize, context: &str) -> Result<(), RuleError> {
        let ty = self.infer(expr, depth)?;
        if ty == Type::Bool {
            return Ok(());
        }
        Err(RuleError::new(
            expr.span,
            format!(
                "{context}, but {} is not one — compare it, e.g. \"age >= 18\"",
                what(expr, ty)
            ),
        ))
    }

    /// An operand of a comparison, `in` or `between`: neither `null` nor a duration.
    fn value(&self, expr: &Expr, depth: usize, negated: bool) -> Result<Type, RuleError> {
        let ty = self.infer(expr, depth)?;
        match ty {
            Type::Null => Err(RuleError::new(expr.span, null_hint(negated))),
            Type::Duration => Err(RuleError::new(
                expr.span,
                "a duration such as 30d can only be added to or subtracted from a date, e.g. \
                 \"now() - 30d\"",
            )),
            _ => Ok(ty),
        }
    }

    /// `left` and `right` must compare (`ordered`: with an ordering operator).
    fn pair(
        &self,
        left: &Expr,
        left_ty: Type,
        right: &Expr,
        right_ty: Type,
        ordered: bool,
        op: &str,
    ) -> Result<(), RuleError> {
        if comparable(left_ty, right_ty, ordered) {
            return Ok(());
        }
        let message = if left_ty == Type::Bool && right_ty == Type::Bool {
            format!(
                "true/false values cannot be ordered with \"{op}\" — only \"=\" and \"!=\" work for them"
            )
        } else {
            format!(
                "cannot compare {} with {}",
                what(left, left_ty),
                what(right, right_ty)
            )
        };
        Err(RuleError::new(right.span, message))
    }
}

/// The message for `null` in a comparison.
fn null_hint(negated: bool) -> String {
    let test = if negated { "is not null" } else { "is null" };
    format!("a value cannot be compared with null — use \"{test}\" to test for missing values")
}

#[cfg(test)]
mod tests;
