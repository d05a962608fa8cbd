//! Three-valued evaluation of a checked [`Rule`] over a [`RecipientsTable`], column by column.
//!
//! Every condition node yields two bitmaps over the table's rows — *true* and *unknown* (a
//! row in neither is *false*) — computed 64 rows to a word; value nodes (columns, literals,
//! `now()`, `lower(…)`, shifts) stay views of the table's columns or constants, so a rule
//! allocates a few bitmaps, never a row of values (except `lower(column)`, which lowercases
//! the column once). The result is a [`Selection`]: the rows whose root is *true*.
//!
//! Semantics (the same as the SQL of [`super::sql`], which the differential tests check
//! against SQLite):
//!
//! - SQL's three-valued logic: a comparison with a null is unknown, `not unknown` is unknown,
//!   `false and unknown` is false, `true or unknown` is true; an unknown root is not selected;
//! - `x in (…)` is true if `x` equals an item, else unknown if `x` is null, else false;
//!   `not in` negates it; `x between a and b` is `x >= a and x <= b`; `is null` and
//!   `in_list` are never unknown;
//! - whole numbers and floats compare exactly (as SQLite's INTEGER with REAL: never by
//!   rounding the integer to a float); a NaN float counts as null (SQLite stores NaN as NULL);
//! - text compares bytewise; `lower` is ASCII-only; `contains`, `starts_with` and
//!   `ends_with` match bytes (the `i`-variants after ASCII lowercasing both sides); an empty
//!   pattern matches every non-null text;
//! - dates and date-times compare as instants, a date being its midnight UTC; a shift
//!   (`x ± 30d`) is a date-time (a date is first its midnight); arithmetic is exact (`i128`
//!   microseconds), so no shift overflows.
//!
//! A rule checked against one schema may be run over a table whose columns differ: a missing
//! column, or a column whose type cannot take part where the rule uses it (text where a number
//! is compared), is an [`EvalError`] — never a silently empty result. Columns that still
//! compare (an integer column where the schema said float, a date where it said date-time)
//! are evaluated by their actual type.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use memchr::memmem;
use rustc_hash::FxBuildHasher;

type FxHashSet<K> = hashbrown::HashSet<K, FxBuildHasher>;
use serde::Serialize;

use super::ast::{CmpOp, Expr, ExprKind, Literal, MatchOp, Rule, Sign, Span};
use crate::recipients::{
    ColumnData, ID_COLUMN, RecipientIds, RecipientKey, RecipientsTable, Strings,
};
use crate::time::{Date, Timestamp};

/// Microseconds in a day: a date is `days × MICROS_PER_DAY` as an instant.
pub(crate) const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Item lists up to this size are scanned; longer ones are hashed.
const SMALL_SET: usize = 8;

/// What an evaluation needs besides the rule and the table.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext<'a> {
    /// The value of `now()`.
    pub now: Timestamp,
    /// The members of each list, for `in_list("name")`; a list missing here is empty. A key
    /// matches the row whose id has the same text (see [`RecipientKey`]).
    pub lists: &'a BTreeMap<String, Vec<RecipientKey>>,
}

/// Why a rule cannot be evaluated over a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum EvalError {
    /// The rule names a column the table does not have.
    #[error("column \"{name}\" is not in the recipients table (at {span})")]
    MissingColumn {
        /// The column's name.
        name: String,
        /// Where the rule names it.
        span: Span,
    },
    /// A column's type in the table does not fit its use in the rule (the rule was checked
    /// against another schema).
    #[error("the rule does not fit the recipients table: {detail} (at {span})")]
    Mismatch {
        /// The node that does not fit.
        span: Span,
        /// What was expected and found, e.g. `cannot compare text with number`.
        detail: String,
    },
    /// A column has another number of rows than the table's ids.
    #[error("column \"{name}\" has {found} rows, the table {expected}")]
    RaggedColumn {
        /// The column's name.
        name: String,
        /// Rows of the table.
        expected: usize,
        /// Rows of the column.
        found: usize,
    },
}

/// A set of rows of one table: a bitmap, 64 rows to a word.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    words: Vec<u64>,
    len: usize,
}

