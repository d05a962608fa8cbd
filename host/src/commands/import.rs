//! `audlink audience import` and `audlink report`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use tracing::debug;

use audlink_core::format::aep::{AepColumns, AepFileName};
use audlink_core::format::onboarding::OnboardingFileName;
use audlink_core::format::outbound::OutboundFileName;
use audlink_core::import::{
    AudienceFormat, DEFAULT_LIST_PREFIX, ImportOptions, ImportReport, UnmatchedReason,
};
use audlink_wasm::dispatch::{ImportFileSpec, ImportSpec};
use audlink_wasm::wire::{FileRef, Op, packed};
use serde_json::{Value, json};

use super::{Context, Failure, Progress, StepError, base_name, now, print, put_tables, readable};
use crate::cli::{AepMode, ImportArgs, InputFormat, ReportArgs};
use crate::config::Config;
use crate::guest::Request;
use crate::input_key::InputKeyHasher;
use crate::memory::take_peak;
use crate::sandbox::Sandbox;
use crate::store::{ImportRun, ObjectSource, Store};

/// How the file `name` is read, from `--format` or its name.
pub(super) fn format_of(name: &str, args: &ImportArgs) -> Result<AudienceFormat, Failure> {
    let aep = || -> Result<AudienceFormat, Failure> {
        let identity = args.identity_column.clone().ok_or_else(|| {
            Failure::usage(format!(
                "{name}: an Experience Platform export needs --identity-column (and usually --status-column)"
            ))
        })?;
        Ok(AudienceFormat::Aep {
            columns: AepColumns {
                identity,
                status: args.status_column.clone(),
            },
            full: args.mode == AepMode::Full,
        })
    };
    match args.format {
        InputFormat::Ids => {
            let segment = args.segment.clone().ok_or_else(|| {
                Failure::usage("--format ids needs --segment ID (the segment the ids belong to)")
            })?;
            Ok(AudienceFormat::IdList { segment })
        }
        InputFormat::Outbound => Ok(AudienceFormat::Outbound { mode: None }),
        InputFormat::Aep => aep(),
        InputFormat::Onboarding => Ok(AudienceFormat::Onboarding),
        InputFormat::Auto => {
            if OnboardingFileName::parse(name).is_ok() {
                Ok(AudienceFormat::Onboarding)
            } else if AepFileName::parse(name).is_ok() {
                aep()
            } else if OutboundFileName::parse(name).is_ok() {
                Ok(AudienceFormat::Outbound { mode: None })
            } else {
                Err(Failure::job(format!(
                    "{name}: unknown format — the name is not that of an Audience Manager outbound \
                     file, an Experience Platform export or an onboarding file (for a plain id \
                     list use --format ids --segment ID)"
                )))
            }
        }
    }
}

/// The contract's JSON of an import report (the command adds `import_id` and `skipped`).
fn report_json(report: &ImportReport) -> Value {
    let segments: Vec<Value> = report
        .segments
        .values()
        .map(|s| {
            let by_reason: BTreeMap<String, u64> = UnmatchedReason::ALL
                .iter()
                .map(|r| {
                    (
                        r.code().to_owned(),
                        s.unmatched.get(r).copied().unwrap_or(0),
                    )
                })
                .collect();
            json!({
                "segment": s.segment,
                "list": s.list,
                "ids": s.ids,
                "matched": s.matched,
                "unmatched": s.unmatched.values().sum::<u64>(),
                "removed": s.removed,
                "recipients": s.distinct_recipients,
                "opted_out": s.opted_out,
                "match_rate": s.match_rate,
                "unmatched_by_reason": by_reason,
            })
        })
        .collect();
    json!({
        "totals": report.totals,
        "segments": segments,
        "problems": report.problems.len(),
        "refused": report.refused,
    })
}

