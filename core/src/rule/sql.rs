//! A checked [`Rule`] as a SQL `WHERE` clause over the recipients table, for SQLite or
//! PostgreSQL, selecting exactly the rows [`super::eval::evaluate`] selects (the differential
//! tests run both against SQLite).
//!
//! # Storage convention
//!
//! The host stores recipients in one table ([`SqlTables::recipients`], one row per recipient,
//! the id in [`SqlTables::id_column`], every other column under its own name) and list
//! memberships in another ([`SqlTables::list_members`]: a list name and a recipient id per
//! row). Values are stored as:
//!
//! | rule type      | SQLite    | PostgreSQL         | value                                   |
//! |----------------|-----------|--------------------|-----------------------------------------|
//! | true/false     | `INTEGER` | `smallint`         | 0 or 1                                  |
//! | whole number   | `INTEGER` | `bigint`           | the i64                                 |
//! | number         | `REAL`    | `double precision` | the f64 (finite; NaN is stored as NULL) |
//! | text           | `TEXT`    | `text`             | the UTF-8 text                          |
//! | date           | `INTEGER` | `integer`          | days since 1970-01-01                   |
//! | date and time  | `INTEGER` | `bigint`           | unix microseconds                       |
//!
//! (see [`storage_type`]); null is SQL `NULL`. The list member column has the type of the id.
//!
//! # The clause
//!
//! - Every value of the rule (literals, `now()`, list names) is a bound parameter
//!   ([`SqlWhere::params`], `?1`… for SQLite, `$1`… with a type cast for PostgreSQL); the text
//!   holds only structure: quoted names (`"recipients"."age"`, embedded `"` doubled), operators,
//!   the constant 86400000000 (microseconds per day) and, for `true`/`false` folded into the
//!   structure, `(1 = 1)` / `(1 = 0)`.
//! - Column names are checked against the schema; the rule's `id` column is
//!   [`SqlTables::id_column`]. Columns are qualified with the recipients table's name, so the
//!   clause goes after `FROM "recipients"` (without an alias), e.g. [`SqlTables::select_ids`].
//! - Three-valued logic is SQL's own. Comparisons of a whole-number expression with a float
//!   constant (and a float expression with an integer constant) are rewritten exactly into
//!   comparisons within one type (`age >= 17.5` → `"age" >= 18`), so no engine rounds an
//!   integer to a float; SQLite compares INTEGER with REAL exactly anyway (a column against a
//!   column); PostgreSQL compares them as `numeric`.
//! - A date compared with a date-time is `days * 86400000000`; shifts (`x + 30d`) add
//!   microseconds; a shift of a constant (`now() - 90d`) is one parameter.
//! - Text compares bytewise (PostgreSQL: `COLLATE "C"`); `lower` is ASCII-only (SQLite's
//!   built-in `lower`; PostgreSQL: `translate` of `A`–`Z`); text matches are byte matches:
//!   SQLite `instr` and `substr` over `CAST(… AS BLOB)` (byte-based, also with NUL characters),
//!   PostgreSQL `strpos`, `starts_with` and `right` (character-based, which is the same for
//!   valid UTF-8).
//! - Known difference: a shift that overflows i64 microseconds (a duration of more than
//!   ~290,000 years) is exact in the evaluator and a float in SQLite.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::ast::{CmpOp, Expr, ExprKind, Literal, MatchOp, Rule, Schema, Sign, Span, Type};
use super::error::RuleError;
use super::eval::{MICROS_PER_DAY, cmp_int_float};
use crate::recipients::ID_COLUMN;
use crate::time::Timestamp;

/// The SQL engine a clause is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// SQLite 3 (placeholders `?1`, `?2`, …).
    Sqlite,
    /// PostgreSQL 11 or later (placeholders `$1`, `$2`, … with a type cast).
    Postgres,
}

/// The names of the tables and columns the clause refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlTables {
    /// The recipients table (default `recipients`).
    pub recipients: String,
    /// Its id column (default `id`), which the rule calls `id`.
    pub id_column: String,
    /// The list memberships table (default `list_members`).
    pub list_members: String,
    /// Its list name column (default `list_name`).
    pub list_column: String,
    /// Its recipient id column (default `recipient_id`).
    pub member_column: String,
}