impl Selection {
    /// No row of a table of `len` rows.
    pub fn empty(len: usize) -> Selection {
        Selection {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Every row of a table of `len` rows.
    pub fn full(len: usize) -> Selection {
        let mut words = vec![u64::MAX; len.div_ceil(64)];
        if let Some(last) = words.last_mut() {
            *last = last_mask(len);
        }
        Selection { words, len }
    }

    /// The rows `rows` (out-of-range rows are ignored) of a table of `len` rows.
    pub fn from_rows(len: usize, rows: impl IntoIterator<Item = usize>) -> Selection {
        let mut selection = Selection::empty(len);
        for row in rows {
            if row < len {
                selection.words[row / 64] |= 1 << (row % 64);
            }
        }
        selection
    }

    /// The rows of the table whose id is one of `keys` (by text, as `in_list`).
    pub fn of_keys(table: &RecipientsTable, keys: &[RecipientKey]) -> Selection {
        let n = table.len();
        Selection {
            words: member_bits(&table.ids, n, keys),
            len: n,
        }
    }

    /// Rows of the table the selection is over.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of rows selected.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether row `row` is selected.
    pub fn contains(&self, row: usize) -> bool {
        row < self.len && self.words[row / 64] >> (row % 64) & 1 == 1
    }

    /// The selected rows, ascending.
    pub fn rows(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut word = word;
            std::iter::from_fn(move || {
                (word != 0).then(|| {
                    let bit = word.trailing_zeros() as usize;
                    word &= word - 1;
                    i * 64 + bit
                })
            })
        })
    }

    /// The bitmap: row `r` is bit `r % 64` of word `r / 64`; bits past [`Selection::len`] are 0.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Rows in both (over the shorter table when lengths differ).
    pub fn intersection_count(&self, other: &Selection) -> usize {
        self.words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| (a & b).count_ones() as usize)
            .sum()
    }
}

/// Evaluates `rule` over every row of `table`: the rows where it is true.
pub fn evaluate(
    rule: &Rule,
    table: &RecipientsTable,
    ctx: &EvalContext<'_>,
) -> Result<Selection, EvalError> {
    let eval = Evaluator::new(table, ctx)?;
    let tri = eval.condition(rule.expr())?;
    Ok(Selection {
        words: tri.t,
        len: eval.n,
    })
}

/// Mask of the valid bits of the last word of `len` rows.
fn last_mask(len: usize) -> u64 {
    match len % 64 {
        0 => u64::MAX,
        r => (1 << r) - 1,
    }
}

/// A three-valued column: `t` rows are true, `u` rows unknown, the others false.
#[derive(Debug, Clone)]
struct Tri {
    t: Vec<u64>,
    u: Vec<u64>,
}

impl Tri {
    fn constant(n: usize, value: Option<bool>) -> Tri {
        let (t, u) = match value {
            Some(true) => (Selection::full(n).words, vec![0; n.div_ceil(64)]),
            Some(false) => (vec![0; n.div_ceil(64)], vec![0; n.div_ceil(64)]),
            None => (vec![0; n.div_ceil(64)], Selection::full(n).words),
        };
        Tri { t, u }
    }

    /// `not`: true ↔ false, unknown stays.
    fn not(mut self, n: usize) -> Tri {
        let words = self.t.len();
        for (i, (t, u)) in self.t.iter_mut().zip(&self.u).enumerate() {
            let mask = if i + 1 == words {
                last_mask(n)
            } else {
                u64::MAX
            };
            *t = !*t & !*u & mask;
        }
        self
    }

    fn and(mut self, other: &Tri) -> Tri {
        for i in 0..self.t.len() {
            let (at, au, bt, bu) = (self.t[i], self.u[i], other.t[i], other.u[i]);
            self.t[i] = at & bt;
            self.u[i] = (au | bu) & (at | au) & (bt | bu);
        }
        self
    }

    fn or(mut self, other: &Tri) -> Tri {
        for i in 0..self.t.len() {
            let t = self.t[i] | other.t[i];
            self.u[i] = (self.u[i] | other.u[i]) & !t;
            self.t[i] = t;
        }
        self
    }

