//! An import job's run: list the prefix, download each new or changed object (the ledger
//! decides) into a temporary folder, and import them all with the code path of `audience
//! import` — one transaction writes the lists, the import run, the ledger rows and the run's
//! objects, so a killed process leaves each object either imported and recorded or neither.
//!
//! All new objects go into one import because a delivery may come in parts (a full outbound file
//! split in three must replace a list once, not three times); the core groups them into
//! deliveries and applies those in time order. In `auto` format, objects whose name is not that
//! of an audience file (an outbound delivery's `.info` file, a marker) are ignored, not failed,
//! and not recorded.

use std::path::PathBuf;

use super::{Runner, Step, report};
use crate::app::answer::ImportJobReport;
use crate::app::import::{format_of, import, recognized};
use crate::app::{AppError, now};
use crate::config::job::ImportJob;
use crate::exchange::{Examined, Storage, examine, list_once};
use crate::plan::{ImportInput, ImportPlan, InputFormat};
use crate::store::ObjectSource;

/// A folder removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh, empty scratch folder at `path` (see `sync::scratch_dir`), removed when dropped.
fn scratch(path: PathBuf) -> Result<Scratch, AppError> {
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path)
        .map_err(|e| AppError::Job(format!("{}: {e}", path.display())))?;
    Ok(Scratch(path))
}

/// Runs import job `job` as run `run`.
pub(super) fn run(runner: &mut Runner<'_>, run: i64, job: &ImportJob) -> Result<Step, AppError> {
    let location = runner.exchange.location();
    let listing = runner
        .runtime
        .block_on(list_once(&runner.exchange, &job.prefix))?;
    let dir = scratch(super::scratch_dir(runner.settings, &runner.config, run)?)?;
    let at_ms = now().unix_micros() / 1000;
    let (mut skipped, mut ignored) = (Vec::new(), Vec::new());
    let mut inputs = Vec::new();
    let mut objects = Vec::new();
    for listed in &listing {
        if runner.stopped() {
            return Ok(Step::Interrupted(report(&ImportJobReport {
                location,
                prefix: job.prefix.clone(),
                imported: Vec::new(),
                skipped,
                ignored,
                import: None,
            })));
        }
        let name = listed
            .key
            .rsplit('/')
            .next()
            .unwrap_or(&listed.key)
            .to_owned();
        if job.options.format == InputFormat::Auto && !recognized(&name) {
            ignored.push(listed.key.clone());
            continue;
        }
        format_of(&name, &job.options)?;
        let examined = runner.runtime.block_on(examine(
            &*runner.store,
            &runner.exchange,
            &location,
            listed,
            at_ms,
        ))?;
        let Examined::New { bytes, object } = examined else {
            skipped.push(listed.key.clone());
            continue;
        };
        // One folder per object: two keys may end in the same name.
        let folder = dir.0.join(inputs.len().to_string());
        let path = folder.join(&name);
        std::fs::create_dir_all(&folder)
            .and_then(|()| std::fs::write(&path, &bytes))
            .map_err(|e| AppError::Job(format!("{}: {e}", path.display())))?;
        inputs.push(ImportInput { name, path });
        objects.push(object);
    }
    let imported: Vec<String> = objects.iter().map(|o| o.key.clone()).collect();
    let answer = if inputs.is_empty() {
        None
    } else {
        let sources: Vec<ObjectSource<'_>> = objects
            .iter()
            .map(|object| ObjectSource {
                object,
                at_ms,
                run: Some(run),
            })
            .collect();
        let plan = ImportPlan {
            options: job.options.clone(),
            inputs,
        };
        let (guest, store, config, step) = runner.parts()?;
        step("importing");
        Some(import(guest, store, config, &plan, &sources, step)?)
    };
    Ok(Step::Done(report(&ImportJobReport {
        location,
        prefix: job.prefix.clone(),
        imported,
        skipped,
        ignored,
        import: answer,
    })))
}
