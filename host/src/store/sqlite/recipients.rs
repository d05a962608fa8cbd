//! Recipients (upsert from a [`RecipientsTable`], schema and table read back) and visitor
//! links (upsert with rejected rows, read back).
//!
//! Column types are fixed at first load. A later table may use a column with a compatible
//! type — the same type; an all-null column (the reader types it as text); whole numbers into
//! a number column (as the reader types mixed columns); whole numbers or dates into a text
//! column (their canonical text is exactly the cell) — and may add columns (`ALTER TABLE ADD
//! COLUMN`, earlier rows null). Any other type is [`StoreError::ColumnType`], naming the column.
//! An upsert sets the columns the table has; the columns it lacks keep their values (null for
//! new rows). Integer ids stay integer: a table of text ids into an integer `id` column is a
//! type error; integer ids into a text `id` column are stored as their text.

use audlink_core::format::links::VisitorLink;
use audlink_core::id::VisitorId;
use audlink_core::recipients::{
    Column, ColumnData, ColumnType, ID_COLUMN, RecipientIds, RecipientKey, RecipientsTable, Strings,
};
use audlink_core::rule::sql::{Dialect, storage_type};
use audlink_core::rule::{Schema, Type};
use audlink_core::time::{Date, Timestamp};
use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params_from_iter};

use super::{
    IdType, LinkRejection, LinksUpsert, Param, RecipientsUpsert, RecipientsWriter, RejectedLink,
    SqliteStore, StoreError, corrupt, q, tables,
};
use crate::store::{parse_type_code, type_code};

/// A registered column.
#[derive(Debug, Clone)]
pub(super) struct StoredColumn {
    pub(super) name: String,
    pub(super) ty: Type,
}

/// The registry: `id` first, then the attributes in position order (empty before the first
/// load).
pub(super) fn registry(conn: &rusqlite::Connection) -> Result<Vec<StoredColumn>, StoreError> {
    let mut statement =
        conn.prepare_cached("SELECT name, type FROM recipient_columns ORDER BY position")?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut columns = Vec::new();
    for row in rows {
        let (name, code) = row?;
        let ty = parse_type_code(&code)
            .ok_or_else(|| corrupt(format!("column \"{name}\" has an unknown type")))?;
        columns.push(StoredColumn { name, ty });
    }
    if let Some(first) = columns.first()
        && (first.name != ID_COLUMN || !matches!(first.ty, Type::Int | Type::String))
    {
        return Err(corrupt("the column registry does not start with the id"));
    }
    Ok(columns)
}

/// The id column's storage, `None` before the first load.
pub(super) fn id_type(conn: &rusqlite::Connection) -> Result<Option<IdType>, StoreError> {
    let ty: Option<String> = conn
        .query_row(
            "SELECT type FROM recipient_columns WHERE name = ?1",
            [ID_COLUMN],
            |row| row.get(0),
        )
        .optional()?;
    match ty.as_deref() {
        None => Ok(None),
        Some("int") => Ok(Some(IdType::Int)),
        Some("string") => Ok(Some(IdType::Text)),
        Some(_) => Err(corrupt("the id column has an unknown type")),
    }
}

/// The id column's storage; [`StoreError::NoRecipients`] before the first load.
pub(super) fn require_id_type(conn: &rusqlite::Connection) -> Result<IdType, StoreError> {
    id_type(conn)?.ok_or(StoreError::NoRecipients)
}

fn sql_type(ty: Type) -> &'static str {
    // Every registered type has a storage type.
    storage_type(ty, Dialect::Sqlite).unwrap_or("BLOB")
}

/// Whether a column of `found` values (`all_null`: none) can go into a column of `stored`.
fn fits(stored: Type, found: ColumnType, all_null: bool) -> bool {
    let found = Type::from(found);
    all_null
        || stored == found
        || matches!(
            (stored, found),
            (Type::Float, Type::Int) | (Type::String, Type::Int | Type::Date)
        )
}