    /// The value of row `i`.
    fn get(&self, i: usize) -> Option<bool> {
        let (w, b) = (i / 64, i % 64);
        if self.u[w] >> b & 1 == 1 {
            None
        } else {
            Some(self.t[w] >> b & 1 == 1)
        }
    }

    /// Whether `i` is null as a value (unknown).
    fn is_null(&self, i: usize) -> bool {
        self.u[i / 64] >> (i % 64) & 1 == 1
    }
}

/// Builds a [`Tri`] from a per-row function, 64 rows at a time.
#[inline(always)]
fn tri_from(n: usize, mut f: impl FnMut(usize) -> Option<bool>) -> Tri {
    let words = n.div_ceil(64);
    let mut t = vec![0u64; words];
    let mut u = vec![0u64; words];
    for w in 0..words {
        let base = w * 64;
        let end = n.min(base + 64);
        let (mut tw, mut uw) = (0u64, 0u64);
        for i in base..end {
            let r = f(i);
            let bit = i - base;
            tw |= u64::from(r == Some(true)) << bit;
            uw |= u64::from(r.is_none()) << bit;
        }
        t[w] = tw;
        u[w] = uw;
    }
    Tri { t, u }
}

/// The orderings an operator accepts, as bits `Less`, `Equal`, `Greater`.
fn op_mask(op: CmpOp) -> u8 {
    match op {
        CmpOp::Eq => 0b010,
        CmpOp::Ne => 0b101,
        CmpOp::Lt => 0b001,
        CmpOp::Le => 0b011,
        CmpOp::Gt => 0b100,
        CmpOp::Ge => 0b110,
    }
}

#[inline(always)]
fn holds(mask: u8, ord: Ordering) -> bool {
    mask >> (ord as i8 + 1) & 1 == 1
}

/// `left op right` per row, unknown where either is null.
#[inline(always)]
fn compare_rows<A, B>(
    n: usize,
    left: impl Fn(usize) -> Option<A>,
    right: impl Fn(usize) -> Option<B>,
    cmp: impl Fn(A, B) -> Ordering,
    mask: u8,
) -> Tri {
    tri_from(n, |i| match (left(i), right(i)) {
        (Some(a), Some(b)) => Some(holds(mask, cmp(a, b))),
        _ => None,
    })
}

/// Exact order of an integer and a (non-NaN) float, as SQLite's `sqlite3IntFloatCompare`.
pub(crate) fn cmp_int_float(i: i64, f: f64) -> Ordering {
    // ±2^63 as floats.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f < -TWO_63 {
        return Ordering::Greater;
    }
    if f >= TWO_63 {
        return Ordering::Less;
    }
    let whole = f.trunc();
    // Exact: `whole` is integral and in [-2^63, 2^63).
    let y = whole as i64;
    match i.cmp(&y) {
        Ordering::Equal => 0.0_f64.partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal),
        other => other,
    }
}

/// A number of either kind, compared exactly with the other kind.
trait Number: Copy {
    fn compare<B: Number>(self, other: B) -> Ordering;
    /// `self` against an integer.
    fn vs_int(self, other: i64) -> Ordering;
    /// `self` against a float.
    fn vs_float(self, other: f64) -> Ordering;
    /// Whether `self` equals one of `items`.
    fn in_items(self, items: &NumItems) -> bool;
}

impl Number for i64 {
    fn compare<B: Number>(self, other: B) -> Ordering {
        other.vs_int(self).reverse()
    }
    fn vs_int(self, other: i64) -> Ordering {
        self.cmp(&other)
    }
    fn vs_float(self, other: f64) -> Ordering {
        cmp_int_float(self, other)
    }
    fn in_items(self, items: &NumItems) -> bool {
        items.ints.contains(&self)
    }
}

impl Number for f64 {
    fn compare<B: Number>(self, other: B) -> Ordering {
        other.vs_float(self).reverse()
    }
    fn vs_int(self, other: i64) -> Ordering {
        cmp_int_float(other, self).reverse()
    }
    fn vs_float(self, other: f64) -> Ordering {
        self.partial_cmp(&other).unwrap_or(Ordering::Equal)
    }
    fn in_items(self, items: &NumItems) -> bool {
        items.floats.contains(&float_key(self))
    }
}

