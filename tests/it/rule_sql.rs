//! Differential property test of segment rules: random well-typed rules over random tables,
//! evaluated by `audlink_core::rule::eval` and, compiled by `audlink_core::rule::sql`, by
//! SQLite (in memory, tables created with the storage convention) — the selected ids must be
//! the same.
//!
//! Generation draws every choice from a tape of numbers proptest generates (and shrinks
//! towards zeros, the simplest choices: first pool values, leaves, no nulls). It is written
//! per [`Dialect`] so PostgreSQL can be added (its pools leave out NUL characters); only
//! SQLite runs here.

use std::collections::BTreeMap;

use audlink_core::recipients::{
    Column, ColumnData, RecipientIds, RecipientKey, RecipientsTable, Strings,
};
use audlink_core::rule::ast::{CmpOp, Expr, ExprKind, Literal, MatchOp, Sign, Span};
use audlink_core::rule::check::check;
use audlink_core::rule::eval::{EvalContext, evaluate};
use audlink_core::rule::sql::{
    Dialect, SqlTables, SqlValue, SqlWhere, quote_ident, storage_type, to_sql,
};
use audlink_core::rule::{Rule, Schema, Type};
use audlink_core::time::{Date, Timestamp};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use rusqlite::types::Value;

const DAY: i64 = 86_400_000_000;
const TWO_53: i64 = 1 << 53;

/// Rules per generated table.
const RULES_PER_TABLE: usize = 6;

/// Choices read from a proptest-generated tape; past its end every choice is 0.
struct Tape<'a> {
    data: &'a [u32],
    pos: usize,
}

impl Tape<'_> {
    fn next(&mut self) -> u32 {
        let v = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        v
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        self.next() as usize % n
    }

    /// True with `percent` % probability (false on a zero).
    fn chance(&mut self, percent: u32) -> bool {
        let v = self.next() % 100;
        v != 0 && v <= percent
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

/// One value of a generated row.
#[derive(Debug, Clone)]
enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Date(Date),
    Time(Timestamp),
}

/// Value pools, per dialect.
struct Pools {
    ints: Vec<i64>,
    floats: Vec<f64>,
    strings: Vec<&'static str>,
    dates: Vec<Date>,
    times: Vec<Timestamp>,
    durations: Vec<i64>,
}

impl Pools {
    fn new(dialect: Dialect) -> Pools {
        let mut strings = vec![
            "",
            "a",
            "A",
            "ab",
            "aB",
            "abc",
            "ABC",
            "b",
            "Z",
            "z",
            "é",
            "É",
            "äöü",
            "ÄÖÜ",
            "ß",
            "İ",
            "日本語",
            "mañana",
            "MAÑANA",
            "x@example.com",
            "X@Example.COM",
            "@example.com",
            "example",
            "%",
            "_",
            "a b",
            "10",
            "9",
        ];
        if dialect == Dialect::Sqlite {
            // PostgreSQL text cannot hold NUL.
            strings.extend(["a\0b", "\0"]);
        }
        let day = |d: i32| Date::from_days(d).expect("date in range");
        let at = |m: i64| Timestamp::from_unix_micros(m).expect("instant in range");
        Pools {
            ints: vec![
                0,
                1,
                -1,
                17,
                18,
                19,
                i64::MIN,
                i64::MAX,
                i64::MIN + 1,
                i64::MAX - 1,
                TWO_53 - 1,
                TWO_53,
                TWO_53 + 1,
                -TWO_53 - 1,
                1_000_000,
                DAY,
            ],
            floats: vec![
                0.0,
                -0.0,
                0.5,
                -0.5,
                1.0,
                17.5,
                18.0,
                TWO_53 as f64,
                9_007_199_254_740_994.0,
                9_007_199_254_740_996.0,
                9_223_372_036_854_775_808.0,
                -9_223_372_036_854_775_808.0,
                9_223_372_036_854_774_784.0,
                1e300,
                -1e300,
                f64::MIN_POSITIVE,
                0.1,
                1.5,
                -1.5,
            ],
            strings,
            dates: [
                0, -1, 1, -719_528, 2_932_896, 19_000, 19_001, 20_000, -25_567,
            ]
            .map(day)
            .to_vec(),
            times: vec![
                at(0),
                at(-1),
                at(1),
                at(DAY - 1),
                at(DAY),
                at(19_000 * DAY),
                at(19_000 * DAY + 1),
                at(19_000 * DAY - 1),
                Timestamp::MIN,
                Timestamp::MAX,
                at(20_000 * DAY + 3_600_000_000),
                at(-DAY),
            ],
            durations: vec![
                0,
                1_000_000,
                3_600_000_000,
                DAY,
                30 * DAY,
                90 * DAY,
                19_000 * DAY,
                100_000 * DAY,
            ],
        }
    }
}

