//! `audlink serve`'s jobs: an import or export run in the background, with its status
//! (`queued`, `running`, `done`, `failed`, `interrupted`), the step it is at, its result or
//! error (JSON) and the names of the files it made. A server that stops marks the jobs it did
//! not finish `interrupted`; one that starts marks those a killed server left.

use audlink_core::time::Timestamp;
use rusqlite::OptionalExtension;

use super::{Job, JobStatus, SqliteStore, StoreError};

fn json(text: Option<String>, what: &'static str) -> Result<Option<serde_json::Value>, StoreError> {
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|source| StoreError::Json { what, source })
}

impl SqliteStore {
    /// Records a new `queued` job of `kind`; its id.
    pub(super) fn create_job(&mut self, kind: &str, at: Timestamp) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO serve_jobs (kind, status, step, created_at) VALUES (?1, 'queued', 'queued', ?2)",
            (kind, at.unix_micros()),
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Moves job `id` to `running` at `step` (only from `queued` or `running`).
    pub(super) fn job_step(&mut self, id: i64, step: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE serve_jobs SET status = 'running', step = ?2
             WHERE id = ?1 AND status IN ('queued', 'running')",
            (id, step),
        )?;
        Ok(())
    }

    /// Ends job `id` (still `queued` or `running`) as `status` with its result or error and
    /// files; false when it had ended already (e.g. marked interrupted).
    pub(super) fn finish_job(
        &mut self,
        id: i64,
        status: JobStatus,
        result: Option<&serde_json::Value>,
        error: Option<&serde_json::Value>,
        files: &[String],
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let files = serde_json::to_string(files).map_err(|source| StoreError::Json {
            what: "job files",
            source,
        })?;
        let changed = self.conn.execute(
            "UPDATE serve_jobs SET status = ?2, step = ?2, result = ?3, error = ?4, files = ?5,
                 finished_at = ?6
             WHERE id = ?1 AND status IN ('queued', 'running')",
            (
                id,
                status.code(),
                result.map(ToString::to_string),
                error.map(ToString::to_string),
                files,
                at.unix_micros(),
            ),
        )?;
        Ok(changed == 1)
    }

    /// Marks every `queued` or `running` job `interrupted`; how many there were.
    pub(super) fn interrupt_jobs(&mut self, at: Timestamp) -> Result<usize, StoreError> {
        let error = serde_json::json!({
            "kind": "interrupted",
            "message": "the server stopped before the job finished; nothing it would have written was written",
        })
        .to_string();
        Ok(self.conn.execute(
            "UPDATE serve_jobs SET status = 'interrupted', step = 'interrupted', error = ?1,
                 finished_at = ?2
             WHERE status IN ('queued', 'running')",
            (error, at.unix_micros()),
        )?)
    }

    /// Job `id`, if there is one.
    pub(super) fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT kind, status, step, created_at, finished_at, result, error, files
                 FROM serve_jobs WHERE id = ?1",
                [id],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, Option<i64>>(4)?,
                        row.get::<_, Option<String>>(5)?,
                        row.get::<_, Option<String>>(6)?,
                        row.get::<_, String>(7)?,
                    ))
                },
            )
            .optional()?;
        let Some((kind, status, step, created_at, finished_at, result, error, files)) = row else {
            return Ok(None);
        };
        Ok(Some(Job {
            id,
            kind,
            status: JobStatus::parse(&status)?,
            step,
            created_at,
            finished_at,
            result: json(result, "a job's result")?,
            error: json(error, "a job's error")?,
            files: serde_json::from_str(&files).map_err(|source| StoreError::Json {
                what: "a job's files",
                source,
            })?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store;

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_unix_micros(micros).expect("time")
    }

    #[test]
    fn a_job_runs_ends_once_and_an_interrupted_one_stays_so() {
        let (_dir, mut store) = store("jobs");
        let done = store.create_job("import", at(1)).unwrap();
        let cut = store.create_job("export", at(2)).unwrap();
        assert_eq!(store.job(done).unwrap().unwrap().status, JobStatus::Queued);
        store.job_step(done, "importing").unwrap();
        store.job_step(cut, "exporting").unwrap();
        let job = store.job(done).unwrap().unwrap();
        assert_eq!(
            (job.status, job.step.as_str()),
            (JobStatus::Running, "importing")
        );
        let result = serde_json::json!({"import_id": 1});
        assert!(
            store
                .finish_job(
                    done,
                    JobStatus::Done,
                    Some(&result),
                    None,
                    &["a".into()],
                    at(3)
                )
                .unwrap()
        );
        assert_eq!(store.interrupt_jobs(at(4)).unwrap(), 1);
        // A job ends once: the interrupted one cannot be finished after the fact.
        assert!(
            !store
                .finish_job(cut, JobStatus::Done, Some(&result), None, &[], at(5))
                .unwrap()
        );
        let job = store.job(done).unwrap().unwrap();
        assert_eq!(
            (job.status, job.result, job.files),
            (JobStatus::Done, Some(result), vec!["a".to_owned()])
        );
        let job = store.job(cut).unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Interrupted);
        assert_eq!(job.error.unwrap()["kind"], "interrupted");
        assert_eq!(store.job(99).unwrap(), None);
    }
}
