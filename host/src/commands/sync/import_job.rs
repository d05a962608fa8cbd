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

use audlink_core::format::aep::AepFileName;
use audlink_core::format::onboarding::OnboardingFileName;
use audlink_core::format::outbound::OutboundFileName;
use serde_json::json;

use super::super::import::{ImportInput, format_of, import};
use super::super::{Failure, Progress, now};
use super::{Runner, Step};
use crate::cli::{ImportArgs, InputFormat};
use crate::config::job::ImportJob;
use crate::exchange::{Examined, Storage, examine, list_once};
use crate::store::{DbUrl, ObjectSource};

/// A folder removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `name` is an audience file name `--format auto` reads.
fn recognized(name: &str) -> bool {
    OnboardingFileName::parse(name).is_ok()
        || AepFileName::parse(name).is_ok()
        || OutboundFileName::parse(name).is_ok()
}

/// The `audience import` options of `job`.
fn import_args(job: &ImportJob) -> ImportArgs {
    ImportArgs {
        files: Vec::new(),
        datasource: job.datasource.clone(),
        mappings: job.mappings.clone(),
        policy: job.policy,
        identity_column: job.identity_column.clone(),
        status_column: job.status_column.clone(),
        mode: job.mode,
        format: job.format,
        segment: job.segment.clone(),
    }
}

/// The temporary folder of run `run`, beside the database.
fn scratch(url: &DbUrl, run: i64) -> Result<Scratch, Failure> {
    let Some(db) = url.local_path() else {
        return Err(Failure::usage(format!(
            "{url}: audlink sync needs a database file to download beside"
        )));
    };
    let mut path = db.as_os_str().to_owned();
    path.push(format!(".sync-{run}"));
    let path = PathBuf::from(path);
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).map_err(|e| Failure::job(format!("{}: {e}", path.display())))?;
    Ok(Scratch(path))
}

/// Runs import job `job` as run `run`.
pub(super) fn run(runner: &mut Runner<'_, '_>, run: i64, job: &ImportJob) -> Result<Step, Failure> {
    let args = import_args(job);
    let location = runner.exchange.location();
    let listing = runner
        .runtime
        .block_on(list_once(&runner.exchange, &job.prefix))?;
    let dir = scratch(&runner.ctx.cli.db, run)?;
    let at_ms = now().unix_micros() / 1000;
    let (mut skipped, mut ignored) = (Vec::new(), Vec::new());
    let mut inputs = Vec::new();
    let mut objects = Vec::new();
    for listed in &listing {
        if runner.stopped() {
            return Ok(Step::Interrupted(json!({
                "location": location, "prefix": job.prefix, "imported": [],
                "skipped": skipped, "ignored": ignored,
                "import": null,
            })));
        }
        let name = listed
            .key
            .rsplit('/')
            .next()
            .unwrap_or(&listed.key)
            .to_owned();
        if job.format == InputFormat::Auto && !recognized(&name) {
            ignored.push(listed.key.clone());
            continue;
        }
        format_of(&name, &args)?;
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
            .map_err(|e| Failure::job(format!("{}: {e}", path.display())))?;
        inputs.push(ImportInput { name, path });
        objects.push(object);
    }
    let imported: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    let report = if inputs.is_empty() {
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
        let progress = Progress::start(runner.ctx, "importing");
        let sandbox = runner.ctx.sandbox()?;
        let report = import(
            sandbox,
            &mut *runner.store,
            &runner.config,
            &args,
            &inputs,
            &sources,
            &|step| progress.step(step),
        )?;
        drop(progress);
        Some(report)
    };
    Ok(Step::Done(json!({
        "location": location,
        "prefix": job.prefix,
        "imported": imported,
        "skipped": skipped,
        "ignored": ignored,
        "import": report,
    })))
}