fn all_null(data: &ColumnData) -> bool {
    match data {
        ColumnData::Bool(v) => v.iter().all(Option::is_none),
        ColumnData::Int(v) => v.iter().all(Option::is_none),
        ColumnData::Float(v) => v.iter().all(|x| x.is_none_or(f64::is_nan)),
        ColumnData::Date(v) => v.iter().all(Option::is_none),
        ColumnData::DateTime(v) => v.iter().all(Option::is_none),
        ColumnData::String(v) => (0..v.len()).all(|i| v.is_null(i)),
    }
}

/// The value of row `row` of `data`, stored in a column of type `stored` (checked by [`fits`]).
fn cell(data: &ColumnData, row: usize, stored: Type) -> Param<'_> {
    let text = stored == Type::String;
    match data {
        ColumnData::Bool(v) => match v.get(row).copied().flatten() {
            Some(b) => Param::Int(i64::from(b)),
            None => Param::Null,
        },
        ColumnData::Int(v) => match v.get(row).copied().flatten() {
            Some(i) if text => Param::Owned(i.to_string()),
            Some(i) if stored == Type::Float => Param::Real(i as f64),
            Some(i) => Param::Int(i),
            None => Param::Null,
        },
        ColumnData::Float(v) => match v.get(row).copied().flatten() {
            Some(f) => Param::Real(f),
            None => Param::Null,
        },
        ColumnData::Date(v) => match v.get(row).copied().flatten() {
            Some(d) if text => Param::Owned(d.to_string()),
            Some(d) => Param::Int(i64::from(d.days())),
            None => Param::Null,
        },
        ColumnData::DateTime(v) => match v.get(row).copied().flatten() {
            Some(t) => Param::Int(t.unix_micros()),
            None => Param::Null,
        },
        // A text column, or an all-null one of another type.
        ColumnData::String(v) => match v.get(row) {
            Some(s) => Param::Text(s),
            None => Param::Null,
        },
    }
}

/// Checks the table's shape and names: every column as long as the ids, no NUL in a name, no
/// two names SQLite cannot tell apart.
fn check_table(table: &RecipientsTable) -> Result<(), StoreError> {
    let n = table.ids.len();
    let mut names: Vec<&str> = vec![ID_COLUMN];
    for column in &table.columns {
        if column.data.len() != n {
            return Err(StoreError::RaggedColumn {
                column: column.name.clone(),
                expected: n,
                found: column.data.len(),
            });
        }
        if column.name.contains('\0') {
            return Err(StoreError::BadColumnName);
        }
        if let Some(existing) = names
            .iter()
            .find(|other| other.eq_ignore_ascii_case(&column.name))
        {
            return Err(StoreError::ColumnNameClash {
                column: column.name.clone(),
                existing: (*existing).to_owned(),
            });
        }
        names.push(&column.name);
    }
    Ok(())
}

/// Creates the recipients-dependent tables for ids of `id` storage and registers `id`.
fn create_tables(tx: &Transaction<'_>, id: IdType) -> Result<(), StoreError> {
    let t = tables();
    let id_sql = sql_type(id.rule_type());
    let recipients = q(&t.recipients);
    let id_col = q(&t.id_column);
    tx.execute_batch(&format!(
        "CREATE TABLE {recipients} ({id_col} {id_sql} NOT NULL PRIMARY KEY);
         CREATE TABLE {members} (
             {list} TEXT NOT NULL REFERENCES lists (name) ON DELETE CASCADE,
             {member} {id_sql} NOT NULL REFERENCES {recipients} ({id_col}) ON DELETE CASCADE,
             PRIMARY KEY ({list}, {member})
         ) WITHOUT ROWID;
         CREATE INDEX list_members_by_recipient ON {members} ({member});
         CREATE TABLE visitor_links (
             visitor_id BLOB NOT NULL,
             recipient_id {id_sql} NOT NULL REFERENCES {recipients} ({id_col}) ON DELETE CASCADE,
             last_seen INTEGER,
             PRIMARY KEY (visitor_id, recipient_id)
         ) WITHOUT ROWID;
         CREATE INDEX visitor_links_by_recipient ON visitor_links (recipient_id);",
        members = q(&t.list_members),
        list = q(&t.list_column),
        member = q(&t.member_column),
    ))?;
    tx.execute(
        "INSERT INTO recipient_columns (name, type, position) VALUES (?1, ?2, 0)",
        (ID_COLUMN, type_code(id.rule_type())),
    )?;
    Ok(())
}