/// What kind of values a comparison is between.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    Num,
    Str,
    Time,
    Bool,
}

/// A generated case: schema, table, lists, rules.
struct World {
    schema: Schema,
    table: RecipientsTable,
    lists: BTreeMap<String, Vec<RecipientKey>>,
    now: Timestamp,
}

struct Gen<'t, 'd> {
    tape: &'t mut Tape<'d>,
    pools: &'t Pools,
    schema: &'t Schema,
}

fn node(kind: ExprKind) -> Expr {
    Expr::new(kind, Span::default())
}

fn lit(l: Literal) -> Expr {
    node(ExprKind::Literal(l))
}

impl Gen<'_, '_> {
    fn columns(&self, ty: Type) -> Vec<String> {
        self.schema
            .columns()
            .iter()
            .filter(|(_, t)| *t == ty)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// A column of one of `types`, if the schema has one.
    fn column(&mut self, types: &[Type]) -> Option<Expr> {
        let names: Vec<String> = types.iter().flat_map(|t| self.columns(*t)).collect();
        if names.is_empty() {
            return None;
        }
        Some(node(ExprKind::Column(self.tape.pick(&names))))
    }

    fn literal(&mut self, class: Class) -> Expr {
        let p = self.pools;
        lit(match class {
            Class::Num if self.tape.chance(50) => Literal::Float(self.tape.pick(&p.floats)),
            Class::Num => Literal::Int(self.tape.pick(&p.ints)),
            Class::Str => Literal::String(self.tape.pick(&p.strings).to_owned()),
            Class::Time if self.tape.chance(50) => Literal::DateTime(self.tape.pick(&p.times)),
            Class::Time => Literal::Date(self.tape.pick(&p.dates)),
            Class::Bool => Literal::Bool(self.tape.chance(50)),
        })
    }

    fn types(class: Class) -> &'static [Type] {
        match class {
            Class::Num => &[Type::Int, Type::Float],
            Class::Str => &[Type::String],
            Class::Time => &[Type::Date, Type::DateTime],
            Class::Bool => &[Type::Bool],
        }
    }

    /// A value of `class`: mostly columns, some literals and expressions.
    fn value(&mut self, class: Class, depth: usize) -> Expr {
        match self.tape.below(6) {
            0..=2 => {
                if let Some(c) = self.column(Self::types(class)) {
                    return c;
                }
                self.literal(class)
            }
            3 => self.literal(class),
            _ => match class {
                Class::Str => node(ExprKind::Lower(Box::new(self.value(class, depth + 1)))),
                Class::Time if self.tape.chance(30) => node(ExprKind::Now),
                Class::Time => {
                    let sign = if self.tape.chance(50) {
                        Sign::Minus
                    } else {
                        Sign::Plus
                    };
                    let by = lit(Literal::Duration(self.tape.pick(&self.pools.durations)));
                    node(ExprKind::Shift {
                        base: Box::new(self.value(class, depth + 1)),
                        sign,
                        by: Box::new(by),
                    })
                }
                Class::Bool if depth < 3 => self.condition(depth + 1),
                _ => self.literal(class),
            },
        }
    }

