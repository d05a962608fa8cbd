//! The runs of `audlink sync`'s jobs (`sync_runs`, schema version 4): job, kind, start and
//! end, status, report and error, and the objects each run imported or uploaded
//! (`sync_run_objects`).
//!
//! A run is begun as `running` and finished once as `ok`, `failed` or `interrupted`. A run
//! still `running` when the next `audlink sync` starts belonged to a process that ended without
//! finishing it (killed); [`Store::interrupt_unfinished_runs`] marks it `interrupted`.
//!
//! [`Store::interrupt_unfinished_runs`]: crate::store::Store::interrupt_unfinished_runs

use audlink_core::time::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::{RunObject, RunStatus, SqliteStore, StoreError, SyncRun, corrupt};

/// Adds `object` to run `run` (on a connection or inside a caller's transaction).
pub(super) fn add_object(
    conn: &Connection,
    run: i64,
    object: &RunObject,
) -> Result<(), StoreError> {
    let size = i64::try_from(object.size).map_err(|_| corrupt("an object larger than i64"))?;
    conn.prepare_cached(
        "INSERT INTO sync_run_objects (run_id, seq, action, location, key, size)
         VALUES (?1, (SELECT coalesce(max(seq), -1) + 1 FROM sync_run_objects WHERE run_id = ?1),
                 ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        run,
        object.action,
        object.location,
        object.key,
        size
    ])?;
    Ok(())
}

fn time(micros: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_unix_micros(micros).ok_or_else(|| corrupt("a run time out of range"))
}

impl SqliteStore {
    /// Begins a run of `job` (`running`); its id.
    pub(super) fn begin_run(
        &self,
        job: &str,
        kind: &str,
        at: Timestamp,
    ) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO sync_runs (job, kind, started_at, status) VALUES (?1, ?2, ?3, 'running')",
            params![job, kind, at.unix_micros()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Adds an object to run `run`.
    pub(super) fn add_run_object(&self, run: i64, object: &RunObject) -> Result<(), StoreError> {
        add_object(&self.conn, run, object)
    }

    /// Finishes run `run` with `status`, its report (JSON text) and error.
    pub(super) fn finish_run(
        &self,
        run: i64,
        status: RunStatus,
        report: Option<&str>,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let changed = self.conn.execute(
            "UPDATE sync_runs SET status = ?2, report = ?3, error = ?4, finished_at = ?5
             WHERE id = ?1 AND status = 'running'",
            params![run, status.code(), report, error, at.unix_micros()],
        )?;
        if changed != 1 {
            return Err(corrupt(format!("sync run {run} is not running")));
        }
        Ok(())
    }

    /// Marks every run still `running` as `interrupted` (their process ended without finishing
    /// them); how many. Only call this while no other `audlink sync` runs on the database.
    pub(super) fn interrupt_unfinished_runs(&self, at: Timestamp) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE sync_runs SET status = 'interrupted', finished_at = ?1,
                 error = 'the process ended before the run finished (killed?); the next run takes over'
             WHERE status = 'running'",
            [at.unix_micros()],
        )?)
    }

    /// The last `limit` runs (of `job` when given), newest first, with their objects.
    pub(super) fn runs(&self, job: Option<&str>, limit: usize) -> Result<Vec<SyncRun>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut statement = self.conn.prepare_cached(
            "SELECT id, job, kind, started_at, finished_at, status, report, error FROM sync_runs
             WHERE ?1 IS NULL OR job = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = statement.query_map(params![job, limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Option<i64>>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, Option<String>>(6)?,
                row.get::<_, Option<String>>(7)?,
            ))
        })?;
        let mut runs = Vec::new();
        for row in rows {
            let (id, job, kind, started, finished, status, report, error) = row?;
            runs.push(SyncRun {
                id,
                job,
                kind,
                started_at: time(started)?,
                finished_at: finished.map(time).transpose()?,
                status: RunStatus::parse(&status)
                    .ok_or_else(|| corrupt(format!("sync run {id} has status {status:?}")))?,
                report,
                error,
                objects: self.run_objects(id)?,
            });
        }
        Ok(runs)
    }

    /// The run `run`, if there is one.
    pub(super) fn run(&self, run: i64) -> Result<Option<SyncRun>, StoreError> {
        let job: Option<String> = self
            .conn
            .query_row("SELECT job FROM sync_runs WHERE id = ?1", [run], |row| {
                row.get(0)
            })
            .optional()?;
        let Some(job) = job else {
            return Ok(None);
        };
        Ok(self
            .runs(Some(&job), usize::MAX)?
            .into_iter()
            .find(|r| r.id == run))
    }

    fn run_objects(&self, run: i64) -> Result<Vec<RunObject>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT action, location, key, size FROM sync_run_objects WHERE run_id = ?1
             ORDER BY seq",
        )?;
        let rows = statement.query_map([run], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?;
        let mut objects = Vec::new();
        for row in rows {
            let (action, location, key, size) = row?;
            objects.push(RunObject {
                action,
                location,
                key,
                size: u64::try_from(size).map_err(|_| corrupt("a negative object size"))?,
            });
        }
        Ok(objects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_seconds(seconds).unwrap()
    }

    #[test]
    fn runs_are_begun_finished_and_listed_newest_first() {
        let (_dir, store) = store("sync-runs");
        let first = store.begin_run("in", "import", at(10)).unwrap();
        let object = RunObject {
            action: "imported".into(),
            location: "folder /x".into(),
            key: "out/a.sync".into(),
            size: 12,
        };
        store.add_run_object(first, &object).unwrap();
        store
            .finish_run(first, RunStatus::Ok, Some("{}"), None, at(11))
            .unwrap();
        // A run is finished once.
        assert!(
            store
                .finish_run(first, RunStatus::Failed, None, None, at(12))
                .is_err()
        );
        let second = store.begin_run("out", "export", at(20)).unwrap();
        let third = store.begin_run("in", "import", at(30)).unwrap();
        store
            .finish_run(third, RunStatus::Failed, None, Some("boom"), at(31))
            .unwrap();
        assert_eq!(store.interrupt_unfinished_runs(at(40)).unwrap(), 1);

        let runs = store.runs(None, 10).unwrap();
        let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
        assert_eq!(ids, [third, second, first]);
        assert_eq!(runs[1].status, RunStatus::Interrupted);
        assert!(runs[1].error.as_deref().unwrap().contains("killed"));
        assert_eq!(runs[0].error.as_deref(), Some("boom"));
        assert_eq!(runs[2].objects, [object]);
        assert_eq!(runs[2].finished_at, Some(at(11)));
        let only_in = store.runs(Some("in"), 1).unwrap();
        assert_eq!(only_in.len(), 1);
        assert_eq!(only_in[0].id, third);
        assert_eq!(
            store.run(first).unwrap().unwrap().report.as_deref(),
            Some("{}")
        );
        assert!(store.run(99).unwrap().is_none());
    }
}