/// The human text of an import report (with `import_id` and `skipped`).
pub(super) fn human(report: &Value) -> String {
    let mut out = String::new();
    let skipped = report["skipped"].as_bool().unwrap_or(false);
    let _ = writeln!(
        out,
        "import {}{}: {} lines, {} units — {} matched, {} unmatched, {} bad records",
        report["import_id"],
        if skipped {
            " (already applied: nothing changed)"
        } else {
            ""
        },
        report["totals"]["lines"],
        report["totals"]["units"],
        report["totals"]["matched"],
        report["totals"]["unmatched"],
        report["totals"]["bad_records"],
    );
    /// Segments listed in the human output at most (JSON and `audlink report` have them all).
    const SHOWN: usize = 10;
    let segments = report["segments"].as_array().map_or(&[][..], Vec::as_slice);
    for s in segments.iter().take(SHOWN) {
        let rate = s["match_rate"].as_f64().unwrap_or(0.0) * 100.0;
        let reasons: Vec<String> = s["unmatched_by_reason"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, n)| n.as_u64() != Some(0))
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "  segment {} → list {}: {} ids, {} matched ({rate:.1}%), {} recipients, {} removed{}",
            s["segment"].as_str().unwrap_or_default(),
            s["list"].as_str().unwrap_or_default(),
            s["ids"],
            s["matched"],
            s["recipients"],
            s["removed"],
            if reasons.is_empty() {
                String::new()
            } else {
                format!("; unmatched: {}", reasons.join(", "))
            }
        );
    }
    if segments.len() > SHOWN {
        let _ = writeln!(
            out,
            "  … and {} more segments (all of them: --json, or audlink report {})",
            segments.len() - SHOWN,
            report["import_id"]
        );
    }
    out
}

/// One input of an import: a file streamed into the sandbox, and the name the core reads it
/// by (names carry the format, segment and delivery time).
#[derive(Debug, Clone)]
pub struct ImportInput {
    /// The name (a file's base name, an object key's last segment).
    pub name: String,
    /// Where the bytes are.
    pub path: PathBuf,
}

/// `audlink audience import FILE... --datasource NAME`.
pub(super) fn run(ctx: &mut Context<'_>, args: &ImportArgs) -> Result<(), Failure> {
    // Configuration, then each file, then the database: the first problem is the one told.
    let config = ctx.config()?;
    config.datasource(&args.datasource, args.policy)?;
    let inputs = inputs_of(args)?;
    let mut store = ctx.store()?;
    let progress = Progress::start(ctx, "hashing the input");
    let sandbox = ctx.sandbox()?;
    let report = import(sandbox, &mut *store, &config, args, &inputs, &[], &|step| {
        progress.step(step)
    })?;
    drop(progress);
    print(ctx, &report, &human(&report))
}

/// The files of `args` as import inputs, each checked readable and of a known format.
fn inputs_of(args: &ImportArgs) -> Result<Vec<ImportInput>, Failure> {
    let mut inputs = Vec::with_capacity(args.files.len());
    for path in &args.files {
        readable(path)?;
        let name = base_name(path);
        format_of(&name, args)?;
        inputs.push(ImportInput {
            name,
            path: path.clone(),
        });
    }
    Ok(inputs)
}

/// Imports `args.files` into the lists of the database (once per input: a second run of the
/// same input is `"skipped": true`), the work of the server's import jobs; `step` hears what
/// is being done. The report's JSON.
pub fn apply(
    sandbox: &Sandbox,
    store: &mut dyn Store,
    config: &Config,
    args: &ImportArgs,
    step: &dyn Fn(&str),
) -> Result<Value, StepError> {
    let inputs = inputs_of(args)?;
    import(sandbox, store, config, args, &inputs, &[], step)
}