/// Bits of a float for equality (`-0.0` as `0.0`).
fn float_key(f: f64) -> u64 {
    if f == 0.0 { 0 } else { f.to_bits() }
}

/// A scanned or hashed set of keys.
#[derive(Debug)]
enum KeySet<K> {
    Small(Vec<K>),
    Large(FxHashSet<K>),
}

impl<K: Eq + std::hash::Hash> KeySet<K> {
    fn new(keys: Vec<K>) -> KeySet<K> {
        if keys.len() <= SMALL_SET {
            KeySet::Small(keys)
        } else {
            KeySet::Large(keys.into_iter().collect())
        }
    }

    #[inline(always)]
    fn contains<Q>(&self, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + std::hash::Hash + ?Sized,
    {
        match self {
            KeySet::Small(keys) => keys.iter().any(|k| k.borrow() == key),
            KeySet::Large(keys) => keys.contains(key),
        }
    }
}

/// The numeric items of an `in`, as the integers and the floats they exactly equal.
#[derive(Debug)]
struct NumItems {
    ints: KeySet<i64>,
    floats: KeySet<u64>,
}

/// A number source: a constant or a column view.
#[derive(Debug)]
enum NumSrc<'a> {
    ConstInt(i64),
    ConstFloat(f64),
    Int(&'a [Option<i64>]),
    Float(&'a [Option<f64>]),
    Ids(&'a [i64]),
}

/// Binds `$get` to the per-row accessor of a [`NumSrc`] and expands `$body` for each kind.
macro_rules! with_num {
    ($src:expr, $get:ident => $body:expr) => {
        match $src {
            NumSrc::ConstInt(c) => {
                let c = *c;
                let $get = move |_: usize| Some(c);
                $body
            }
            NumSrc::ConstFloat(c) => {
                let c = *c;
                let $get = move |_: usize| (!c.is_nan()).then_some(c);
                $body
            }
            NumSrc::Int(v) => {
                let $get = |i: usize| v[i];
                $body
            }
            NumSrc::Float(v) => {
                let $get = |i: usize| v[i].filter(|x| !x.is_nan());
                $body
            }
            NumSrc::Ids(v) => {
                let $get = |i: usize| Some(v[i]);
                $body
            }
        }
    };
}

/// An instant source, in exact microseconds: a constant, or a date or date-time column
/// shifted by `offset` microseconds.
#[derive(Debug)]
enum TimeSrc<'a> {
    Const(i128),
    Date(&'a [Option<Date>], i128),
    DateTime(&'a [Option<Timestamp>], i128),
}

impl TimeSrc<'_> {
    fn shift(self, by: i128) -> Self {
        match self {
            TimeSrc::Const(c) => TimeSrc::Const(c + by),
            TimeSrc::Date(v, off) => TimeSrc::Date(v, off + by),
            TimeSrc::DateTime(v, off) => TimeSrc::DateTime(v, off + by),
        }
    }
}

macro_rules! with_time {
    ($src:expr, $get:ident => $body:expr) => {
        match $src {
            TimeSrc::Const(c) => {
                let c = *c;
                let $get = move |_: usize| Some(c);
                $body
            }
            TimeSrc::Date(v, off) => {
                let off = *off;
                let $get = move |i: usize| {
                    v[i].map(|d| i128::from(d.days()) * i128::from(MICROS_PER_DAY) + off)
                };
                $body
            }
            TimeSrc::DateTime(v, off) => {
                let off = *off;
                let $get = move |i: usize| v[i].map(|t| i128::from(t.unix_micros()) + off);
                $body
            }
        }
    };
}

/// A text source: a constant or a column (borrowed, or lowercased).
#[derive(Debug)]
enum StrSrc<'a> {
    Const(Cow<'a, str>),
    Col(Cow<'a, Strings>),
}

impl StrSrc<'_> {
    #[inline(always)]
    fn get(&self, i: usize) -> Option<&[u8]> {
        match self {
            StrSrc::Const(c) => Some(c.as_bytes()),
            StrSrc::Col(col) => col.get(i).map(str::as_bytes),
        }
    }

    fn lower(self) -> StrSrc<'static> {
        match self {
            StrSrc::Const(c) => StrSrc::Const(Cow::Owned(c.to_ascii_lowercase())),
            StrSrc::Col(col) => {
                let mut out = Strings::new();
                let mut buf = String::new();
                for value in col.iter() {
                    match value {
                        Some(v) => {
                            buf.clear();
                            buf.push_str(v);
                            buf.make_ascii_lowercase();
                            out.push(Some(&buf));
                        }
                        None => out.push(None),
                    }
                }
                StrSrc::Col(Cow::Owned(out))
            }
        }
    }
}

/// The value of a node.
#[derive(Debug)]
enum Val<'a> {
    Null,
    Bool(Tri),
    Num(NumSrc<'a>),
    Time(TimeSrc<'a>),
    Str(StrSrc<'a>),
    Duration(i64),
}

impl Val<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "true/false",
            Val::Num(_) => "number",
            Val::Time(_) => "date",
            Val::Str(_) => "text",
            Val::Duration(_) => "duration",
        }
    }
}

struct Evaluator<'a> {
    table: &'a RecipientsTable,
    ctx: &'a EvalContext<'a>,
    n: usize,
}