    fn class(&mut self) -> Class {
        self.tape
            .pick(&[Class::Num, Class::Str, Class::Time, Class::Bool])
    }

    fn condition(&mut self, depth: usize) -> Expr {
        let choices = if depth >= 3 { 7 } else { 10 };
        match self.tape.below(choices) {
            0 => {
                let class = self.class();
                let op = if class == Class::Bool {
                    self.tape.pick(&[CmpOp::Eq, CmpOp::Ne])
                } else {
                    self.tape.pick(&[
                        CmpOp::Eq,
                        CmpOp::Ne,
                        CmpOp::Lt,
                        CmpOp::Le,
                        CmpOp::Gt,
                        CmpOp::Ge,
                    ])
                };
                let left = self.value(class, depth);
                let right = self.value(class, depth);
                node(ExprKind::Compare {
                    op,
                    left: Box::new(left),
                    right: Box::new(right),
                })
            }
            1 => {
                let class = self.class();
                let value = self.value(class, depth);
                let count = 1 + self.tape.below(4);
                let items = (0..count).map(|_| self.literal(class)).collect();
                let negated = self.tape.chance(40);
                node(ExprKind::In {
                    value: Box::new(value),
                    items,
                    negated,
                })
            }
            2 => {
                let class = self.tape.pick(&[Class::Num, Class::Str, Class::Time]);
                let value = self.value(class, depth);
                let low = self.value(class, depth);
                let high = self.value(class, depth);
                let negated = self.tape.chance(40);
                node(ExprKind::Between {
                    value: Box::new(value),
                    low: Box::new(low),
                    high: Box::new(high),
                    negated,
                })
            }
            3 => {
                let class = self.class();
                let value = self.value(class, depth);
                let negated = self.tape.chance(50);
                node(ExprKind::IsNull {
                    value: Box::new(value),
                    negated,
                })
            }
            4 => {
                let op =
                    self.tape
                        .pick(&[MatchOp::Contains, MatchOp::StartsWith, MatchOp::EndsWith]);
                let ignore_case = self.tape.chance(40);
                let value = self.value(Class::Str, depth);
                let pattern = if self.tape.chance(20) {
                    self.value(Class::Str, depth)
                } else {
                    self.literal(Class::Str)
                };
                node(ExprKind::Match {
                    op,
                    ignore_case,
                    value: Box::new(value),
                    pattern: Box::new(pattern),
                })
            }
            5 => node(ExprKind::InList(
                self.tape.pick(&["l0", "l1", "l2"]).to_owned(),
            )),
            6 => self
                .column(&[Type::Bool])
                .unwrap_or_else(|| self.literal(Class::Bool)),
            7 => node(ExprKind::Not(Box::new(self.condition(depth + 1)))),
            8 => {
                let (l, r) = (self.condition(depth + 1), self.condition(depth + 1));
                node(ExprKind::And(Box::new(l), Box::new(r)))
            }
            _ => {
                let (l, r) = (self.condition(depth + 1), self.condition(depth + 1));
                node(ExprKind::Or(Box::new(l), Box::new(r)))
            }
        }
    }
}

/// Column names per type: the second of each is awkward for SQL (spaces, quotes, keywords).
const NAMES: [(Type, [&str; 2]); 6] = [
    (Type::Bool, ["b0", "b 1"]),
    (Type::Int, ["i0", "order"]),
    (Type::Float, ["f0", "f\"1"]),
    (Type::String, ["s0", "S1"]),
    (Type::Date, ["d0", "select"]),
    (Type::DateTime, ["t0", "t1"]),
];