impl Default for SqlTables {
    fn default() -> SqlTables {
        SqlTables {
            recipients: "recipients".to_owned(),
            id_column: "id".to_owned(),
            list_members: "list_members".to_owned(),
            list_column: "list_name".to_owned(),
            member_column: "recipient_id".to_owned(),
        }
    }
}

impl SqlTables {
    /// `SELECT "id" FROM "recipients" WHERE <clause>`.
    pub fn select_ids(&self, clause: &SqlWhere) -> String {
        format!(
            "SELECT {} FROM {} WHERE {}",
            quote_ident(&self.id_column),
            quote_ident(&self.recipients),
            clause.text
        )
    }
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum SqlValue {
    /// An integer (also dates as days, date-times as microseconds).
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    Text(String),
}

/// A `WHERE` clause (without the keyword) and its parameters: `params[0]` is `?1` / `$1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlWhere {
    /// The condition.
    pub text: String,
    /// The values of the placeholders, in order.
    pub params: Vec<SqlValue>,
}

/// The column type storing values of `ty` (see the module's storage convention); `None` for
/// types no column has (durations, null).
pub fn storage_type(ty: Type, dialect: Dialect) -> Option<&'static str> {
    Some(match (dialect, ty) {
        (Dialect::Sqlite, Type::Bool | Type::Int | Type::Date | Type::DateTime) => "INTEGER",
        (Dialect::Sqlite, Type::Float) => "REAL",
        (Dialect::Sqlite, Type::String) => "TEXT",
        (Dialect::Postgres, Type::Bool) => "smallint",
        (Dialect::Postgres, Type::Int | Type::DateTime) => "bigint",
        (Dialect::Postgres, Type::Float) => "double precision",
        (Dialect::Postgres, Type::String) => "text",
        (Dialect::Postgres, Type::Date) => "integer",
        (_, Type::Duration | Type::Null) => return None,
    })
}

/// `name` as a quoted SQL identifier: `"name"`, an embedded `"` doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Compiles `rule` (checked against `schema`) for `dialect`; `now` is the value of `now()`.
///
/// Fails only for a column missing from `schema` (or of another type than the rule was
/// checked with) and for a name SQL cannot hold (a NUL character).
pub fn to_sql(
    rule: &Rule,
    schema: &Schema,
    dialect: Dialect,
    tables: &SqlTables,
    now: Timestamp,
) -> Result<SqlWhere, RuleError> {
    for name in [
        &tables.recipients,
        &tables.id_column,
        &tables.list_members,
        &tables.list_column,
        &tables.member_column,
    ] {
        if name.contains('\0') {
            return Err(RuleError::new(
                Span::default(),
                "a table or column name holds a NUL character",
            ));
        }
    }
    let mut compiler = Compiler {
        schema,
        dialect,
        tables,
        now,
        params: Vec::new(),
    };
    let text = compiler.condition(rule.expr())?;
    Ok(SqlWhere {
        text,
        params: compiler.params,
    })
}

/// SQL for a condition that is always true / false.
const TRUE: &str = "(1 = 1)";
const FALSE: &str = "(1 = 0)";
/// SQL for an always-unknown condition.
const UNKNOWN: &str = "(NULL)";

/// A value known while compiling.
#[derive(Debug, Clone, PartialEq)]
enum Const {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Days since 1970-01-01.
    Date(i64),
    /// Unix microseconds (exact; may exceed i64 after shifts).
    Time(i128),
    Duration(i64),
}

/// A compiled value: a constant, or SQL of a type (`Bool`: a condition; `Date`: days;
/// `DateTime`: microseconds).
#[derive(Debug, Clone)]
enum Operand {
    Const(Const),
    Sql(String, Type),
}

/// A comparison folded against a constant.
enum Folded {
    Cmp(CmpOp, SqlValue),
    Always,
    Never,
}

fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Eq => CmpOp::Eq,
        CmpOp::Ne => CmpOp::Ne,
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
    }
}

