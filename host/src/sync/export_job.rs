//! An export job's run: the code path of `audience export` with the exchange as the place the
//! files go. Each file is uploaded under its [`onboarding_key`] — a function of its name, which
//! a resumed run keeps (same members and snapshot → same run → same timestamp) — before the run
//! is finished with the audience's new snapshot. A process killed after an upload and before
//! the snapshot is stored therefore uploads the same key again when rerun: one object, never a
//! second copy. An export that would not change the audience (its new snapshot equals the last
//! one) sends nothing. Then, with `remote`, the audience's trait and segment are found or
//! created as `audience export --remote` does.

use super::{Runner, Step, report};
use crate::app::AppError;
use crate::app::answer::{ExportJobReport, UploadedObject};
use crate::app::export::export;
use crate::app::remote;
use crate::config::job::ExportJob;
use crate::exchange::{Storage, onboarding_key};
use crate::store::RunObject;
use audlink_core::export::RenderedFile;
use audlink_core::format::onboarding::OnboardingFileName;

/// Runs export job `job` as run `run`.
pub(super) fn run(runner: &mut Runner<'_>, run: i64, job: &ExportJob) -> Result<Step, AppError> {
    let location = runner.exchange.location();
    let prefix = runner.config.exchange.onboarding_prefix().to_owned();
    let mut uploaded: Vec<RunObject> = Vec::new();
    runner.parts()?;
    let guest = runner.sandbox.as_ref().expect("built by parts");
    let (exchange, runtime) = (&runner.exchange, &runner.runtime);
    (runner.step)("exporting");
    let exported = export(
        guest,
        &mut *runner.store,
        &runner.config,
        &job.plan,
        runner.step,
        &mut |files: &[RenderedFile]| {
            let mut lines = Vec::with_capacity(files.len());
            for file in files {
                let name = OnboardingFileName::parse(&file.name).map_err(|e| {
                    AppError::Job(format!("{}: not an onboarding file name ({e})", file.name))
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
    let mut done = ExportJobReport {
        export: exported.answer,
        unchanged: exported.unchanged,
        uploaded: uploaded
            .iter()
            .map(|o| UploadedObject {
                key: o.key.clone(),
                size: o.size,
            })
            .collect(),
    };
    if job.remote {
        if runner.stopped() {
            return Ok(Step::Interrupted(report(&done)));
        }
        let Some(client) = &runner.remote else {
            return Err(AppError::Usage(
                "an export job with remote needs the [remote] client (internal: not connected)"
                    .to_owned(),
            ));
        };
        let data_source = runner.config.datasource(&job.plan.datasource, None)?;
        let made = remote::ensure_audience(
            client,
            &done.export.audience,
            &data_source,
            job.plan.trait_id,
        )?;
        done.export.remote = Some(made);
    }
    Ok(Step::Done(report(&done)))
}