impl SqliteStore {
    /// The schema rules are checked against: `id` and every attribute column with its type
    /// (empty before the first load).
    pub(super) fn schema(&self) -> Result<Schema, StoreError> {
        Ok(Schema::new(
            registry(&self.conn)?.into_iter().map(|c| (c.name, c.ty)),
        ))
    }

    /// Whether recipients were ever loaded (the id column's type is fixed).
    pub(super) fn has_recipients_table(&self) -> Result<bool, StoreError> {
        Ok(id_type(&self.conn)?.is_some())
    }

    /// Number of recipients.
    pub(super) fn recipients_count(&self) -> Result<u64, StoreError> {
        if id_type(&self.conn)?.is_none() {
            return Ok(0);
        }
        let n: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM {}", q(&tables().recipients)),
            [],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Starts writing recipients in parts, all in one transaction
    /// ([`SqliteRecipientsWrite`]): nothing is visible until it is committed, and dropping it
    /// writes nothing.
    pub(super) fn begin_recipients(&mut self) -> Result<SqliteRecipientsWrite<'_>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Ok(SqliteRecipientsWrite {
            tx,
            done: RecipientsUpsert::default(),
        })
    }

    /// The whole recipients table, ordered by id (numerically or bytewise), columns in
    /// registry order; an empty integer-id table before the first load.
    pub(super) fn recipients_table(&self) -> Result<RecipientsTable, StoreError> {
        self.read_recipients(None)
    }

    /// The recipients table with only the attribute columns named in `wanted` (those that
    /// exist, in registry order): what an import or export needs, without the rest.
    pub(super) fn recipients_columns(
        &self,
        wanted: &[&str],
    ) -> Result<RecipientsTable, StoreError> {
        self.read_recipients(Some(wanted))
    }

    fn read_recipients(&self, wanted: Option<&[&str]>) -> Result<RecipientsTable, StoreError> {
        let mut registered = registry(&self.conn)?;
        if let Some(wanted) = wanted {
            let mut position = 0;
            registered.retain(|c| {
                // The id column comes first and always stays.
                position += 1;
                position == 1 || wanted.contains(&c.name.as_str())
            });
        }
        let Some(id) = id_type(&self.conn)? else {
            return Ok(RecipientsTable {
                ids: RecipientIds::Int(Vec::new()),
                columns: Vec::new(),
            });
        };
        let t = tables();
        let names: Vec<String> = registered.iter().map(|c| q(&c.name)).collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            names.join(", "),
            q(&t.recipients),
            q(&t.id_column)
        );
        let mut ids_int = Vec::new();
        let mut ids_text = Strings::new();
        let mut columns: Vec<Column> = registered
            .iter()
            .skip(1)
            .map(|c| Column {
                name: c.name.clone(),
                data: empty_data(c.ty),
            })
            .collect();
        let mut statement = self.conn.prepare(&sql)?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            match id.key(row.get_ref(0)?)? {
                RecipientKey::Int(i) => ids_int.push(i),
                RecipientKey::String(s) => ids_text.push(Some(&s)),
            }
            for (i, column) in columns.iter_mut().enumerate() {
                push_value(&mut column.data, row.get_ref(i + 1)?, &column.name)?;
            }
        }
        let ids = match id {
            IdType::Int => RecipientIds::Int(ids_int),
            IdType::Text => RecipientIds::String(ids_text),
        };
        Ok(RecipientsTable { ids, columns })
    }

    /// Inserts or updates visitor links in one transaction. A link whose recipient is not in
    /// the recipients table is rejected (not written) with a reason; a link whose (visitor,
    /// recipient) pair exists keeps the later `last_seen` of both (an unknown one is the
    /// oldest). [`StoreError::NoRecipients`] before the first recipients load.
    pub(super) fn upsert_links(
        &mut self,
        links: &[VisitorLink],
    ) -> Result<LinksUpsert, StoreError> {
        let id = require_id_type(&self.conn)?;
        let t = tables();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = LinksUpsert::default();
        {
            let mut exists = tx.prepare(&format!(
                "SELECT 1 FROM {} WHERE {} = ?1",
                q(&t.recipients),
                q(&t.id_column)
            ))?;
            let mut insert = tx.prepare(
                "INSERT INTO visitor_links (visitor_id, recipient_id, last_seen)
                 VALUES (?1, ?2, ?3) ON CONFLICT (visitor_id, recipient_id) DO NOTHING",
            )?;
            let mut update = tx.prepare(
                "UPDATE visitor_links SET last_seen = CASE
                     WHEN ?3 IS NULL THEN last_seen
                     WHEN last_seen IS NULL THEN ?3
                     ELSE max(last_seen, ?3) END
                 WHERE visitor_id = ?1 AND recipient_id = ?2",
            )?;
            for (index, link) in links.iter().enumerate() {
                let known = match id.param(&link.recipient) {
                    Some(key) => exists.exists([&key])?.then_some(key),
                    None => None,
                };
                let Some(key) = known else {
                    out.rejected.push(RejectedLink {
                        index,
                        reason: LinkRejection::NoRecipient,
                    });
                    continue;
                };
                let visitor = Param::Blob(link.visitor.as_u128().to_be_bytes().to_vec());
                let seen = match link.last_seen {
                    Some(t) => Param::Int(t.unix_micros()),
                    None => Param::Null,
                };
                if insert.execute((&visitor, &key, &seen))? == 1 {
                    out.inserted += 1;
                } else {
                    update.execute((&visitor, &key, &seen))?;
                    out.updated += 1;
                }
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Every visitor link, ordered by visitor id then recipient id (empty before the first
    /// recipients load).
    pub(super) fn links(&self) -> Result<Vec<VisitorLink>, StoreError> {
        let Some(id) = id_type(&self.conn)? else {
            return Ok(Vec::new());
        };
        let mut statement = self.conn.prepare(
            "SELECT visitor_id, recipient_id, last_seen FROM visitor_links
             ORDER BY visitor_id, recipient_id",
        )?;
        let mut rows = statement.query([])?;
        let mut links = Vec::new();
        while let Some(row) = rows.next()? {
            let visitor = match row.get_ref(0)? {
                ValueRef::Blob(bytes) => <[u8; 16]>::try_from(bytes)
                    .ok()
                    .and_then(|b| VisitorId::from_u128(u128::from_be_bytes(b))),
                _ => None,
            }
            .ok_or_else(|| corrupt("a visitor id that is not 16 bytes of a 38-digit number"))?;
            let recipient = id.key(row.get_ref(1)?)?;
            let last_seen = match row.get_ref(2)? {
                ValueRef::Null => None,
                ValueRef::Integer(micros) => Some(
                    Timestamp::from_unix_micros(micros)
                        .ok_or_else(|| corrupt("a last-seen time out of range"))?,
                ),
                _ => return Err(corrupt("a last-seen time that is not an integer")),
            };
            links.push(VisitorLink {
                recipient,
                visitor,
                last_seen,
            });
        }
        Ok(links)
    }
}

/// Recipients being written in parts, in one transaction
/// ([`Store::begin_recipients`](crate::store::Store::begin_recipients)).
#[derive(Debug)]
pub(super) struct SqliteRecipientsWrite<'s> {
    tx: Transaction<'s>,
    done: RecipientsUpsert,
}

impl RecipientsWriter for SqliteRecipientsWrite<'_> {
    fn types(&self) -> Result<Vec<(String, ColumnType)>, StoreError> {
        Ok(registry(&self.tx)?
            .into_iter()
            .filter_map(|c| Some((c.name, column_type(c.ty)?)))
            .collect())
    }

    fn write(&mut self, table: &RecipientsTable) -> Result<(), StoreError> {
        check_table(table)?;
        let tx = &self.tx;
        let t = tables();
        let mut registered = registry(tx)?;
        let id = match (registered.first().map(|c| c.ty), &table.ids) {
            (None, RecipientIds::Int(_)) => {
                create_tables(tx, IdType::Int)?;
                IdType::Int
            }
            (None, RecipientIds::String(_)) => {
                create_tables(tx, IdType::Text)?;
                IdType::Text
            }
            (Some(Type::Int), RecipientIds::Int(_)) => IdType::Int,
            (Some(Type::Int), RecipientIds::String(_)) => {
                return Err(StoreError::ColumnType {
                    column: ID_COLUMN.to_owned(),
                    stored: Type::Int.describe(),
                    found: Type::String.describe(),
                });
            }
            (Some(_), _) => IdType::Text,
        };
        if registered.is_empty() {
            registered = registry(tx)?;
        }
        // The stored type of each of the table's columns; new columns added.
        let mut stored = Vec::with_capacity(table.columns.len());
        let mut added_columns = Vec::new();
        let mut next_position = registered.len();
        for column in &table.columns {
            let found = column.data.column_type();
            let empty = all_null(&column.data);
            if let Some(existing) = registered.iter().find(|c| c.name == column.name) {
                if !fits(existing.ty, found, empty) {
                    return Err(StoreError::ColumnType {
                        column: column.name.clone(),
                        stored: existing.ty.describe(),
                        found: Type::from(found).describe(),
                    });
                }
                stored.push(existing.ty);
                continue;
            }
            if let Some(existing) = registered
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(&column.name))
            {
                return Err(StoreError::ColumnNameClash {
                    column: column.name.clone(),
                    existing: existing.name.clone(),
                });
            }
            let ty = Type::from(found);
            tx.execute_batch(&format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                q(&t.recipients),
                q(&column.name),
                sql_type(ty)
            ))?;
            tx.execute(
                "INSERT INTO recipient_columns (name, type, position) VALUES (?1, ?2, ?3)",
                (&column.name, type_code(ty), next_position as i64),
            )?;
            next_position += 1;
            added_columns.push(column.name.clone());
            stored.push(ty);
        }
        let (inserted, updated) = write_rows(tx, table, id, &stored)?;
        self.done.inserted += inserted;
        self.done.updated += updated;
        self.done.added_columns.extend(added_columns);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<RecipientsUpsert, StoreError> {
        self.tx.commit()?;
        Ok(self.done)
    }
}

