//! The import workflow: shared audiences (files) become list memberships, once per input.
//!
//! The inputs' bytes, the data source and the options make an input key: an input imported
//! before is not applied again (its stored report comes back, `skipped`). Otherwise the
//! recipients, links and the lists an import can change are read from the store, packed, and
//! sent to the guest with the files (streamed); the lists, the run, its report and unmatched
//! identifiers, and every exchange object the caller names are written in one transaction.

use std::fs::File;
use std::time::Instant;

use tracing::debug;

use audlink_core::format::aep::AepColumns;
use audlink_core::format::{FileKind, detect};
use audlink_core::import::{AudienceFormat, DEFAULT_LIST_PREFIX, UnmatchedId};
use audlink_wasm::dispatch::{ImportFileSpec, ImportSpec};
use audlink_wasm::wire::{FileRef, Op, packed};
use serde_json::json;

use super::answer::{ImportAnswer, ImportSummary};
use super::{AppError, now, put_tables, readable};
use crate::config::Config;
use crate::guest::{Guest, Request};
use crate::input_key::InputKeyHasher;
use crate::memory::take_peak;
use crate::plan::{AepMode, ImportOptions, ImportPlan, InputFormat};
use crate::store::{ImportRun, ObjectSource, Store};

/// Whether `name` is the name of an audience file `auto` reads (onboarding, Experience
/// Platform export, Audience Manager outbound).
pub fn recognized(name: &str) -> bool {
    detect(name).is_some()
}

/// How the file `name` is read under `options` (its format, or what its name says).
pub fn format_of(name: &str, options: &ImportOptions) -> Result<AudienceFormat, AppError> {
    let aep = || -> Result<AudienceFormat, AppError> {
        let identity = options.identity_column.clone().ok_or_else(|| {
            AppError::Usage(format!(
                "{name}: an Experience Platform export needs --identity-column (and usually --status-column)"
            ))
        })?;
        Ok(AudienceFormat::Aep {
            columns: AepColumns {
                identity,
                status: options.status_column.clone(),
            },
            full: options.mode == AepMode::Full,
        })
    };
    match options.format {
        InputFormat::Ids => {
            let segment = options.segment.clone().ok_or_else(|| {
                AppError::Usage(
                    "--format ids needs --segment ID (the segment the ids belong to)".to_owned(),
                )
            })?;
            Ok(AudienceFormat::IdList { segment })
        }
        InputFormat::Outbound => Ok(AudienceFormat::Outbound { mode: None }),
        InputFormat::Aep => aep(),
        InputFormat::Onboarding => Ok(AudienceFormat::Onboarding),
        InputFormat::Auto => match detect(name) {
            Some(FileKind::Onboarding) => Ok(AudienceFormat::Onboarding),
            Some(FileKind::Aep) => aep(),
            Some(FileKind::Outbound) => Ok(AudienceFormat::Outbound { mode: None }),
            None => Err(AppError::Job(format!(
                "{name}: unknown format — the name is not that of an Audience Manager outbound \
                     file, an Experience Platform export or an onboarding file (for a plain id \
                     list use --format ids --segment ID)"
            ))),
        },
    }
}

/// Checks a plan before any work: the data source exists, every input is a readable file of
/// a known format. The first problem is the one told.
pub fn check(config: &Config, plan: &ImportPlan) -> Result<(), AppError> {
    config.datasource(&plan.options.datasource, plan.options.policy)?;
    for input in &plan.inputs {
        readable(&input.path)?;
        format_of(&input.name, &plan.options)?;
    }
    Ok(())
}

/// Imports the inputs of `plan` into the lists of the database: the one code path of `audience
/// import`, of `audlink sync`'s import jobs and of the server's import jobs. The lists, the run
/// and every object of `sources` are written in one transaction. An input imported before is
/// not applied again: its stored report comes back `skipped` (and `sources` are recorded).
/// `step` hears what is being done.
pub fn import(
    guest: &dyn Guest,
    store: &mut dyn Store,
    config: &Config,
    plan: &ImportPlan,
    sources: &[ObjectSource<'_>],
    step: &dyn Fn(&str),
) -> Result<ImportAnswer, AppError> {
    let options = &plan.options;
    let data_source = config.datasource(&options.datasource, options.policy)?;
    let mut files = Vec::with_capacity(plan.inputs.len());
    for input in &plan.inputs {
        let format = format_of(&input.name, options)?;
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
        options: audlink_core::import::ImportOptions {
            mappings: options.mappings.iter().cloned().collect(),
            list_unmatched: true,
            strict: false,
        },
        last_applied: store.last_applied(&data_source.name)?,
    };

    // The same bytes, data source and options are the same input: applied once.
    let key_options = serde_json::to_vec(&json!({
        "data_source": data_source,
        "mappings": spec.options.mappings,
        "files": files.iter().map(|(_, f)| f).collect::<Vec<_>>(),
    }))
    .expect("json");
    let mut hasher = InputKeyHasher::new(&data_source.name, &key_options);
    for (path, file) in &files {
        let reader =
            File::open(path).map_err(|e| AppError::Job(format!("{}: {e}", path.display())))?;
        hasher
            .add_reader(&file.name, reader)
            .map_err(|e| AppError::Job(format!("cannot read an input to hash it: {e}")))?;
    }
    let input_key = hasher.finish();
    if let Some(id) = store.import_by_input_key(&input_key)? {
        store.record_sources(sources)?;
        let (mut answer, _) = report(store, id, 0)?;
        answer.skipped = true;
        return Ok(answer);
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
    let decoded = guest.call(&request)?;
    let result = decoded
        .import(op)
        .map_err(|e| AppError::Job(e.to_string()))?;

    let sandboxed = started.elapsed() - read;
    let sandbox_peak = take_peak();
    step("writing the lists and the report");
    let summary = ImportSummary::of(&result.report);
    let stored_report = serde_json::to_string(&summary).expect("summaries serialize");
    let id = store.record_import_from(
        &ImportRun {
            data_source: &data_source.name,
            input_key: &input_key,
            created_at: now(),
            lists: &result.lists,
            last_applied: &result.last_applied,
            report: &stored_report,
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
    Ok(ImportAnswer {
        import_id: id,
        skipped: false,
        summary,
    })
}

/// The stored report of import `import_id`, with at most `unmatched_limit` of its unmatched
/// identifiers (in recorded order) and how many there are in all.
pub fn report(
    store: &dyn Store,
    import_id: i64,
    unmatched_limit: usize,
) -> Result<(ImportAnswer, Unmatched), AppError> {
    let stored = store.import_report(import_id, unmatched_limit)?;
    let rows = crate::unmatched::rows(&stored, unmatched_limit)?;
    let summary: ImportSummary = serde_json::from_str(&stored.report)
        .map_err(|e| AppError::Job(format!("stored report {import_id}: {e}")))?;
    Ok((
        ImportAnswer {
            import_id,
            skipped: false,
            summary,
        },
        Unmatched {
            total: stored.unmatched_total,
            rows,
        },
    ))
}

/// Some of an import's unmatched identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    /// How many the import recorded in all.
    pub total: u64,
    /// The first of them, in recorded order.
    pub rows: Vec<UnmatchedId>,
}