fn mismatch(span: Span, detail: String) -> EvalError {
    EvalError::Mismatch { span, detail }
}

impl<'a> Evaluator<'a> {
    fn new(table: &'a RecipientsTable, ctx: &'a EvalContext<'a>) -> Result<Self, EvalError> {
        let n = table.len();
        Ok(Evaluator { table, ctx, n })
    }

    /// A node that must be a condition.
    fn condition(&self, expr: &Expr) -> Result<Tri, EvalError> {
        match self.value(expr)? {
            Val::Bool(tri) => Ok(tri),
            Val::Null => Ok(Tri::constant(self.n, None)),
            other => Err(mismatch(
                expr.span,
                format!("expected a condition, found {}", other.kind()),
            )),
        }
    }

    fn value(&self, expr: &'a Expr) -> Result<Val<'a>, EvalError> {
        let n = self.n;
        Ok(match &expr.kind {
            ExprKind::Literal(lit) => match lit {
                Literal::Null => Val::Null,
                Literal::Bool(b) => Val::Bool(Tri::constant(n, Some(*b))),
                Literal::Int(i) => Val::Num(NumSrc::ConstInt(*i)),
                Literal::Float(f) => Val::Num(NumSrc::ConstFloat(*f)),
                Literal::String(s) => Val::Str(StrSrc::Const(Cow::Borrowed(s))),
                Literal::Date(d) => Val::Time(TimeSrc::Const(
                    i128::from(d.days()) * i128::from(MICROS_PER_DAY),
                )),
                Literal::DateTime(t) => Val::Time(TimeSrc::Const(i128::from(t.unix_micros()))),
                Literal::Duration(d) => Val::Duration(*d),
            },
            ExprKind::Column(name) => self.column(name, expr.span)?,
            ExprKind::Now => Val::Time(TimeSrc::Const(i128::from(self.ctx.now.unix_micros()))),
            ExprKind::Lower(inner) => match self.value(inner)? {
                Val::Null => Val::Null,
                Val::Str(s) => Val::Str(s.lower()),
                other => {
                    return Err(mismatch(
                        inner.span,
                        format!("lower() needs text, found {}", other.kind()),
                    ));
                }
            },
            ExprKind::Shift { base, sign, by } => {
                let by_val = match self.value(by)? {
                    Val::Duration(d) => i128::from(d),
                    Val::Null => return Ok(Val::Null),
                    other => {
                        return Err(mismatch(
                            by.span,
                            format!("expected a duration, found {}", other.kind()),
                        ));
                    }
                };
                let by_val = match sign {
                    Sign::Plus => by_val,
                    Sign::Minus => -by_val,
                };
                match self.value(base)? {
                    Val::Null => Val::Null,
                    Val::Time(t) => Val::Time(t.shift(by_val)),
                    other => {
                        return Err(mismatch(
                            base.span,
                            format!("only a date can be shifted, found {}", other.kind()),
                        ));
                    }
                }
            }
            ExprKind::Compare { op, left, right } => {
                let l = self.value(left)?;
                let r = self.value(right)?;
                Val::Bool(self.compare(&l, &r, op_mask(*op), expr.span)?)
            }
            ExprKind::In {
                value,
                items,
                negated,
            } => {
                let v = self.value(value)?;
                let tri = self.in_items(&v, items, expr.span)?;
                Val::Bool(if *negated { tri.not(n) } else { tri })
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
                let ge = self.compare(&v, &lo, op_mask(CmpOp::Ge), expr.span)?;
                let le = self.compare(&v, &hi, op_mask(CmpOp::Le), expr.span)?;
                let tri = ge.and(&le);
                Val::Bool(if *negated { tri.not(n) } else { tri })
            }
            ExprKind::IsNull { value, negated } => {
                let v = self.value(value)?;
                let null = self.is_null(&v);
                Val::Bool(if *negated { null.not(n) } else { null })
            }
            ExprKind::Match {
                op,
                ignore_case,
                value,
                pattern,
            } => {
                let v = self.value(value)?;
                let p = self.value(pattern)?;
                Val::Bool(self.matches(*op, *ignore_case, v, p, expr.span)?)
            }
            ExprKind::InList(name) => {
                let members = self.ctx.lists.get(name).map_or(&[][..], Vec::as_slice);
                let t = member_bits(&self.table.ids, n, members);
                Val::Bool(Tri {
                    t,
                    u: vec![0; n.div_ceil(64)],
                })
            }
            ExprKind::Not(inner) => Val::Bool(self.condition(inner)?.not(n)),
            ExprKind::And(left, right) => {
                let l = self.condition(left)?;
                // Nothing can turn a false row of `left` true: skip `right` when all are false.
                if l.t.iter().chain(&l.u).all(|&w| w == 0) {
                    return Ok(Val::Bool(l));
                }
                Val::Bool(l.and(&self.condition(right)?))
            }
            ExprKind::Or(left, right) => {
                let l = self.condition(left)?;
                Val::Bool(l.or(&self.condition(right)?))
            }
        })
    }

    fn column(&self, name: &str, span: Span) -> Result<Val<'a>, EvalError> {
        let n = self.n;
        if name == ID_COLUMN {
            return Ok(match &self.table.ids {
                RecipientIds::Int(ids) => Val::Num(NumSrc::Ids(ids)),
                RecipientIds::String(ids) => Val::Str(StrSrc::Col(Cow::Borrowed(ids))),
            });
        }
        let Some(column) = self.table.column(name) else {
            return Err(EvalError::MissingColumn {
                name: name.to_owned(),
                span,
            });
        };
        if column.data.len() != n {
            return Err(EvalError::RaggedColumn {
                name: name.to_owned(),
                expected: n,
                found: column.data.len(),
            });
        }
        Ok(match &column.data {
            ColumnData::Bool(v) => Val::Bool(tri_from(n, |i| v[i])),
            ColumnData::Int(v) => Val::Num(NumSrc::Int(v)),
            ColumnData::Float(v) => Val::Num(NumSrc::Float(v)),
            ColumnData::Date(v) => Val::Time(TimeSrc::Date(v, 0)),
            ColumnData::DateTime(v) => Val::Time(TimeSrc::DateTime(v, 0)),
            ColumnData::String(v) => Val::Str(StrSrc::Col(Cow::Borrowed(v))),
        })
    }

