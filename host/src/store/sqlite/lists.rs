//! Recipient lists: names, members in the id column's order, and the application of an
//! import's [`ListChange`]s (inside the import's transaction, see `imports.rs`).

use std::collections::BTreeMap;

use audlink_core::import::ListChange;
use audlink_core::recipients::RecipientKey;
use rusqlite::{Connection, OptionalExtension, Transaction};

use super::recipients::{id_type, require_id_type};
use super::{ListSummary, SqliteStore, StoreError, is_foreign_key, q, tables};

impl SqliteStore {
    /// Every list with its number of members, by name (bytewise).
    pub(super) fn lists(&self) -> Result<Vec<ListSummary>, StoreError> {
        let t = tables();
        let sql = if id_type(&self.conn)?.is_some() {
            format!(
                "SELECT l.name, (SELECT count(*) FROM {members} AS m WHERE m.{list} = l.name)
                 FROM lists AS l ORDER BY l.name",
                members = q(&t.list_members),
                list = q(&t.list_column),
            )
        } else {
            "SELECT name, 0 FROM lists ORDER BY name".to_owned()
        };
        let mut statement = self.conn.prepare(&sql)?;
        let rows = statement.query_map([], |row| {
            Ok(ListSummary {
                name: row.get(0)?,
                members: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The members of list `name`, ordered by id (numerically or bytewise);
    /// [`StoreError::UnknownList`] when there is no such list.
    pub(super) fn list_members(&self, name: &str) -> Result<Vec<RecipientKey>, StoreError> {
        members(&self.conn, name)?.ok_or_else(|| StoreError::UnknownList {
            name: name.to_owned(),
        })
    }

    /// The members of each of `names` that exists (a missing list is left out), as an import
    /// request's current members or a rule evaluation's lists.
    pub(super) fn lists_members(
        &self,
        names: &[&str],
    ) -> Result<BTreeMap<String, Vec<RecipientKey>>, StoreError> {
        let mut out = BTreeMap::new();
        for &name in names {
            if let Some(members) = members(&self.conn, name)? {
                out.insert(name.to_owned(), members);
            }
        }
        Ok(out)
    }
}

/// The members of `name`, `None` when there is no such list.
fn members(conn: &Connection, name: &str) -> Result<Option<Vec<RecipientKey>>, StoreError> {
    let exists = conn
        .query_row("SELECT 1 FROM lists WHERE name = ?1", [name], |_| Ok(()))
        .optional()?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let Some(id) = id_type(conn)? else {
        return Ok(Some(Vec::new()));
    };
    let t = tables();
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {member} FROM {members} WHERE {list} = ?1 ORDER BY {member}",
        member = q(&t.member_column),
        members = q(&t.list_members),
        list = q(&t.list_column),
    ))?;
    let mut rows = statement.query([name])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(id.key(row.get_ref(0)?)?);
    }
    Ok(Some(out))
}

/// Applies `changes` inside `tx`: creates missing lists, removes and adds members, and checks
/// each list ends with the member count its change promised ([`StoreError::ListChanged`]
/// otherwise: the list moved since the change was computed). The caller rolls back on error.
pub(super) fn apply_list_changes(
    tx: &Transaction<'_>,
    changes: &[ListChange],
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let id = require_id_type(tx)?;
    let t = tables();
    let members = q(&t.list_members);
    let list = q(&t.list_column);
    let member = q(&t.member_column);
    let mut create =
        tx.prepare_cached("INSERT INTO lists (name) VALUES (?1) ON CONFLICT DO NOTHING")?;
    let mut add = tx.prepare_cached(&format!(
        "INSERT INTO {members} ({list}, {member}) VALUES (?1, ?2) ON CONFLICT DO NOTHING"
    ))?;
    let mut remove = tx.prepare_cached(&format!(
        "DELETE FROM {members} WHERE {list} = ?1 AND {member} = ?2"
    ))?;
    let mut count =
        tx.prepare_cached(&format!("SELECT count(*) FROM {members} WHERE {list} = ?1"))?;
    for change in changes {
        let name = change.list.as_str();
        create.execute([name])?;
        for key in &change.removed {
            // A key no id of this type equals is not a member.
            if let Some(key) = id.param(&key) {
                remove.execute((name, key))?;
            }
        }
        for key in &change.added {
            let unknown = || StoreError::UnknownMember {
                list: name.to_owned(),
            };
            let key = id.param(&key).ok_or_else(unknown)?;
            add.execute((name, key)).map_err(|e| {
                if is_foreign_key(&e) {
                    unknown()
                } else {
                    StoreError::from(e)
                }
            })?;
        }
        let found: i64 = count.query_row([name], |row| row.get(0))?;
        let found = u64::try_from(found).unwrap_or(0);
        if found != change.members {
            return Err(StoreError::ListChanged {
                list: name.to_owned(),
                expected: change.members,
                found,
            });
        }
    }
    Ok(())
}