fn sql_op(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Ne => "<>",
        other => other.symbol(),
    }
}

fn holds(op: CmpOp, ord: Ordering) -> bool {
    match op {
        CmpOp::Eq => ord.is_eq(),
        CmpOp::Ne => ord.is_ne(),
        CmpOp::Lt => ord.is_lt(),
        CmpOp::Le => ord.is_le(),
        CmpOp::Gt => ord.is_gt(),
        CmpOp::Ge => ord.is_ge(),
    }
}

/// ±2^63 as a float: the integral floats in i64 range are `-TWO_63 <= f < TWO_63`.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// `x op f` for an integer `x`, as a comparison with an integer.
fn fold_int_vs_float(op: CmpOp, f: f64) -> Folded {
    if f.is_nan() {
        // A NaN constant is null: compare with nothing (never produced by the parser).
        return Folded::Never;
    }
    let as_int = |g: f64| (-TWO_63..TWO_63).contains(&g).then_some(g as i64);
    let (bound, below_all_true) = match op {
        CmpOp::Eq | CmpOp::Ne => {
            let exact = if f.trunc() == f { as_int(f) } else { None };
            return match (exact, op) {
                (Some(i), _) => Folded::Cmp(op, SqlValue::Int(i)),
                (None, CmpOp::Eq) => Folded::Never,
                (None, _) => Folded::Always,
            };
        }
        // x < f ⟺ x < ceil(f); x >= f ⟺ x >= ceil(f); x <= f ⟺ x <= floor(f); x > f ⟺ x > floor(f).
        CmpOp::Lt => (f.ceil(), false),
        CmpOp::Ge => (f.ceil(), true),
        CmpOp::Le => (f.floor(), false),
        CmpOp::Gt => (f.floor(), true),
    };
    match as_int(bound) {
        Some(i) => Folded::Cmp(op, SqlValue::Int(i)),
        // Above every integer: `<`/`<=` always hold, `>`/`>=` never; below: the reverse.
        None if (bound >= TWO_63) != below_all_true => Folded::Always,
        None => Folded::Never,
    }
}

/// `x op i` for a float `x`, as a comparison with a float.
fn fold_float_vs_int(op: CmpOp, i: i64) -> Folded {
    let g = i as f64;
    let (lo, hi) = match cmp_int_float(i, g) {
        Ordering::Equal => return Folded::Cmp(op, SqlValue::Float(g)),
        // g rounded up: i lies strictly between the float below g and g.
        Ordering::Less => (g.next_down(), g),
        Ordering::Greater => (g, g.next_up()),
    };
    match op {
        CmpOp::Eq => Folded::Never,
        CmpOp::Ne => Folded::Always,
        CmpOp::Lt | CmpOp::Le => Folded::Cmp(CmpOp::Le, SqlValue::Float(lo)),
        CmpOp::Gt | CmpOp::Ge => Folded::Cmp(CmpOp::Ge, SqlValue::Float(hi)),
    }
}

/// The order of two constants of comparable types (`None`: a null, or not comparable).
fn const_cmp(a: &Const, b: &Const) -> Option<Ordering> {
    let time = |c: &Const| match c {
        Const::Date(d) => Some(i128::from(*d) * i128::from(MICROS_PER_DAY)),
        Const::Time(t) => Some(*t),
        _ => None,
    };
    Some(match (a, b) {
        (Const::Int(x), Const::Int(y)) => x.cmp(y),
        (Const::Int(x), Const::Float(y)) if !y.is_nan() => cmp_int_float(*x, *y),
        (Const::Float(x), Const::Int(y)) if !x.is_nan() => cmp_int_float(*y, *x).reverse(),
        (Const::Float(x), Const::Float(y)) => x.partial_cmp(y)?,
        (Const::Str(x), Const::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Const::Bool(x), Const::Bool(y)) => x.cmp(y),
        _ => time(a)?.cmp(&time(b)?),
    })
}

