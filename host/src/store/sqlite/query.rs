//! Segment rules run on the database: a [`SqlWhere`] compiled by
//! [`audlink_core::rule::sql::to_sql`] (for [`Dialect::Sqlite`](audlink_core::rule::sql::Dialect)
//! and [`SqlTables::default`](audlink_core::rule::sql::SqlTables)) selects ids, a count, a
//! sample and a breakdown, shaped as the core's previews ([`Count`], [`Sample`],
//! [`Breakdown`]) so the browser and the command show the same thing. Every call runs under a
//! deadline enforced by SQLite's progress handler ([`StoreError::Deadline`]).

use std::time::{Duration, Instant};

use audlink_core::recipients::{ID_COLUMN, RecipientKey};
use audlink_core::rule::Type;
use audlink_core::rule::preview::{
    Breakdown, Bucket, Cell, Count, Sample, SampleColumn, SampleRow,
};
use audlink_core::rule::sql::{SqlValue, SqlWhere};
use audlink_core::time::{Date, Timestamp};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params_from_iter};

use super::recipients::{StoredColumn, registry, require_id_type};
use super::{IdType, SqliteStore, StoreError, corrupt, is_interrupt, q, tables};

/// SQLite virtual-machine steps between two deadline checks.
const CHECK_EVERY: i32 = 1_000;

fn params(clause: &SqlWhere) -> impl Iterator<Item = Value> + '_ {
    clause.params.iter().map(|p| match p {
        SqlValue::Int(i) => Value::Integer(*i),
        SqlValue::Float(f) => Value::Real(*f),
        SqlValue::Text(s) => Value::Text(s.clone()),
    })
}

/// A stored value of a column of type `ty` as shown.
fn cell(value: ValueRef<'_>, ty: Type, name: &str) -> Result<Cell, StoreError> {
    let bad = || corrupt(format!("column \"{name}\" holds a value of another type"));
    Ok(match (ty, value) {
        (_, ValueRef::Null) => Cell::Null,
        (Type::Bool, ValueRef::Integer(i @ (0 | 1))) => Cell::Bool(i == 1),
        (Type::Int, ValueRef::Integer(i)) => Cell::Int(i),
        // Grouping merges -0.0 with 0.0; show it as the evaluator does.
        (Type::Float, ValueRef::Real(f)) => Cell::Float(if f == 0.0 { 0.0 } else { f }),
        (Type::Float, ValueRef::Integer(i)) => Cell::Float(i as f64),
        (Type::String, ValueRef::Text(bytes)) => {
            Cell::String(std::str::from_utf8(bytes).map_err(|_| bad())?.to_owned())
        }
        (Type::Date, ValueRef::Integer(days)) => Cell::Date(
            i32::try_from(days)
                .ok()
                .and_then(Date::from_days)
                .ok_or_else(bad)?,
        ),
        (Type::DateTime, ValueRef::Integer(micros)) => {
            Cell::DateTime(Timestamp::from_unix_micros(micros).ok_or_else(bad)?)
        }
        _ => return Err(bad()),
    })
}