/// The reader's type of values stored as `ty`.
fn column_type(ty: Type) -> Option<ColumnType> {
    Some(match ty {
        Type::Bool => ColumnType::Bool,
        Type::Int => ColumnType::Int,
        Type::Float => ColumnType::Float,
        Type::Date => ColumnType::Date,
        Type::DateTime => ColumnType::DateTime,
        Type::String => ColumnType::String,
        Type::Duration | Type::Null => return None,
    })
}

/// Inserts or updates every row; returns (inserted, updated).
fn write_rows(
    tx: &Transaction<'_>,
    table: &RecipientsTable,
    id: IdType,
    stored: &[Type],
) -> Result<(u64, u64), StoreError> {
    let t = tables();
    let mut names = vec![q(&t.id_column)];
    names.extend(table.columns.iter().map(|c| q(&c.name)));
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    let mut insert = tx.prepare(&format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO NOTHING",
        q(&t.recipients),
        names.join(", "),
        placeholders.join(", "),
        q(&t.id_column)
    ))?;
    let sets: Vec<String> = names
        .iter()
        .zip(&placeholders)
        .skip(1)
        .map(|(name, p)| format!("{name} = {p}"))
        .collect();
    let mut update = if sets.is_empty() {
        None
    } else {
        Some(tx.prepare(&format!(
            "UPDATE {} SET {} WHERE {} = ?1",
            q(&t.recipients),
            sets.join(", "),
            q(&t.id_column)
        ))?)
    };
    let (mut inserted, mut updated) = (0u64, 0u64);
    let mut values: Vec<Param<'_>> = Vec::with_capacity(names.len());
    for row in 0..table.len() {
        values.clear();
        values.push(match (&table.ids, id) {
            (RecipientIds::Int(ids), IdType::Int) => Param::Int(ids[row]),
            (RecipientIds::Int(ids), IdType::Text) => Param::Owned(ids[row].to_string()),
            (RecipientIds::String(ids), _) => Param::Text(ids.get(row).unwrap_or_default()),
        });
        values.extend(
            table
                .columns
                .iter()
                .zip(stored)
                .map(|(c, &ty)| cell(&c.data, row, ty)),
        );
        if insert.execute(params_from_iter(&values))? == 1 {
            inserted += 1;
        } else {
            if let Some(update) = update.as_mut() {
                update.execute(params_from_iter(&values))?;
            }
            updated += 1;
        }
    }
    Ok((inserted, updated))
}

