//! The syntax tree of a segment rule, shared by the parser and type checker (which build and
//! check it), the evaluator (which runs it over columns) and the SQL compiler (which writes it
//! as a `WHERE` clause). Every node carries the byte span of its source text.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::recipients::{ColumnType, RecipientIds, RecipientsTable};
use crate::time::{Date, Timestamp};

/// Byte range `start..end` of the rule text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// The span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Span {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Span {
            start: clamp(start),
            end: clamp(end),
        }
    }

    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// The type of a value in a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Type {
    /// `true` / `false`.
    Bool,
    /// 64-bit integer.
    Int,
    /// 64-bit float (compares with integers).
    Float,
    /// Text, compared bytewise (UTF-8).
    String,
    /// Calendar date (compares with datetimes as midnight UTC).
    Date,
    /// Instant, microsecond precision, UTC.
    DateTime,
    /// Length of time (`30d`); only added to or subtracted from dates and datetimes.
    Duration,
    /// The type of the `null` literal.
    Null,
}

impl Type {
    /// Name used in messages: `text`, `number`, `date`, …
    pub fn describe(self) -> &'static str {
        match self {
            Type::Bool => "true/false",
            Type::Int => "whole number",
            Type::Float => "number",
            Type::String => "text",
            Type::Date => "date",
            Type::DateTime => "date and time",
            Type::Duration => "duration",
            Type::Null => "null",
        }
    }
}

impl From<ColumnType> for Type {
    fn from(column: ColumnType) -> Type {
        match column {
            ColumnType::Bool => Type::Bool,
            ColumnType::Int => Type::Int,
            ColumnType::Float => Type::Float,
            ColumnType::Date => Type::Date,
            ColumnType::DateTime => Type::DateTime,
            ColumnType::String => Type::String,
        }
    }
}

/// A literal value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Literal {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// `42`, `-7`.
    Int(i64),
    /// `2.5`, `1e3`.
    Float(f64),
    /// `"text"` with escapes.
    String(String),
    /// `2026-01-31`.
    Date(Date),
    /// `2026-01-31T12:00:00Z`.
    DateTime(Timestamp),
    /// `30d`, `12h`, `15m`, `45s`, `2w`: microseconds.
    Duration(i64),
}

impl Literal {
    /// The literal's type.
    pub fn ty(&self) -> Type {
        match self {
            Literal::Null => Type::Null,
            Literal::Bool(_) => Type::Bool,
            Literal::Int(_) => Type::Int,
            Literal::Float(_) => Type::Float,
            Literal::String(_) => Type::String,
            Literal::Date(_) => Type::Date,
            Literal::DateTime(_) => Type::DateTime,
            Literal::Duration(_) => Type::Duration,
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A text matching operator (case-sensitive unless `ignore_case`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchOp {
    /// `contains` / `icontains`.
    Contains,
    /// `starts_with` / `istarts_with`.
    StartsWith,
    /// `ends_with` / `iends_with`.
    EndsWith,
}

/// `+` or `-` of a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sign {
    /// `+`
    Plus,
    /// `-`
    Minus,
}

/// One node of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    /// What the node is.
    pub kind: ExprKind,
    /// Where it is in the rule text.
    pub span: Span,
}

/// The kinds of node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExprKind {
    /// A literal value.
    Literal(Literal),
    /// A recipients column (`age`, or in backticks for odd names: `` `first name` ``).
    Column(String),
    /// `now()`: the evaluation time, an input.
    Now,
    /// `lower(x)`: ASCII lowercase (as SQLite's `lower`).
    Lower(Box<Expr>),
    /// `x + 30d`, `now() - 90d`: a date or datetime shifted by a duration.
    Shift {
        /// The date or datetime.
        base: Box<Expr>,
        /// Plus or minus.
        sign: Sign,
        /// A duration.
        by: Box<Expr>,
    },
    /// `left op right`.
    Compare {
        /// The operator.
        op: CmpOp,
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Expr>,
    },
    /// `value in (items…)` / `value not in (items…)`.
    In {
        /// The tested value.
        value: Box<Expr>,
        /// The candidates (at most 10,000).
        items: Vec<Expr>,
        /// `not in`.
        negated: bool,
    },
    /// `value between low and high` / `not between`.
    Between {
        /// The tested value.
        value: Box<Expr>,
        /// Lower bound, inclusive.
        low: Box<Expr>,
        /// Upper bound, inclusive.
        high: Box<Expr>,
        /// `not between`.
        negated: bool,
    },
    /// `value is null` / `is not null`.
    IsNull {
        /// The tested value.
        value: Box<Expr>,
        /// `is not null`.
        negated: bool,
    },
    /// `value contains pattern` and the other text matches.
    Match {
        /// Which match.
        op: MatchOp,
        /// The `i`-variant: ASCII case-insensitive.
        ignore_case: bool,
        /// The text tested.
        value: Box<Expr>,
        /// The text looked for.
        pattern: Box<Expr>,
    },
    /// `in_list("name")`: the recipient is a member of list `name`.
    InList(String),
    /// `not x`.
    Not(Box<Expr>),
    /// `x and y`.
    And(Box<Expr>, Box<Expr>),
    /// `x or y`.
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// A node of `kind` at `span`.
    pub fn new(kind: ExprKind, span: Span) -> Expr {
        Expr { kind, span }
    }
}

/// The columns a rule may refer to, with their types (the recipients table's, `id` included).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schema {
    columns: Vec<(String, Type)>,
}

impl Schema {
    /// A schema of `(name, type)` pairs.
    pub fn new(columns: impl IntoIterator<Item = (String, Type)>) -> Schema {
        Schema {
            columns: columns.into_iter().collect(),
        }
    }

    /// The schema of a recipients table: `id` (integer or text) and every attribute column.
    pub fn of(table: &RecipientsTable) -> Schema {
        let id = match table.ids {
            RecipientIds::Int(_) => Type::Int,
            RecipientIds::String(_) => Type::String,
        };
        let mut columns = vec![(crate::recipients::ID_COLUMN.to_owned(), id)];
        columns.extend(
            table
                .columns
                .iter()
                .map(|c| (c.name.clone(), Type::from(c.data.column_type()))),
        );
        Schema { columns }
    }

    /// The type of column `name`.
    pub fn get(&self, name: &str) -> Option<Type> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, t)| t)
    }

    /// Every column, in order.
    pub fn columns(&self) -> &[(String, Type)] {
        &self.columns
    }
}

/// A parsed and type-checked rule: only the checker makes one, so evaluation and compilation
/// never meet an ill-typed tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub(crate) expr: Expr,
}

impl Rule {
    /// Wraps a tree the type checker accepted.
    pub(crate) fn from_checked(expr: Expr) -> Rule {
        Rule { expr }
    }

    /// The root of the tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}