fn count_value(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl SqliteStore {
    /// Runs `run` with a progress handler that interrupts SQLite once `limit` has passed.
    fn with_deadline<T>(
        &mut self,
        limit: Duration,
        run: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let end = Instant::now().checked_add(limit);
        self.conn.progress_handler(
            CHECK_EVERY,
            Some(move || end.is_some_and(|end| Instant::now() >= end)),
        )?;
        let result = run(&self.conn);
        self.conn.progress_handler(0, None::<fn() -> bool>)?;
        result.map_err(|e| match e {
            StoreError::Backend(e)
                if e.downcast_ref::<rusqlite::Error>()
                    .is_some_and(is_interrupt) =>
            {
                StoreError::Deadline { limit }
            }
            other => other,
        })
    }

    /// The ids of the recipients `clause` selects, ordered by id.
    pub(super) fn rule_ids(
        &mut self,
        clause: &SqlWhere,
        deadline: Duration,
    ) -> Result<Vec<RecipientKey>, StoreError> {
        let id = require_id_type(&self.conn)?;
        let t = tables();
        let sql = format!("{} ORDER BY {}", t.select_ids(clause), q(&t.id_column));
        self.with_deadline(deadline, |conn| {
            let mut statement = conn.prepare(&sql)?;
            let mut rows = statement.query(params_from_iter(params(clause)))?;
            let mut ids = Vec::new();
            while let Some(row) = rows.next()? {
                ids.push(id.key(row.get_ref(0)?)?);
            }
            Ok(ids)
        })
    }

    /// How many recipients `clause` selects, of how many.
    pub(super) fn rule_count(
        &mut self,
        clause: &SqlWhere,
        deadline: Duration,
    ) -> Result<Count, StoreError> {
        require_id_type(&self.conn)?;
        let recipients = q(&tables().recipients);
        let selected_sql = format!("SELECT count(*) FROM {recipients} WHERE {}", clause.text);
        let total_sql = format!("SELECT count(*) FROM {recipients}");
        self.with_deadline(deadline, |conn| {
            let selected: i64 =
                conn.query_row(&selected_sql, params_from_iter(params(clause)), |row| {
                    row.get(0)
                })?;
            let total: i64 = conn.query_row(&total_sql, [], |row| row.get(0))?;
            Ok(Count {
                selected: count_value(selected),
                total: count_value(total),
            })
        })
    }

    /// The first `n` recipients `clause` selects, by id, with every column; a row's `row` is
    /// its index in [`SqliteStore::recipients_table`] (its rank by id).
    pub(super) fn rule_sample(
        &mut self,
        clause: &SqlWhere,
        n: usize,
        deadline: Duration,
    ) -> Result<Sample, StoreError> {
        let id = require_id_type(&self.conn)?;
        let columns = registry(&self.conn)?;
        let t = tables();
        let recipients = q(&t.recipients);
        let id_col = q(&t.id_column);
        let names: Vec<String> = columns.iter().map(|c| q(&c.name)).collect();
        let sql = format!(
            "SELECT {names},
                 (SELECT count(*) FROM {recipients} AS r2 WHERE r2.{id_col} < {recipients}.{id_col})
             FROM {recipients} WHERE {clause} ORDER BY {id_col} LIMIT {limit}",
            names = names.join(", "),
            clause = clause.text,
            limit = i64::try_from(n).unwrap_or(i64::MAX),
        );
        let attributes: &[StoredColumn] = columns.get(1..).unwrap_or_default();
        self.with_deadline(deadline, |conn| {
            let mut statement = conn.prepare(&sql)?;
            let mut rows = statement.query(params_from_iter(params(clause)))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut values = Vec::with_capacity(attributes.len());
                for (i, column) in attributes.iter().enumerate() {
                    values.push(cell(row.get_ref(i + 1)?, column.ty, &column.name)?);
                }
                let rank: i64 = row.get(attributes.len() + 1)?;
                out.push(SampleRow {
                    row: usize::try_from(rank).unwrap_or(0),
                    id: id.key(row.get_ref(0)?)?,
                    values,
                });
            }
            Ok(Sample {
                columns: attributes
                    .iter()
                    .map(|c| SampleColumn {
                        name: c.name.clone(),
                        ty: c.ty,
                    })
                    .collect(),
                rows: out,
            })
        })
    }

    /// The recipients `clause` selects by the values of `column` (`id` included): the `top_k`
    /// most frequent values (count descending, then value ascending), the nulls, and the rest.
    pub(super) fn rule_breakdown(
        &mut self,
        clause: &SqlWhere,
        column: &str,
        top_k: usize,
        deadline: Duration,
    ) -> Result<Breakdown, StoreError> {
        let id = require_id_type(&self.conn)?;
        let ty = if column == ID_COLUMN {
            match id {
                IdType::Int => Type::Int,
                IdType::Text => Type::String,
            }
        } else {
            registry(&self.conn)?
                .into_iter()
                .find(|c| c.name == column)
                .map(|c| c.ty)
                .ok_or_else(|| StoreError::UnknownColumn {
                    name: column.to_owned(),
                })?
        };
        let t = tables();
        let recipients = q(&t.recipients);
        let col = if column == ID_COLUMN {
            q(&t.id_column)
        } else {
            q(column)
        };
        let top_sql = format!(
            "SELECT {col}, count(*) AS n FROM {recipients}
             WHERE ({clause}) AND {col} IS NOT NULL
             GROUP BY {col} ORDER BY n DESC, {col} ASC LIMIT {limit}",
            clause = clause.text,
            limit = i64::try_from(top_k).unwrap_or(i64::MAX),
        );
        let totals_sql = format!(
            "SELECT count(*), count({col}), count(DISTINCT {col}) FROM {recipients} WHERE {}",
            clause.text
        );
        self.with_deadline(deadline, |conn| {
            let (total, non_null, distinct): (i64, i64, i64) =
                conn.query_row(&totals_sql, params_from_iter(params(clause)), |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?;
            let mut statement = conn.prepare(&top_sql)?;
            let mut rows = statement.query(params_from_iter(params(clause)))?;
            let mut top = Vec::new();
            while let Some(row) = rows.next()? {
                top.push(Bucket {
                    value: cell(row.get_ref(0)?, ty, column)?,
                    count: count_value(row.get(1)?),
                });
            }
            let in_top: u64 = top.iter().map(|b| b.count).sum();
            Ok(Breakdown {
                column: column.to_owned(),
                total: count_value(total),
                null: count_value(total - non_null),
                other: count_value(non_null).saturating_sub(in_top),
                other_values: count_value(distinct).saturating_sub(top.len() as u64),
                top,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use audlink_core::import::{ListChange, RecipientKeys};
    use audlink_core::recipients::RecipientsTable;
    use audlink_core::rule::eval::{EvalContext, evaluate};
    use audlink_core::rule::preview;
    use audlink_core::rule::sql::{Dialect, SqlTables, to_sql};
    use audlink_core::rule::{Rule, Schema};
    use audlink_core::sample;

    use super::super::{ImportRun, InputKey};
    use super::*;
    use crate::store::Store;
    use crate::store::testing::{TempDir, store};

    const SECOND: Duration = Duration::from_secs(30);

    const RULES: &[&str] = &[
        "age >= 30 and country in (\"NL\", \"BE\")",
        "not vip or score < 50.5",
        "last_order > now() - 90d",
        "signup between 2018-01-01 and 2019-12-31",
        "email iends_with \"@example.com\" and age is not null",
        "country not in (\"NL\") or country is null",
        "lower(email) contains \"user.1\" and score >= 17",
        "in_list(\"picked\") and not vip",
        "signup > last_order - 3000d or age < 12.5",
        "id <= 40 or id > 290",
    ];

    /// A store with a generated table and a list `picked` of every third id.
    fn loaded(
        name: &str,
        n: u64,
    ) -> (
        TempDir,
        SqliteStore,
        RecipientsTable,
        BTreeMap<String, Vec<RecipientKey>>,
    ) {
        let (dir, mut store) = store(name);
        let table = sample::recipients_table(11, n);
        store.upsert_recipients(&table).unwrap();
        let picked: Vec<RecipientKey> = (1..=n as i64)
            .filter(|i| i % 3 == 0)
            .map(RecipientKey::Int)
            .collect();
        let lists = BTreeMap::from([("picked".to_owned(), picked.clone())]);
        let key = InputKey::from_bytes([0; 32]);
        let changes = [ListChange {
            list: "picked".to_owned(),
            replaced: true,
            members: picked.len() as u64,
            added: picked.into(),
            removed: RecipientKeys::default(),
        }];
        store
            .record_import(&ImportRun {
                data_source: "ecid",
                input_key: &key,
                created_at: Timestamp::from_unix_seconds(0).unwrap(),
                lists: &changes,
                last_applied: &BTreeMap::new(),
                report: "{}",
                unmatched: &[],
            })
            .unwrap();
        (dir, store, table, lists)
    }

    fn now() -> Timestamp {
        Timestamp::parse(b"2025-11-15T12:00:00Z").unwrap()
    }

    fn compile(text: &str, schema: &Schema) -> (Rule, SqlWhere) {
        let rule = Rule::new(text, schema, None).unwrap_or_else(|e| panic!("{text}: {e}"));
        let clause = to_sql(&rule, schema, Dialect::Sqlite, &SqlTables::default(), now())
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        (rule, clause)
    }

    #[test]
    fn rule_sql_agrees_with_the_evaluator() {
        let (_dir, mut store, table, lists) = loaded("rules", 300);
        let schema = store.schema().unwrap();
        assert_eq!(schema, Schema::of(&table));
        let ctx = EvalContext {
            now: now(),
            lists: &lists,
        };
        for text in RULES {
            let (rule, clause) = compile(text, &schema);
            let selection = evaluate(&rule, &table, &ctx).unwrap();
            let expected: Vec<RecipientKey> = selection
                .rows()
                .map(|r| table.ids.key(r).unwrap())
                .collect();
            assert!(
                !expected.is_empty() && expected.len() < table.len(),
                "{text}: trivial"
            );
            assert_eq!(store.rule_ids(&clause, SECOND).unwrap(), expected, "{text}");
            let count = store.rule_count(&clause, SECOND).unwrap();
            assert_eq!(count, preview::count(&selection), "{text}");
            let sample = store.rule_sample(&clause, 5, SECOND).unwrap();
            assert_eq!(
                sample,
                preview::sample(&table, &selection, 5).unwrap(),
                "{text}"
            );
            for column in [
                "country",
                "age",
                "vip",
                "score",
                "signup",
                "last_order",
                "id",
            ] {
                let ours = store.rule_breakdown(&clause, column, 3, SECOND).unwrap();
                let core = preview::breakdown(&table, &selection, column, 3).unwrap();
                assert_eq!(ours, core, "{text} by {column}");
            }
        }
        let (_, clause) = compile("vip", &schema);
        let err = store
            .rule_breakdown(&clause, "nope", 3, SECOND)
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownColumn { .. }), "{err}");
    }

    #[test]
    fn rules_need_recipients() {
        let (_dir, mut store) = store("norules");
        let clause = SqlWhere {
            text: "(1 = 1)".to_owned(),
            params: Vec::new(),
        };
        let err = store.rule_count(&clause, SECOND).unwrap_err();
        assert!(matches!(err, StoreError::NoRecipients), "{err}");
    }

    #[test]
    fn the_deadline_stops_a_long_query() {
        let (_dir, mut store, _table, _lists) = loaded("deadline", 50_000);
        let schema = store.schema().unwrap();
        let (_, clause) = compile("email icontains \"zz\" or in_list(\"picked\")", &schema);
        let err = store
            .rule_breakdown(&clause, "email", 10, Duration::from_nanos(1))
            .unwrap_err();
        assert!(matches!(err, StoreError::Deadline { .. }), "{err}");
        assert!(err.to_string().starts_with("the query took longer than"));
        // The handler is gone afterwards: the same query completes with time to spare.
        let count = store.rule_count(&clause, SECOND).unwrap();
        assert_eq!(count.total, 50_000);
    }
}