fn world(tape: &mut Tape<'_>, pools: &Pools) -> World {
    let int_ids = !tape.chance(30);
    let rows = tape.below(17);
    let ids = if int_ids {
        let offset = tape.below(pools.ints.len());
        RecipientIds::Int(
            (0..rows)
                .map(|i| pools.ints[(offset + i) % pools.ints.len()])
                .collect(),
        )
    } else {
        let offset = tape.below(pools.strings.len());
        let strings = &pools.strings;
        RecipientIds::String(
            (0..rows)
                .map(|i| Some(strings[(offset + i) % strings.len()]))
                .collect(),
        )
    };
    let mut schema = vec![(
        "id".to_owned(),
        if int_ids { Type::Int } else { Type::String },
    )];
    let mut columns = Vec::new();
    for (ty, names) in NAMES {
        let count = 1 + tape.below(2);
        for name in &names[..count] {
            let mut values: Vec<Val> = Vec::with_capacity(rows);
            for _ in 0..rows {
                values.push(if tape.chance(20) {
                    Val::Null
                } else {
                    match ty {
                        Type::Bool => Val::Bool(tape.chance(50)),
                        Type::Int => Val::Int(tape.pick(&pools.ints)),
                        Type::Float => Val::Float(tape.pick(&pools.floats)),
                        Type::String => Val::Str(tape.pick(&pools.strings).to_owned()),
                        Type::Date => Val::Date(tape.pick(&pools.dates)),
                        _ => Val::Time(tape.pick(&pools.times)),
                    }
                });
            }
            let data = match ty {
                Type::Bool => ColumnData::Bool(
                    values
                        .iter()
                        .map(|v| if let Val::Bool(b) = v { Some(*b) } else { None })
                        .collect(),
                ),
                Type::Int => ColumnData::Int(
                    values
                        .iter()
                        .map(|v| if let Val::Int(b) = v { Some(*b) } else { None })
                        .collect(),
                ),
                Type::Float => ColumnData::Float(
                    values
                        .iter()
                        .map(|v| {
                            if let Val::Float(b) = v {
                                Some(*b)
                            } else {
                                None
                            }
                        })
                        .collect(),
                ),
                Type::String => ColumnData::String(
                    values
                        .iter()
                        .map(|v| {
                            if let Val::Str(b) = v {
                                Some(b.as_str())
                            } else {
                                None
                            }
                        })
                        .collect::<Strings>(),
                ),
                Type::Date => ColumnData::Date(
                    values
                        .iter()
                        .map(|v| if let Val::Date(b) = v { Some(*b) } else { None })
                        .collect(),
                ),
                _ => ColumnData::DateTime(
                    values
                        .iter()
                        .map(|v| if let Val::Time(b) = v { Some(*b) } else { None })
                        .collect(),
                ),
            };
            schema.push(((*name).to_owned(), ty));
            columns.push(Column {
                name: (*name).to_owned(),
                data,
            });
        }
    }
    let table = RecipientsTable { ids, columns };
    // Lists l0 and l1 hold some of the ids (and an id of no row); l2 is known but empty.
    let mut lists = BTreeMap::new();
    for name in ["l0", "l1"] {
        let mut members: Vec<RecipientKey> = (0..rows)
            .filter(|_| tape.chance(40))
            .filter_map(|r| table.ids.key(r))
            .collect();
        if tape.chance(30) {
            members.push(if int_ids {
                RecipientKey::Int(123_456)
            } else {
                RecipientKey::String("no such id".to_owned())
            });
        }
        lists.insert(name.to_owned(), members);
    }
    let now = tape.pick(&pools.times);
    World {
        schema: Schema::new(schema),
        table,
        lists,
        now,
    }
}

fn sql_value(v: &SqlValue) -> Value {
    match v {
        SqlValue::Int(i) => Value::Integer(*i),
        SqlValue::Float(f) => Value::Real(*f),
        SqlValue::Text(s) => Value::Text(s.clone()),
    }
}

fn cell(data: &ColumnData, row: usize) -> Value {
    let v = match data {
        ColumnData::Bool(v) => v[row].map(|b| Value::Integer(i64::from(b))),
        ColumnData::Int(v) => v[row].map(Value::Integer),
        ColumnData::Float(v) => v[row].map(Value::Real),
        ColumnData::String(v) => v.get(row).map(|s| Value::Text(s.to_owned())),
        ColumnData::Date(v) => v[row].map(|d| Value::Integer(i64::from(d.days()))),
        ColumnData::DateTime(v) => v[row].map(|t| Value::Integer(t.unix_micros())),
    };
    v.unwrap_or(Value::Null)
}