/// Imports `inputs` with the options of `args` (its `files` are not read): the one code path
/// of `audience import`, of `audlink sync`'s import jobs and of the server's import jobs. The lists, the run and every
/// object of `sources` are written in one transaction. An input imported before is not applied
/// again: its stored report comes back with `"skipped": true` (and `sources` are recorded).
/// `step` hears what is being done. Returns the report with `import_id` and `skipped`.
pub fn import(
    sandbox: &Sandbox,
    store: &mut dyn Store,
    config: &Config,
    args: &ImportArgs,
    inputs: &[ImportInput],
    sources: &[ObjectSource<'_>],
    step: &dyn Fn(&str),
) -> Result<Value, StepError> {
    let data_source = config.datasource(&args.datasource, args.policy)?;
    let mut files = Vec::with_capacity(inputs.len());
    for input in inputs {
        let format = format_of(&input.name, args)?;
        files.push((
            &input.path,
            ImportFileSpec {
                name: input.name.clone(),
                format,
            },
        ));
    }
    let spec = ImportSpec {
        data_source: data_source.clone(),
        options: ImportOptions {
            mappings: args.mappings.iter().cloned().collect(),
            list_unmatched: true,
            strict: false,
        },
        last_applied: store.last_applied(&data_source.name)?,
    };

    // The same bytes, data source and options are the same input: applied once.
    let options = serde_json::to_vec(&json!({
        "data_source": data_source,
        "mappings": spec.options.mappings,
        "files": files.iter().map(|(_, f)| f).collect::<Vec<_>>(),
    }))
    .expect("json");
    let mut hasher = InputKeyHasher::new(&data_source.name, &options);
    for (path, file) in &files {
        let reader =
            File::open(path).map_err(|e| Failure::job(format!("{}: {e}", path.display())))?;
        hasher
            .add_reader(&file.name, reader)
            .map_err(|e| Failure::job(format!("cannot read an input to hash it: {e}")))?;
    }
    let input_key = hasher.finish();
    if let Some(id) = store.import_by_input_key(&input_key)? {
        store.record_sources(sources)?;
        let stored = store.import_report(id, 0)?;
        let mut report: Value = serde_json::from_str(&stored.report)
            .map_err(|e| Failure::job(format!("stored report {id}: {e}")))?;
        report["import_id"] = json!(id);
        report["skipped"] = json!(true);
        return Ok(report);
    }

    let started = Instant::now();
    let _ = take_peak();
    step("reading recipients, links and lists from the database");
    let mut request = Request::new();
    put_tables(store, &data_source, &mut request)?;
    // Only lists an import can change: those named by a mapping and those of the default
    // `segment-<ID>` names (the core treats a list it is not given as empty, so others would
    // only cost memory).
    let names: Vec<String> = store
        .lists()?
        .into_iter()
        .map(|l| l.name)
        .filter(|name| {
            name.starts_with(DEFAULT_LIST_PREFIX)
                || spec.options.mappings.values().any(|list| list == name)
        })
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for (name, members) in store.lists_members(&names)? {
        let payload = request.bytes(packed::encode_keys(&members));
        request.op(Op::SetList { name, payload });
    }
    let refs = files
        .iter()
        .map(|(path, file)| FileRef {
            file: file.clone(),
            payload: request.file(path.as_path()),
        })
        .collect();
    let op = request.op(Op::Import { spec, files: refs });
    step(&format!("importing {} file(s) in the sandbox", files.len()));
    let read = started.elapsed();
    let read_peak = take_peak();
    let decoded = crate::guest::call(sandbox, &request)?;
    let result = decoded
        .import(op)
        .map_err(|e| StepError::Job(e.to_string()))?;

    let sandboxed = started.elapsed() - read;
    let sandbox_peak = take_peak();
    step("writing the lists and the report");
    let mut stored_report = report_json(&result.report);
    let id = store.record_import_from(
        &ImportRun {
            data_source: &data_source.name,
            input_key: &input_key,
            created_at: now(),
            lists: &result.lists,
            last_applied: &result.last_applied,
            report: &stored_report.to_string(),
            unmatched: &crate::unmatched::encode(&result.report.unmatched),
        },
        sources,
    )?;
    let written = started.elapsed() - read - sandboxed;
    let write_peak = take_peak();
    let mib = |peak: Option<u64>| peak.map_or(-1, |b| (b >> 20) as i64);
    debug!(
        read_s = read.as_secs_f64(),
        sandbox_s = sandboxed.as_secs_f64(),
        write_s = written.as_secs_f64(),
        read_peak_mib = mib(read_peak),
        sandbox_peak_mib = mib(sandbox_peak),
        write_peak_mib = mib(write_peak),
        "import phases"
    );
    stored_report["import_id"] = json!(id);
    stored_report["skipped"] = json!(false);
    Ok(stored_report)
}

/// `audlink report IMPORT_ID [--unmatched] [--limit N]`.
pub(super) fn report(ctx: &mut Context<'_>, args: &ReportArgs) -> Result<(), Failure> {
    let store = ctx.store()?;
    let limit = if args.unmatched { args.limit } else { 0 };
    let stored = store.import_report(args.import_id, limit)?;
    let unmatched = crate::unmatched::rows(&stored, limit)?;
    let mut report: Value = serde_json::from_str(&stored.report)
        .map_err(|e| Failure::job(format!("stored report {}: {e}", args.import_id)))?;
    report["import_id"] = json!(args.import_id);
    report["skipped"] = json!(false);
    let mut text = human(&report);
    if args.unmatched {
        report["unmatched_total"] = json!(stored.unmatched_total);
        report["unmatched"] = json!(unmatched);
        let _ = writeln!(
            text,
            "unmatched identifiers ({} in all):",
            stored.unmatched_total
        );
        for u in &unmatched {
            let _ = writeln!(
                text,
                "  {}:{} segment {}: {:?} {}{}",
                u.file,
                u.line,
                u.segment,
                u.id,
                u.reason.code(),
                u.rule
                    .map(|r| format!(" ({})", r.code()))
                    .unwrap_or_default()
            );
        }
    }
    print(ctx, &report, &text)
}