    /// `l op r` where `mask` holds the accepted orderings.
    fn compare(&self, l: &Val<'_>, r: &Val<'_>, mask: u8, span: Span) -> Result<Tri, EvalError> {
        let n = self.n;
        Ok(match (l, r) {
            (Val::Null, _) | (_, Val::Null) => Tri::constant(n, None),
            (Val::Num(a), Val::Num(b)) => with_num!(a, ga => with_num!(b, gb => {
                compare_rows(n, ga, gb, |x, y| x.compare(y), mask)
            })),
            (Val::Time(a), Val::Time(b)) => with_time!(a, ga => with_time!(b, gb => {
                compare_rows(n, ga, gb, |x: i128, y: i128| x.cmp(&y), mask)
            })),
            (Val::Str(a), Val::Str(b)) => match b {
                StrSrc::Const(c) => {
                    let c = c.as_bytes();
                    compare_rows(n, |i| a.get(i), |_| Some(c), |x, y| x.cmp(y), mask)
                }
                StrSrc::Col(_) => {
                    compare_rows(n, |i| a.get(i), |i| b.get(i), |x, y| x.cmp(y), mask)
                }
            },
            (Val::Bool(a), Val::Bool(b)) => {
                compare_rows(n, |i| a.get(i), |i| b.get(i), |x, y| x.cmp(&y), mask)
            }
            _ => {
                return Err(mismatch(
                    span,
                    format!("cannot compare {} with {}", l.kind(), r.kind()),
                ));
            }
        })
    }