fn key_value(key: &RecipientKey) -> Value {
    match key {
        RecipientKey::Int(i) => Value::Integer(*i),
        RecipientKey::String(s) => Value::Text(s.clone()),
    }
}

/// The world's tables in a fresh in-memory SQLite database, by the storage convention.
fn sqlite(world: &World, tables: &SqlTables) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_in_memory().expect("in-memory database");
    let ty = |t: Type| storage_type(t, Dialect::Sqlite).expect("stored type");
    let id_ty = world.schema.get("id").expect("id column");
    let mut defs = vec![format!("{} {}", quote_ident(&tables.id_column), ty(id_ty))];
    for (name, t) in world.schema.columns().iter().skip(1) {
        defs.push(format!("{} {}", quote_ident(name), ty(*t)));
    }
    conn.execute(
        &format!(
            "CREATE TABLE {} ({})",
            quote_ident(&tables.recipients),
            defs.join(", ")
        ),
        [],
    )
    .expect("create recipients");
    conn.execute(
        &format!(
            "CREATE TABLE {} ({} TEXT, {} {})",
            quote_ident(&tables.list_members),
            quote_ident(&tables.list_column),
            quote_ident(&tables.member_column),
            ty(id_ty)
        ),
        [],
    )
    .expect("create list members");
    let placeholders: Vec<String> = (1..=defs.len()).map(|i| format!("?{i}")).collect();
    let insert = format!(
        "INSERT INTO {} VALUES ({})",
        quote_ident(&tables.recipients),
        placeholders.join(", ")
    );
    for row in 0..world.table.len() {
        let mut values = vec![key_value(&world.table.ids.key(row).expect("row id"))];
        values.extend(world.table.columns.iter().map(|c| cell(&c.data, row)));
        conn.execute(&insert, rusqlite::params_from_iter(values))
            .expect("insert row");
    }
    let insert = format!(
        "INSERT INTO {} VALUES (?1, ?2)",
        quote_ident(&tables.list_members)
    );
    for (name, members) in &world.lists {
        for key in members {
            conn.execute(&insert, rusqlite::params![name, key_value(key)])
                .expect("insert member");
        }
    }
    conn
}

/// The ids SQLite selects with `clause`.
fn sqlite_ids(
    conn: &rusqlite::Connection,
    tables: &SqlTables,
    clause: &SqlWhere,
) -> Vec<RecipientKey> {
    let sql = tables.select_ids(clause);
    let mut statement = conn.prepare(&sql).unwrap_or_else(|e| panic!("{e}: {sql}"));
    let params = rusqlite::params_from_iter(clause.params.iter().map(sql_value));
    let mut ids: Vec<RecipientKey> = statement
        .query_map(params, |row| row.get::<_, Value>(0))
        .unwrap_or_else(|e| panic!("{e}: {sql}"))
        .map(|v| match v.expect("id value") {
            Value::Integer(i) => RecipientKey::Int(i),
            Value::Text(s) => RecipientKey::String(s),
            other => panic!("unexpected id {other:?}"),
        })
        .collect();
    ids.sort();
    ids
}

/// The ids the evaluator selects with `rule`.
fn core_ids(world: &World, rule: &Rule) -> Vec<RecipientKey> {
    let ctx = EvalContext {
        now: world.now,
        lists: &world.lists,
    };
    let selection = evaluate(rule, &world.table, &ctx).expect("rule fits the table");
    let mut ids: Vec<RecipientKey> = selection
        .rows()
        .map(|r| world.table.ids.key(r).expect("row id"))
        .collect();
    ids.sort();
    ids
}

