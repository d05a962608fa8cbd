//! An export job's run: the code path of `audience export` with the exchange as the place the
//! files go. Each file is uploaded under its [`onboarding_key`] — a function of its name, which
//! a resumed run keeps (same members and snapshot → same run → same timestamp) — before the run
//! is finished with the audience's new snapshot. A process killed after an upload and before
//! the snapshot is stored therefore uploads the same key again when rerun: one object, never a
//! second copy. An export that would not change the audience (its new snapshot equals the last
//! one) sends nothing. Then, with `remote`, the audience's trait and segment are found or
//! created as `audience export --remote` does.

use std::path::PathBuf;

use audlink_core::export::RenderedFile;
use audlink_core::format::onboarding::OnboardingFileName;
use serde_json::json;

use super::super::export::export;
use super::super::{Failure, Progress, remote};
use super::{Runner, Step};
use crate::cli::ExportArgs;
use crate::config::job::{ExportJob, ExportMembers};
use crate::exchange::{Storage, onboarding_key};
use crate::store::RunObject;

/// The `audience export` options of `job`.
fn export_args(job: &ExportJob) -> ExportArgs {
    let (list, rule) = match &job.members {
        ExportMembers::List(list) => (Some(list.clone()), None),
        ExportMembers::Rule(rule) => (None, Some(rule.clone())),
    };
    ExportArgs {
        list,
        rule,
        now: None,
        datasource: job.datasource.clone(),
        trait_id: job.trait_id,
        out: PathBuf::new(),
        mode: job.mode,
        audience: Some(job.audience.clone()),
        gzip: job.gzip,
        max_lines: job.max_lines,
        timestamp: None,
        remote: job.remote,
    }
}

/// Runs export job `job` as run `run`.
pub(super) fn run(runner: &mut Runner<'_, '_>, run: i64, job: &ExportJob) -> Result<Step, Failure> {
    let args = export_args(job);
    let location = runner.exchange.location();
    let prefix = runner.config.exchange.onboarding_prefix().to_owned();
    let mut uploaded: Vec<RunObject> = Vec::new();
    let (exchange, runtime) = (&runner.exchange, &runner.runtime);
    let progress = Progress::start(runner.ctx, "exporting");
    let sandbox = runner.ctx.sandbox()?;
    let exported = export(
        sandbox,
        &mut *runner.store,
        &runner.config,
        &args,
        true,
        &|step| progress.step(step),
        &mut |files: &[RenderedFile]| {
            let mut lines = Vec::with_capacity(files.len());
            for file in files {
                let name = OnboardingFileName::parse(&file.name).map_err(|e| {
                    Failure::job(format!("{}: not an onboarding file name ({e})", file.name))
                })?;
                let key = onboarding_key(&prefix, &name)?;
                runtime.block_on(exchange.put(&key, file.bytes.clone()))?;
                lines.push(format!("  uploaded {key} to {location}"));
                uploaded.push(RunObject {
                    action: "uploaded".to_owned(),
                    location: location.clone(),
                    key,
                    size: file.bytes.len() as u64,
                });
            }
            Ok(lines)
        },
    )?;
    for object in &uploaded {
        runner.store.add_run_object(run, object)?;
    }
    let mut report = exported.json;
    report["unchanged"] = json!(exported.unchanged);
    report["uploaded"] = json!(
        uploaded
            .iter()
            .map(|o| json!({"key": o.key, "size": o.size}))
            .collect::<Vec<_>>()
    );
    if job.remote {
        if runner.stopped() {
            return Ok(Step::Interrupted(report));
        }
        let Some(client) = &runner.remote else {
            return Err(Failure::usage(
                "an export job with remote needs the [remote] client (internal: not connected)",
            ));
        };
        let data_source = runner.config.datasource(&job.datasource, None)?;
        let (remote_json, _) =
            remote::ensure_audience(client, &exported.audience, &data_source, job.trait_id)?;
        report["remote"] = remote_json;
    }
    Ok(Step::Done(report))
}