    /// `v in (items)`: true on a match, unknown when `v` is null (or an item is), else false.
    fn in_items(&self, v: &Val<'_>, items: &'a [Expr], span: Span) -> Result<Tri, EvalError> {
        let n = self.n;
        let mut vals = Vec::with_capacity(items.len());
        for item in items {
            vals.push(self.value(item)?);
        }
        let has_null = vals.iter().any(|v| matches!(v, Val::Null));
        let constant = vals.iter().all(|v| {
            matches!(
                v,
                Val::Null
                    | Val::Num(NumSrc::ConstInt(_) | NumSrc::ConstFloat(_))
                    | Val::Time(TimeSrc::Const(_))
                    | Val::Str(StrSrc::Const(_))
            )
        });
        let mismatched = |item: &Val<'_>| {
            mismatch(
                span,
                format!("cannot compare {} with {}", v.kind(), item.kind()),
            )
        };
        let mut tri = match v {
            Val::Null => return Ok(Tri::constant(n, None)),
            // Items not all constants (only a hand-built tree): the `or` of equalities.
            _ if !constant || matches!(v, Val::Bool(_)) => {
                let mut acc = Tri::constant(n, Some(false));
                for item in &vals {
                    acc = acc.or(&self.compare(v, item, op_mask(CmpOp::Eq), span)?);
                }
                return Ok(acc);
            }
            Val::Num(src) => {
                let (mut ints, mut floats) = (Vec::new(), Vec::new());
                for item in &vals {
                    match item {
                        Val::Num(NumSrc::ConstInt(i)) => {
                            ints.push(*i);
                            let f = *i as f64;
                            if cmp_int_float(*i, f) == Ordering::Equal {
                                floats.push(float_key(f));
                            }
                        }
                        Val::Num(NumSrc::ConstFloat(f)) if !f.is_nan() => {
                            floats.push(float_key(*f));
                            if f.trunc() == *f && cmp_int_float(*f as i64, *f) == Ordering::Equal {
                                ints.push(*f as i64);
                            }
                        }
                        Val::Num(_) | Val::Null => {}
                        other => return Err(mismatched(other)),
                    }
                }
                let set = NumItems {
                    ints: KeySet::new(ints),
                    floats: KeySet::new(floats),
                };
                with_num!(src, get => tri_from(n, |i| get(i).map(|x| x.in_items(&set))))
            }
            Val::Time(src) => {
                let mut keys = Vec::new();
                for item in &vals {
                    match item {
                        Val::Time(TimeSrc::Const(c)) => keys.push(*c),
                        Val::Null => {}
                        other => return Err(mismatched(other)),
                    }
                }
                let set = KeySet::new(keys);
                with_time!(src, get => tri_from(n, |i| get(i).map(|x| set.contains(&x))))
            }
            Val::Str(src) => {
                let mut keys: Vec<&[u8]> = Vec::new();
                for item in &vals {
                    match item {
                        Val::Str(StrSrc::Const(c)) => keys.push(c.as_bytes()),
                        Val::Null => {}
                        other => return Err(mismatched(other)),
                    }
                }
                let set = KeySet::new(keys);
                tri_from(n, |i| src.get(i).map(|x| set.contains(x)))
            }
            other => return Err(mismatched(other)),
        };
        if has_null {
            // `x in (…, null)`: a non-null non-match is unknown.
            for (t, u) in tri.t.iter().zip(tri.u.iter_mut()) {
                *u = !*t;
            }
            let last = tri.u.len().saturating_sub(1);
            if let Some(u) = tri.u.get_mut(last) {
                *u &= last_mask(n);
            }
        }
        Ok(tri)
    }

    fn is_null(&self, v: &Val<'_>) -> Tri {
        let n = self.n;
        let null = |f: &dyn Fn(usize) -> bool| tri_from(n, |i| Some(f(i)));
        match v {
            Val::Null => Tri::constant(n, Some(true)),
            Val::Duration(_) => Tri::constant(n, Some(false)),
            Val::Bool(tri) => null(&|i| tri.is_null(i)),
            Val::Num(src) => with_num!(src, get => tri_from(n, |i| Some(get(i).is_none()))),
            Val::Time(src) => with_time!(src, get => tri_from(n, |i| Some(get(i).is_none()))),
            Val::Str(src) => tri_from(n, |i| Some(src.get(i).is_none())),
        }
    }

    fn matches(
        &self,
        op: MatchOp,
        ignore_case: bool,
        v: Val<'_>,
        p: Val<'_>,
        span: Span,
    ) -> Result<Tri, EvalError> {
        let n = self.n;
        let (v, p) = match (v, p) {
            (Val::Null, _) | (_, Val::Null) => return Ok(Tri::constant(n, None)),
            (Val::Str(v), Val::Str(p)) => {
                if ignore_case {
                    (v.lower(), p.lower())
                } else {
                    (v, p)
                }
            }
            (v, p) => {
                return Err(mismatch(
                    span,
                    format!(
                        "text matching needs text, found {} and {}",
                        v.kind(),
                        p.kind()
                    ),
                ));
            }
        };
        Ok(match (&p, op) {
            (StrSrc::Const(c), MatchOp::Contains) => {
                let finder = memmem::Finder::new(c.as_bytes());
                tri_from(n, |i| v.get(i).map(|x| finder.find(x).is_some()))
            }
            (StrSrc::Const(c), MatchOp::StartsWith) => {
                let c = c.as_bytes();
                tri_from(n, |i| v.get(i).map(|x| x.starts_with(c)))
            }
            (StrSrc::Const(c), MatchOp::EndsWith) => {
                let c = c.as_bytes();
                tri_from(n, |i| v.get(i).map(|x| x.ends_with(c)))
            }
            (StrSrc::Col(_), _) => tri_from(n, |i| match (v.get(i), p.get(i)) {
                (Some(x), Some(pat)) => Some(match op {
                    MatchOp::Contains => memmem::find(x, pat).is_some(),
                    MatchOp::StartsWith => x.starts_with(pat),
                    MatchOp::EndsWith => x.ends_with(pat),
                }),
                _ => None,
            }),
        })
    }
}