fn empty_data(ty: Type) -> ColumnData {
    match ty {
        Type::Bool => ColumnData::Bool(Vec::new()),
        Type::Int => ColumnData::Int(Vec::new()),
        Type::Float => ColumnData::Float(Vec::new()),
        Type::Date => ColumnData::Date(Vec::new()),
        Type::DateTime => ColumnData::DateTime(Vec::new()),
        Type::String | Type::Duration | Type::Null => ColumnData::String(Strings::new()),
    }
}

/// Appends a stored value to a column of its registered type.
fn push_value(data: &mut ColumnData, value: ValueRef<'_>, name: &str) -> Result<(), StoreError> {
    let bad = || corrupt(format!("column \"{name}\" holds a value of another type"));
    match (data, value) {
        (ColumnData::Bool(v), ValueRef::Null) => v.push(None),
        (ColumnData::Bool(v), ValueRef::Integer(i @ (0 | 1))) => v.push(Some(i == 1)),
        (ColumnData::Int(v), ValueRef::Null) => v.push(None),
        (ColumnData::Int(v), ValueRef::Integer(i)) => v.push(Some(i)),
        (ColumnData::Float(v), ValueRef::Null) => v.push(None),
        (ColumnData::Float(v), ValueRef::Real(f)) => v.push(Some(f)),
        // REAL affinity keeps integral values as REAL, but be lenient.
        (ColumnData::Float(v), ValueRef::Integer(i)) => v.push(Some(i as f64)),
        (ColumnData::Date(v), ValueRef::Null) => v.push(None),
        (ColumnData::Date(v), ValueRef::Integer(days)) => v.push(Some(
            i32::try_from(days)
                .ok()
                .and_then(Date::from_days)
                .ok_or_else(bad)?,
        )),
        (ColumnData::DateTime(v), ValueRef::Null) => v.push(None),
        (ColumnData::DateTime(v), ValueRef::Integer(micros)) => {
            v.push(Some(Timestamp::from_unix_micros(micros).ok_or_else(bad)?));
        }
        (ColumnData::String(v), ValueRef::Null) => v.push(None),
        (ColumnData::String(v), ValueRef::Text(bytes)) => {
            v.push(Some(std::str::from_utf8(bytes).map_err(|_| bad())?));
        }
        _ => return Err(bad()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use audlink_core::recipients::{Column, ColumnData, RecipientIds, Strings};
    use audlink_core::sample;

    use super::*;
    use crate::store::Store;
    use crate::store::testing::store;

    fn strings(values: &[Option<&str>]) -> Strings {
        values.iter().copied().collect()
    }

    fn table(ids: Vec<i64>, columns: Vec<(&str, ColumnData)>) -> RecipientsTable {
        RecipientsTable {
            ids: RecipientIds::Int(ids),
            columns: columns
                .into_iter()
                .map(|(name, data)| Column {
                    name: name.to_owned(),
                    data,
                })
                .collect(),
        }
    }

    fn link(recipient: RecipientKey, visitor: u128, seen: Option<i64>) -> VisitorLink {
        VisitorLink {
            recipient,
            visitor: VisitorId::from_u128(visitor).unwrap(),
            last_seen: seen.and_then(Timestamp::from_unix_seconds),
        }
    }

    #[test]
    fn upsert_counts_inserts_and_updates() {
        let (_dir, mut store) = store("upsert");
        let first = table(
            vec![1, 2, 3],
            vec![
                (
                    "email",
                    ColumnData::String(strings(&[Some("a@x"), None, Some("c@x")])),
                ),
                ("age", ColumnData::Int(vec![Some(30), Some(40), None])),
            ],
        );
        let done = store.upsert_recipients(&first).unwrap();
        assert_eq!((done.inserted, done.updated), (3, 0));
        assert_eq!(done.added_columns, ["email", "age"]);
        // Ids 2 and 3 again, 4 new; a new column; `email` absent keeps its values.
        let second = table(
            vec![4, 2, 3],
            vec![
                ("age", ColumnData::Int(vec![Some(50), Some(41), Some(42)])),
                ("vip", ColumnData::Bool(vec![Some(true), None, Some(false)])),
            ],
        );
        let done = store.upsert_recipients(&second).unwrap();
        assert_eq!((done.inserted, done.updated), (1, 2));
        assert_eq!(done.added_columns, ["vip"]);
        let back = store.recipients_table().unwrap();
        let expected = table(
            vec![1, 2, 3, 4],
            vec![
                (
                    "email",
                    ColumnData::String(strings(&[Some("a@x"), None, Some("c@x"), None])),
                ),
                (
                    "age",
                    ColumnData::Int(vec![Some(30), Some(41), Some(42), Some(50)]),
                ),
                (
                    "vip",
                    ColumnData::Bool(vec![None, None, Some(false), Some(true)]),
                ),
            ],
        );
        assert_eq!(back, expected);
        assert_eq!(store.recipients_count().unwrap(), 4);
        let schema = store.schema().unwrap();
        assert_eq!(
            schema.columns(),
            &[
                ("id".to_owned(), Type::Int),
                ("email".to_owned(), Type::String),
                ("age".to_owned(), Type::Int),
                ("vip".to_owned(), Type::Bool),
            ]
        );
    }

    #[test]
    fn generated_table_round_trips() {
        let (_dir, mut store) = store("roundtrip");
        let generated = sample::recipients_table(7, 500);
        store.upsert_recipients(&generated).unwrap();
        assert_eq!(store.recipients_table().unwrap(), generated);
        assert_eq!(store.schema().unwrap(), Schema::of(&generated));
    }

    #[test]
    fn only_the_wanted_columns_are_read() {
        let (_dir, mut store) = store("columns");
        let generated = sample::recipients_table(3, 200);
        store.upsert_recipients(&generated).unwrap();
        let wanted = ["vip", "no_such_column", "email"];
        let narrow = store.recipients_columns(&wanted).unwrap();
        let expected: Vec<&Column> = generated
            .columns
            .iter()
            .filter(|c| wanted.contains(&c.name.as_str()))
            .collect();
        assert_eq!(expected.len(), 2, "the sample has both columns");
        assert_eq!(narrow.ids, generated.ids);
        assert_eq!(narrow.columns.iter().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn conflicting_column_type_names_the_column_and_writes_nothing() {
        let (dir, mut store) = store("conflict");
        let first = table(vec![1], vec![("age", ColumnData::Int(vec![Some(30)]))]);
        store.upsert_recipients(&first).unwrap();
        // A new row, a new column and a conflicting one: nothing of it may land.
        let bad = table(
            vec![1, 2],
            vec![
                ("extra", ColumnData::Int(vec![Some(1), Some(2)])),
                (
                    "age",
                    ColumnData::String(strings(&[Some("old"), Some("young")])),
                ),
            ],
        );
        let err = store.upsert_recipients(&bad).unwrap_err();
        assert!(
            matches!(&err, StoreError::ColumnType { column, .. } if column == "age"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "column \"age\" holds whole number in the database, not text"
        );
        drop(store);
        let store = SqliteStore::open(&dir.db()).unwrap();
        assert_eq!(store.recipients_table().unwrap(), first);
        // Text ids into an integer id column.
        let mut store = store;
        let text_ids = RecipientsTable {
            ids: RecipientIds::String(strings(&[Some("a")])),
            columns: Vec::new(),
        };
        let err = store.upsert_recipients(&text_ids).unwrap_err();
        assert!(matches!(&err, StoreError::ColumnType { column, .. } if column == "id"));
    }

    #[test]
    fn compatible_types_are_stored_in_the_first_type() {
        let (_dir, mut store) = store("compatible");
        let first = table(
            vec![1],
            vec![
                ("score", ColumnData::Float(vec![Some(1.5)])),
                ("code", ColumnData::String(strings(&[Some("A1")]))),
                ("age", ColumnData::Int(vec![Some(3)])),
            ],
        );
        store.upsert_recipients(&first).unwrap();
        let second = table(
            vec![2],
            vec![
                ("score", ColumnData::Int(vec![Some(2)])),
                ("code", ColumnData::Int(vec![Some(1234)])),
                // An all-null column reads as text.
                ("age", ColumnData::String(strings(&[None]))),
            ],
        );
        store.upsert_recipients(&second).unwrap();
        let back = store.recipients_table().unwrap();
        assert_eq!(
            back.column("score").unwrap().data,
            ColumnData::Float(vec![Some(1.5), Some(2.0)])
        );
        assert_eq!(
            back.column("code").unwrap().data,
            ColumnData::String(strings(&[Some("A1"), Some("1234")]))
        );
        assert_eq!(
            back.column("age").unwrap().data,
            ColumnData::Int(vec![Some(3), None])
        );
    }

    #[test]
    fn names_sqlite_cannot_tell_apart_are_refused() {
        let (_dir, mut store) = store("case");
        let first = table(vec![1], vec![("email", ColumnData::Int(vec![Some(1)]))]);
        store.upsert_recipients(&first).unwrap();
        let clash = table(vec![2], vec![("Email", ColumnData::Int(vec![Some(1)]))]);
        let err = store.upsert_recipients(&clash).unwrap_err();
        assert!(matches!(err, StoreError::ColumnNameClash { .. }), "{err}");
        let ragged = table(vec![2, 3], vec![("email", ColumnData::Int(vec![Some(1)]))]);
        let err = store.upsert_recipients(&ragged).unwrap_err();
        assert!(matches!(err, StoreError::RaggedColumn { .. }), "{err}");
    }

    #[test]
    fn text_ids_keep_their_text_and_order() {
        let (_dir, mut store) = store("textids");
        let ids = RecipientsTable {
            ids: RecipientIds::String(strings(&[Some("b"), Some("10"), Some("a"), Some("9")])),
            columns: Vec::new(),
        };
        store.upsert_recipients(&ids).unwrap();
        // Integer ids into a text id column are stored as text.
        let more = table(vec![2], Vec::new());
        let done = store.upsert_recipients(&more).unwrap();
        assert_eq!(done.inserted, 1);
        let back = store.recipients_table().unwrap();
        assert_eq!(
            back.ids,
            RecipientIds::String(strings(&[
                Some("10"),
                Some("2"),
                Some("9"),
                Some("a"),
                Some("b")
            ]))
        );
        assert_eq!(store.schema().unwrap().get("id"), Some(Type::String));
    }

    #[test]
    fn links_with_unknown_recipients_are_rejected_with_a_reason() {
        let (_dir, mut store) = store("links");
        let err = store.upsert_links(&[]).unwrap_err();
        assert!(matches!(err, StoreError::NoRecipients));
        store
            .upsert_recipients(&table(vec![1, 2], Vec::new()))
            .unwrap();
        let links = [
            link(RecipientKey::Int(1), 5, Some(100)),
            link(RecipientKey::Int(3), 5, None),
            link(RecipientKey::String("x".to_owned()), 6, None),
            link(RecipientKey::Int(2), 10u128.pow(38) - 1, None),
        ];
        let done = store.upsert_links(&links).unwrap();
        assert_eq!((done.inserted, done.updated), (2, 0));
        assert_eq!(
            done.rejected,
            [
                RejectedLink {
                    index: 1,
                    reason: LinkRejection::NoRecipient
                },
                RejectedLink {
                    index: 2,
                    reason: LinkRejection::NoRecipient
                },
            ]
        );
        assert_eq!(done.rejected[0].reason.code(), "no_recipient");
        // Updates keep the later last-seen; an unknown one never wins.
        let again = [
            link(RecipientKey::Int(1), 5, None),
            link(RecipientKey::Int(2), 10u128.pow(38) - 1, Some(50)),
        ];
        let done = store.upsert_links(&again).unwrap();
        assert_eq!((done.inserted, done.updated), (0, 2));
        let back = store.links().unwrap();
        assert_eq!(
            back,
            [
                link(RecipientKey::Int(1), 5, Some(100)),
                link(RecipientKey::Int(2), 10u128.pow(38) - 1, Some(50)),
            ]
        );
    }
}