/// An i128 instant clamped into i64: every stored instant is far inside, so comparisons with
/// stored values keep their result.
fn clamp_time(t: i128) -> i64 {
    i64::try_from(t).unwrap_or(if t < 0 { i64::MIN } else { i64::MAX })
}

struct Compiler<'a> {
    schema: &'a Schema,
    dialect: Dialect,
    tables: &'a SqlTables,
    now: Timestamp,
    params: Vec<SqlValue>,
}

fn unfit(span: Span, message: impl Into<String>) -> RuleError {
    RuleError::new(span, message)
}

impl Compiler<'_> {
    /// A placeholder for `value`.
    fn param(&mut self, value: SqlValue) -> String {
        let cast = match (&value, self.dialect) {
            (_, Dialect::Sqlite) => "",
            (SqlValue::Int(_), Dialect::Postgres) => "::bigint",
            (SqlValue::Float(_), Dialect::Postgres) => "::double precision",
            (SqlValue::Text(_), Dialect::Postgres) => "::text",
        };
        self.params.push(value);
        let n = self.params.len();
        match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}{cast}"),
        }
    }

    /// A non-null constant as SQL of its type (`as_time`: a date as microseconds).
    fn constant(&mut self, c: &Const, as_time: bool) -> String {
        match c {
            Const::Null => "NULL".to_owned(),
            Const::Bool(b) => (if *b { TRUE } else { FALSE }).to_owned(),
            Const::Int(i) | Const::Duration(i) => self.param(SqlValue::Int(*i)),
            Const::Float(f) => self.param(SqlValue::Float(*f)),
            Const::Str(s) => self.param(SqlValue::Text(s.clone())),
            Const::Date(d) if as_time => self.param(SqlValue::Int(d * MICROS_PER_DAY)),
            Const::Date(d) => self.param(SqlValue::Int(*d)),
            Const::Time(t) => self.param(SqlValue::Int(clamp_time(*t))),
        }
    }

    fn ident(&self, name: &str, span: Span) -> Result<String, RuleError> {
        if name.contains('\0') {
            return Err(unfit(span, "a column name holds a NUL character"));
        }
        Ok(quote_ident(name))
    }

    fn lower(&self, sql: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("lower({sql})"),
            Dialect::Postgres => format!(
                "translate({sql}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
            ),
        }
    }

    /// A condition node as SQL.
    fn condition(&mut self, expr: &Expr) -> Result<String, RuleError> {
        match self.value(expr)? {
            Operand::Const(Const::Bool(b)) => Ok((if b { TRUE } else { FALSE }).to_owned()),
            Operand::Const(Const::Null) => Ok(UNKNOWN.to_owned()),
            Operand::Sql(sql, Type::Bool) => Ok(sql),
            _ => Err(unfit(expr.span, "expected a condition")),
        }
    }

    fn value(&mut self, expr: &Expr) -> Result<Operand, RuleError> {
        let bool_sql = |sql: String| Ok(Operand::Sql(sql, Type::Bool));
        match &expr.kind {
            ExprKind::Literal(lit) => Ok(Operand::Const(match lit {
                Literal::Null => Const::Null,
                Literal::Bool(b) => Const::Bool(*b),
                Literal::Int(i) => Const::Int(*i),
                Literal::Float(f) => Const::Float(*f),
                Literal::String(s) => Const::Str(s.clone()),
                Literal::Date(d) => Const::Date(i64::from(d.days())),
                Literal::DateTime(t) => Const::Time(i128::from(t.unix_micros())),
                Literal::Duration(d) => Const::Duration(*d),
            })),
            ExprKind::Column(name) => {
                let Some(ty) = self.schema.get(name) else {
                    return Err(unfit(expr.span, format!("unknown column \"{name}\"")));
                };
                let column = if name == ID_COLUMN {
                    &self.tables.id_column
                } else {
                    name
                };
                let sql = format!(
                    "{}.{}",
                    quote_ident(&self.tables.recipients),
                    self.ident(column, expr.span)?
                );
                Ok(match ty {
                    Type::Bool => Operand::Sql(format!("({sql} <> 0)"), Type::Bool),
                    Type::Int | Type::Float | Type::String | Type::Date | Type::DateTime => {
                        Operand::Sql(sql, ty)
                    }
                    Type::Duration | Type::Null => {
                        return Err(unfit(
                            expr.span,
                            format!("column \"{name}\" has no SQL type"),
                        ));
                    }
                })
            }
            ExprKind::Now => Ok(Operand::Const(Const::Time(i128::from(
                self.now.unix_micros(),
            )))),
            ExprKind::Lower(inner) => match self.value(inner)? {
                Operand::Const(Const::Null) => Ok(Operand::Const(Const::Null)),
                Operand::Const(Const::Str(s)) => {
                    Ok(Operand::Const(Const::Str(s.to_ascii_lowercase())))
                }
                Operand::Sql(sql, Type::String) => Ok(Operand::Sql(self.lower(&sql), Type::String)),
                _ => Err(unfit(inner.span, "lower() needs text")),
            },
            ExprKind::Shift { base, sign, by } => {
                let Operand::Const(Const::Duration(d)) = self.value(by)? else {
                    return Err(unfit(by.span, "expected a duration"));
                };
                let delta = match sign {
                    Sign::Plus => i128::from(d),
                    Sign::Minus => -i128::from(d),
                };
                let symbol = match sign {
                    Sign::Plus => "+",
                    Sign::Minus => "-",
                };
                match self.value(base)? {
                    Operand::Const(Const::Null) => Ok(Operand::Const(Const::Null)),
                    Operand::Const(Const::Date(days)) => Ok(Operand::Const(Const::Time(
                        i128::from(days) * i128::from(MICROS_PER_DAY) + delta,
                    ))),
                    Operand::Const(Const::Time(t)) => Ok(Operand::Const(Const::Time(t + delta))),
                    Operand::Sql(sql, Type::Date) => {
                        let p = self.param(SqlValue::Int(d));
                        Ok(Operand::Sql(
                            format!("(({sql} * {MICROS_PER_DAY}) {symbol} {p})"),
                            Type::DateTime,
                        ))
                    }
                    Operand::Sql(sql, Type::DateTime) => {
                        let p = self.param(SqlValue::Int(d));
                        Ok(Operand::Sql(
                            format!("({sql} {symbol} {p})"),
                            Type::DateTime,
                        ))
                    }
                    _ => Err(unfit(base.span, "only a date can be shifted")),
                }
            }
            ExprKind::Compare { op, left, right } => {
                let l = self.value(left)?;
                let r = self.value(right)?;
                bool_sql(self.compare(*op, l, r, expr.span)?)
            }
            ExprKind::In {
                value,
                items,
                negated,
            } => {
                let v = self.value(value)?;
                let mut operands = Vec::with_capacity(items.len());
                for item in items {
                    operands.push(self.value(item)?);
                }
                let sql = self.in_items(v, operands, expr.span)?;
                bool_sql(if *negated {
                    format!("(NOT {sql})")
                } else {
                    sql
                })
            }
            ExprKind::Between {
                value,
                low,
                high,
                negated,
            } => {
                let v = self.value(value)?;
                let lo = self.value(low)?;
                let hi = self.value(high)?;
                let ge = self.compare(CmpOp::Ge, v.clone(), lo, expr.span)?;
                let le = self.compare(CmpOp::Le, v, hi, expr.span)?;
                let sql = format!("({ge} AND {le})");
                bool_sql(if *negated {
                    format!("(NOT {sql})")
                } else {
                    sql
                })
            }
            ExprKind::IsNull { value, negated } => {
                let sql = match self.value(value)? {
                    Operand::Const(c) => {
                        let null = c == Const::Null;
                        (if null != *negated { TRUE } else { FALSE }).to_owned()
                    }
                    Operand::Sql(sql, _) => {
                        let not = if *negated { " NOT" } else { "" };
                        format!("({sql} IS{not} NULL)")
                    }
                };
                bool_sql(sql)
            }
            ExprKind::Match {
                op,
                ignore_case,
                value,
                pattern,
            } => {
                let v = self.value(value)?;
                let p = self.value(pattern)?;
                bool_sql(self.matches(*op, *ignore_case, v, p, expr.span)?)
            }
            ExprKind::InList(name) => {
                let members = quote_ident(&self.tables.list_members);
                let list = quote_ident(&self.tables.list_column);
                let member = quote_ident(&self.tables.member_column);
                let recipients = quote_ident(&self.tables.recipients);
                let id = quote_ident(&self.tables.id_column);
                let p = self.param(SqlValue::Text(name.clone()));
                bool_sql(format!(
                    "EXISTS (SELECT 1 FROM {members} WHERE {members}.{list} = {p} AND \
                     {members}.{member} = {recipients}.{id})"
                ))
            }
            ExprKind::Not(inner) => {
                let sql = self.condition(inner)?;
                bool_sql(format!("(NOT {sql})"))
            }
            ExprKind::And(left, right) => {
                let l = self.condition(left)?;
                let r = self.condition(right)?;
                bool_sql(format!("({l} AND {r})"))
            }
            ExprKind::Or(left, right) => {
                let l = self.condition(left)?;
                let r = self.condition(right)?;
                bool_sql(format!("({l} OR {r})"))
            }
        }
    }

    /// `l op r` as a condition.
    fn compare(
        &mut self,
        op: CmpOp,
        l: Operand,
        r: Operand,
        span: Span,
    ) -> Result<String, RuleError> {
        use Type::{Bool, Date, DateTime, Float, Int, String};
        let mismatch = || unfit(span, "these values cannot be compared");
        let (x, ty, c, op) = match (l, r) {
            (Operand::Const(a), Operand::Const(b)) => {
                if a == Const::Null || b == Const::Null {
                    return Ok(UNKNOWN.to_owned());
                }
                let ord = const_cmp(&a, &b).ok_or_else(mismatch)?;
                return Ok((if holds(op, ord) { TRUE } else { FALSE }).to_owned());
            }
            (Operand::Sql(x, tx), Operand::Sql(y, ty)) => {
                return self.compare_sql(op, x, tx, y, ty).ok_or_else(mismatch);
            }
            (Operand::Sql(x, ty), Operand::Const(c)) => (x, ty, c, op),
            (Operand::Const(c), Operand::Sql(x, ty)) => (x, ty, c, flip(op)),
        };
        // `x op c` with a constant `c`.
        let folded = match (ty, &c) {
            (_, Const::Null) => return Ok(UNKNOWN.to_owned()),
            (Bool, Const::Bool(b)) => {
                return Ok(match (op, *b) {
                    (CmpOp::Eq, true) | (CmpOp::Ne, false) => x,
                    (CmpOp::Eq, false) | (CmpOp::Ne, true) => format!("(NOT {x})"),
                    _ => {
                        let y = self.constant(&c, false);
                        format!("({x} {} {y})", sql_op(op))
                    }
                });
            }
            (Int, Const::Int(i)) => Folded::Cmp(op, SqlValue::Int(*i)),
            (Int, Const::Float(f)) => fold_int_vs_float(op, *f),
            (Float, Const::Float(f)) => Folded::Cmp(op, SqlValue::Float(*f)),
            (Float, Const::Int(i)) => fold_float_vs_int(op, *i),
            (String, Const::Str(s)) => Folded::Cmp(op, SqlValue::Text(s.clone())),
            (Date, Const::Date(d)) => Folded::Cmp(op, SqlValue::Int(*d)),
            (Date, Const::Time(t)) => {
                let y = self.param(SqlValue::Int(clamp_time(*t)));
                return Ok(format!("(({x} * {MICROS_PER_DAY}) {} {y})", sql_op(op)));
            }
            (DateTime, Const::Date(d)) => Folded::Cmp(op, SqlValue::Int(d * MICROS_PER_DAY)),
            (DateTime, Const::Time(t)) => Folded::Cmp(op, SqlValue::Int(clamp_time(*t))),
            _ => return Err(mismatch()),
        };
        Ok(match folded {
            Folded::Always => format!("({x} = {x})"),
            Folded::Never => format!("({x} <> {x})"),
            Folded::Cmp(op, value) => {
                let text = matches!(value, SqlValue::Text(_));
                let y = self.param(value);
                let x = self.collate(x, text);
                format!("({x} {} {y})", sql_op(op))
            }
        })
    }

    /// `x` with the bytewise collation where the dialect needs it (text only).
    fn collate(&self, x: String, text: bool) -> String {
        match self.dialect {
            Dialect::Postgres if text => format!("{x} COLLATE \"C\""),
            _ => x,
        }
    }

    /// Two SQL values compared (`None`: not comparable).
    fn compare_sql(&self, op: CmpOp, x: String, tx: Type, y: String, ty: Type) -> Option<String> {
        use Type::{Bool, Date, DateTime, Float, Int, String};
        let sym = sql_op(op);
        let micros = |s: &str| format!("({s} * {MICROS_PER_DAY})");
        Some(match (tx, ty) {
            (Int, Float) | (Float, Int) if self.dialect == Dialect::Postgres => {
                format!("(CAST({x} AS numeric) {sym} CAST({y} AS numeric))")
            }
            (Int | Float, Int | Float) | (Date, Date) | (DateTime, DateTime) => {
                format!("({x} {sym} {y})")
            }
            (Bool, Bool) if matches!(op, CmpOp::Eq | CmpOp::Ne) => format!("({x} {sym} {y})"),
            (String, String) => format!("({} {sym} {y})", self.collate(x, true)),
            (Date, DateTime) => format!("({} {sym} {y})", micros(&x)),
            (DateTime, Date) => format!("({x} {sym} {})", micros(&y)),
            _ => return None,
        })
    }

    /// `v in (items)`, not negated.
    fn in_items(
        &mut self,
        v: Operand,
        items: Vec<Operand>,
        span: Span,
    ) -> Result<String, RuleError> {
        let consts: Option<Vec<Const>> = items
            .iter()
            .map(|item| match item {
                Operand::Const(c) => Some(c.clone()),
                Operand::Sql(..) => None,
            })
            .collect();
        let (x, ty, consts) = match (v, consts) {
            (Operand::Sql(x, ty), Some(consts)) => (x, ty, consts),
            // A constant value, or items that are not all constants (only a hand-built
            // tree): the `or` of equalities, which is what `in` means.
            (v, _) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    parts.push(self.compare(CmpOp::Eq, v.clone(), item, span)?);
                }
                return Ok(format!("({})", parts.join(" OR ")));
            }
        };
        let has_null = consts.contains(&Const::Null);
        let consts: Vec<Const> = consts.into_iter().filter(|c| *c != Const::Null).collect();
        let mismatch = || unfit(span, "these values cannot be compared");
        if ty == Type::Bool {
            let has = |b: bool| consts.contains(&Const::Bool(b));
            if consts.iter().any(|c| !matches!(c, Const::Bool(_))) {
                return Err(mismatch());
            }
            let sql = match (has(true), has(false)) {
                (true, true) => format!("({x} = {x})"),
                (true, false) => x.clone(),
                (false, true) => format!("(NOT {x})"),
                (false, false) => format!("({x} <> {x})"),
            };
            return Ok(if has_null {
                format!("(CASE WHEN {sql} THEN {TRUE} END)")
            } else {
                sql
            });
        }
        let as_time = ty == Type::DateTime
            || (ty == Type::Date && consts.iter().any(|c| matches!(c, Const::Time(_))));
        let mut values = Vec::with_capacity(consts.len());
        for c in &consts {
            let value = match (ty, c) {
                (Type::Int, Const::Int(i)) => Some(SqlValue::Int(*i)),
                (Type::Int, Const::Float(f)) => match fold_int_vs_float(CmpOp::Eq, *f) {
                    Folded::Cmp(_, v) => Some(v),
                    _ => None,
                },
                (Type::Float, Const::Float(f)) => Some(SqlValue::Float(*f)),
                (Type::Float, Const::Int(i)) => match fold_float_vs_int(CmpOp::Eq, *i) {
                    Folded::Cmp(_, v) => Some(v),
                    _ => None,
                },
                (Type::String, Const::Str(s)) => Some(SqlValue::Text(s.clone())),
                (Type::Date | Type::DateTime, Const::Date(d)) if as_time => {
                    Some(SqlValue::Int(d * MICROS_PER_DAY))
                }
                (Type::Date, Const::Date(d)) => Some(SqlValue::Int(*d)),
                (Type::Date | Type::DateTime, Const::Time(t)) => {
                    Some(SqlValue::Int(clamp_time(*t)))
                }
                _ => return Err(mismatch()),
            };
            values.extend(value);
        }
        let x = if ty == Type::Date && as_time {
            format!("({x} * {MICROS_PER_DAY})")
        } else {
            x
        };
        let mut list: Vec<String> = values.into_iter().map(|v| self.param(v)).collect();
        if has_null {
            list.push("NULL".to_owned());
        }
        if list.is_empty() {
            return Ok(format!("({x} <> {x})"));
        }
        Ok(format!("({x} IN ({}))", list.join(", ")))
    }

    fn matches(
        &mut self,
        op: MatchOp,
        ignore_case: bool,
        v: Operand,
        p: Operand,
        span: Span,
    ) -> Result<String, RuleError> {
        let mismatch = || unfit(span, "text matching needs text");
        let text = |o: Operand| match o {
            Operand::Const(Const::Null) => Ok(None),
            Operand::Const(Const::Str(s)) => Ok(Some(Operand::Const(Const::Str(if ignore_case {
                s.to_ascii_lowercase()
            } else {
                s
            })))),
            Operand::Sql(sql, Type::String) => Ok(Some(Operand::Sql(sql, Type::String))),
            _ => Err(mismatch()),
        };
        let (Some(v), Some(p)) = (text(v)?, text(p)?) else {
            return Ok(UNKNOWN.to_owned());
        };
        if let (Operand::Const(Const::Str(v)), Operand::Const(Const::Str(p))) = (&v, &p) {
            let hit = match op {
                MatchOp::Contains => memchr::memmem::find(v.as_bytes(), p.as_bytes()).is_some(),
                MatchOp::StartsWith => v.starts_with(p.as_str()),
                MatchOp::EndsWith => v.ends_with(p.as_str()),
            };
            return Ok((if hit { TRUE } else { FALSE }).to_owned());
        }
        let mut sql = |o: Operand| match o {
            Operand::Const(c) => self.constant(&c, false),
            Operand::Sql(sql, _) if ignore_case => self.lower(&sql),
            Operand::Sql(sql, _) => sql,
        };
        let x = sql(v);
        let p = sql(p);
        Ok(match (self.dialect, op) {
            (Dialect::Sqlite, MatchOp::Contains) => {
                format!("(instr(CAST({x} AS BLOB), CAST({p} AS BLOB)) > 0)")
            }
            // SQLite's `substr` of an empty blob is NULL: an empty text is matched apart.
            (Dialect::Sqlite, MatchOp::StartsWith) => format!(
                "(CASE WHEN length(CAST({x} AS BLOB)) = 0 THEN length(CAST({p} AS BLOB)) = 0 \
                 ELSE substr(CAST({x} AS BLOB), 1, length(CAST({p} AS BLOB))) = CAST({p} AS BLOB) END)"
            ),
            (Dialect::Sqlite, MatchOp::EndsWith) => format!(
                "(CASE WHEN length(CAST({x} AS BLOB)) = 0 THEN length(CAST({p} AS BLOB)) = 0 \
                 ELSE substr(CAST({x} AS BLOB), length(CAST({x} AS BLOB)) - length(CAST({p} AS BLOB)) \
                 + 1) = CAST({p} AS BLOB) END)"
            ),
            (Dialect::Postgres, MatchOp::Contains) => format!("(strpos({x}, {p}) > 0)"),
            (Dialect::Postgres, MatchOp::StartsWith) => format!("starts_with({x}, {p})"),
            (Dialect::Postgres, MatchOp::EndsWith) => {
                format!("(right({x}, length({p})) = {p})")
            }
        })
    }
}

#[cfg(test)]
mod tests;