/// The bitmap of rows whose id has the text of one of `keys`.
fn member_bits(ids: &RecipientIds, n: usize, keys: &[RecipientKey]) -> Vec<u64> {
    let mut words = vec![0u64; n.div_ceil(64)];
    if keys.is_empty() {
        return words;
    }
    let mut set_bits = |hit: &dyn Fn(usize) -> bool| {
        for (w, word) in words.iter_mut().enumerate() {
            let base = w * 64;
            for i in base..n.min(base + 64) {
                *word |= u64::from(hit(i)) << (i - base);
            }
        }
    };
    match ids {
        RecipientIds::Int(ids) => {
            let set: FxHashSet<i64> = keys
                .iter()
                // A text key matches an integer id only if it is its canonical text.
                .filter_map(RecipientKey::as_int)
                .collect();
            let ids = &ids[..n];
            set_bits(&|i| set.contains(&ids[i]));
        }
        RecipientIds::String(ids) => {
            let texts: Vec<Cow<'_, str>> = keys
                .iter()
                .map(|k| match k {
                    RecipientKey::Int(i) => Cow::Owned(i.to_string()),
                    RecipientKey::String(s) => Cow::Borrowed(s.as_str()),
                })
                .collect();
            let set: FxHashSet<&str> = texts.iter().map(|t| t.as_ref()).collect();
            set_bits(&|i| ids.get(i).is_some_and(|id| set.contains(id)));
        }
    }
    words
}

#[cfg(test)]
mod tests;