/// Runs one tape in `dialect`: returns the number of rules compared.
fn run(tape: &[u32], dialect: Dialect) -> Result<usize, TestCaseError> {
    let pools = Pools::new(dialect);
    let mut tape = Tape { data: tape, pos: 0 };
    let world = world(&mut tape, &pools);
    let list_names = ["l0".to_owned(), "l1".to_owned(), "l2".to_owned()];
    // Default names, or awkward ones (quotes, spaces) for the same convention.
    let tables = if tape.chance(30) {
        SqlTables {
            recipients: "the \"people\"".to_owned(),
            id_column: "key".to_owned(),
            list_members: "lists x".to_owned(),
            list_column: "name".to_owned(),
            member_column: "who".to_owned(),
        }
    } else {
        SqlTables::default()
    };
    let conn = match dialect {
        Dialect::Sqlite => sqlite(&world, &tables),
        Dialect::Postgres => return Ok(0),
    };
    let mut compared = 0;
    for _ in 0..RULES_PER_TABLE {
        let expr = Gen {
            tape: &mut tape,
            pools: &pools,
            schema: &world.schema,
        }
        .condition(0);
        let Ok(rule) = check(expr.clone(), &world.schema, Some(&list_names)) else {
            continue;
        };
        let clause = to_sql(&rule, &world.schema, dialect, &tables, world.now)
            .map_err(|e| TestCaseError::fail(format!("to_sql failed: {e}: {expr:?}")))?;
        let expected = core_ids(&world, &rule);
        let actual = sqlite_ids(&conn, &tables, &clause);
        prop_assert_eq!(
            &expected,
            &actual,
            "rule {}\ntree {:?}\nsql {}\nparams {:?}\nnow {:?}\ntable {:?}\nlists {:?}",
            audlink_core::rule::print::print(&expr),
            expr,
            clause.text,
            clause.params,
            world.now,
            world.table,
            world.lists
        );
        compared += 1;
    }
    Ok(compared)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn evaluator_and_sqlite_select_the_same_ids(tape in prop::collection::vec(any::<u32>(), 200..1200)) {
        run(&tape, Dialect::Sqlite)?;
    }
}

/// The generator mostly makes rules the checker accepts (a guard against a silently weak
/// differential test).
#[test]
fn most_generated_rules_check() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = prop::collection::vec(any::<u32>(), 200..1200);
    let mut total = 0;
    for _ in 0..50 {
        let tape = strategy.new_tree(&mut runner).expect("tape").current();
        total += run(&tape, Dialect::Sqlite).expect("differential case");
    }
    assert!(
        total >= 50 * RULES_PER_TABLE / 2,
        "only {total} of {} rules checked",
        50 * RULES_PER_TABLE
    );
}

#[test]
fn hand_picked_rules_agree() {
    // Byte-based matches with non-ASCII and NUL, exact integer/float, dates before 1970.
    let pools = Pools::new(Dialect::Sqlite);
    let mut tape = Tape {
        data: &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
        pos: 0,
    };
    let world = world(&mut tape, &pools);
    assert!(world.table.len() <= 10);
    let schema = &world.schema;
    let tables = SqlTables::default();
    let conn = sqlite(&world, &tables);
    let cases: Vec<Expr> = vec![
        node(ExprKind::Compare {
            op: CmpOp::Lt,
            left: Box::new(node(ExprKind::Column("i0".into()))),
            right: Box::new(lit(Literal::Float(9_007_199_254_740_993.0))),
        }),
        node(ExprKind::Match {
            op: MatchOp::EndsWith,
            ignore_case: true,
            value: Box::new(node(ExprKind::Column("s0".into()))),
            pattern: Box::new(lit(Literal::String("É".into()))),
        }),
    ];
    for expr in cases {
        let rule = check(expr, schema, None).expect("checks");
        let clause = to_sql(&rule, schema, Dialect::Sqlite, &tables, world.now).expect("compiles");
        assert_eq!(
            core_ids(&world, &rule),
            sqlite_ids(&conn, &tables, &clause),
            "{}",
            clause.text
        );
    }
}
