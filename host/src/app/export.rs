//! The export workflow: a list or a rule's recipients → onboarding files, with the audience's
//! snapshot and the run stored. Where the files go is the caller's `deliver` step (a folder, the
//! exchange, a job's folder).

use std::collections::BTreeMap;

use audlink_core::export::{FileLimits, NotExportedReason, RenderedFile};
use audlink_wasm::dispatch::{ExportSpec, Members};
use audlink_wasm::wire::{Op, packed};
use serde_json::json;

use super::answer::{ExportAnswer, ExportedFile};
use super::{AppError, QUERY_DEADLINE, compile_rule, now, put_tables};
use crate::config::Config;
use crate::guest::{Guest, Request};
use crate::input_key::InputKeyHasher;
use crate::plan::{ExportMembers, ExportPlan};
use crate::store::{ExportStart, Store};

/// The name the members go by inside the request.
const MEMBERS: &str = "members";

/// Writes `files` into the folder `out` (each through a temporary name, so no reader sees
/// half a file); a human line each. The delivery of `audience export --out` and of the
/// server's export jobs.
pub fn write_files(out: &std::path::Path, files: &[RenderedFile]) -> Result<Vec<String>, AppError> {
    std::fs::create_dir_all(out).map_err(|e| AppError::Job(format!("{}: {e}", out.display())))?;
    let mut lines = Vec::with_capacity(files.len());
    for file in files {
        let path = out.join(&file.name);
        let partial = out.join(format!(".{}.partial", file.name));
        std::fs::write(&partial, &file.bytes)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|e| AppError::Job(format!("{}: {e}", path.display())))?;
        lines.push(format!("  wrote {} ({} lines)", path.display(), file.lines));
    }
    Ok(lines)
}

/// Where [`export`] puts the files: written to a folder, or uploaded; a human line each.
pub type Deliver<'a> = dyn FnMut(&[RenderedFile]) -> Result<Vec<String>, AppError> + 'a;

/// What [`export`] did.
#[derive(Debug)]
pub struct Exported {
    /// The document.
    pub answer: ExportAnswer,
    /// What the delivery said it did, a human line a file.
    pub delivered: Vec<String>,
    /// Whether nothing was sent because the audience would not change (`skip_unchanged`).
    pub unchanged: bool,
}

/// Exports what `plan` selects: the one code path of `audience export`, of the server's export
/// jobs and of `audlink sync`'s export jobs. The run is begun (a
/// retry with the same members and snapshot finds its timestamp, so the same file names), the
/// core renders the files in the sandbox, `deliver` puts them where they go (returning a human
/// line each), and only then is the run finished with the audience's new snapshot — so a run
/// interrupted before its files were delivered is resumed, not lost. With `skip_unchanged`, an
/// export whose new snapshot equals the last one delivers nothing (sending the same audience
/// again would change nothing on the platform).
pub fn export(
    guest: &dyn Guest,
    store: &mut dyn Store,
    config: &Config,
    plan: &ExportPlan,
    step: &dyn Fn(&str),
    deliver: &mut Deliver<'_>,
) -> Result<Exported, AppError> {
    let data_source = config.datasource(&plan.datasource, None)?;
    let audience = plan.audience.clone();
    let members = match &plan.members {
        ExportMembers::List(list) => store.list_members(list)?,
        ExportMembers::Rule { rule, now: at } => {
            let compiled = compile_rule(guest, store, rule, at.unwrap_or_else(now))?;
            store.rule_ids(&compiled.clause, QUERY_DEADLINE)?
        }
    };
    let last = store.snapshot(&audience, &data_source.name)?;
    let previous = last.clone().unwrap_or_default();
    let limits = FileLimits {
        gzip: plan.gzip,
        max_lines: plan.max_lines.unwrap_or(FileLimits::default().max_lines),
        ..FileLimits::default()
    };
    let export_mode = plan.mode;

    // Everything that decides the files: a retry of the same run reuses its timestamp.
    let members_bytes = packed::encode_keys(&members);
    let snapshot_bytes = packed::encode_lines(previous.identifiers());
    let options = serde_json::to_vec(&json!({
        "audience": audience, "trait_id": plan.trait_id, "mode": export_mode, "limits": limits,
    }))
    .expect("json");
    let mut hasher = InputKeyHasher::new(&data_source.name, &options);
    hasher.add_file(MEMBERS, &members_bytes);
    hasher.add_file("snapshot", &snapshot_bytes);
    let run_key = hasher.finish();
    let timestamp = match plan.timestamp {
        Some(t) => {
            i64::try_from(t).map_err(|_| AppError::Usage("--timestamp is too large".to_owned()))?
        }
        None => now().unix_seconds(),
    };
    let started = store.begin_export(&ExportStart {
        audience: &audience,
        data_source: &data_source.name,
        run_key: &run_key,
        mode: export_mode,
        timestamp,
        created_at: now(),
    })?;

    step("exporting in the sandbox");
    let mut request = Request::new();
    put_tables(store, &data_source, &mut request)?;
    let payload = request.bytes(members_bytes);
    request.op(Op::SetList {
        name: MEMBERS.to_owned(),
        payload,
    });
    let snapshot = request.bytes(snapshot_bytes);
    let op = request.op(Op::Export {
        spec: ExportSpec {
            data_source: data_source.clone(),
            members: Members::List(MEMBERS.to_owned()),
            trait_id: plan.trait_id,
            mode: export_mode,
            timestamp: u64::try_from(started.timestamp).unwrap_or(0),
            limits,
        },
        snapshot: Some(snapshot),
    });
    let result = guest
        .call(&request)?
        .export(op)
        .map_err(|e| AppError::Job(e.to_string()))?;

    let unchanged = plan.skip_unchanged && last.as_ref() == Some(&result.snapshot);
    let delivered = if unchanged {
        Vec::new()
    } else {
        step("delivering the files");
        deliver(&result.files)?
    };
    let names: Vec<String> = if unchanged {
        Vec::new()
    } else {
        result.files.iter().map(|f| f.name.clone()).collect()
    };
    if !started.finished {
        let report = serde_json::to_string(&result.report).expect("reports serialize");
        store.finish_export(started.id, &names, &report, &result.snapshot, now())?;
    }

    let not_exported_by_reason: BTreeMap<String, u64> = NotExportedReason::ALL
        .iter()
        .map(|r| {
            (
                r.code().to_owned(),
                result.report.not_exported.get(r).copied().unwrap_or(0),
            )
        })
        .collect();
    let sent: &[RenderedFile] = if unchanged { &[] } else { &result.files };
    let answer = ExportAnswer {
        export_id: started.id,
        audience,
        data_source: data_source.name.clone(),
        timestamp: started.timestamp,
        resumed: started.resumed,
        files: sent
            .iter()
            .map(|f| ExportedFile {
                name: f.name.clone(),
                lines: f.lines,
                bytes: f.bytes.len() as u64,
            })
            .collect(),
        report: result.report,
        not_exported_by_reason,
        not_exported: result.not_exported.into_iter().take(100).collect(),
        remote: None,
    };
    Ok(Exported {
        answer,
        delivered,
        unchanged,
    })
}
