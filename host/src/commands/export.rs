//! `audlink audience export`: a list or a rule's recipients → onboarding files in a folder,
//! with the audience's snapshot and the run stored.

use std::fmt::Write as _;

use audlink_core::export::{ExportMode, FileLimits, NotExportedReason, RenderedFile};
use audlink_wasm::dispatch::{ExportSpec, Members};
use audlink_wasm::wire::{Op, packed};
use serde_json::{Value, json};

use super::{
    Context, Failure, Progress, QUERY_DEADLINE, StepError, compile_rule, now, now_or, print,
    put_tables,
};
use crate::cli::{ExportArgs, Mode};
use crate::config::Config;
use crate::guest::Request;
use crate::input_key::InputKeyHasher;
use crate::sandbox::Sandbox;
use crate::store::{ExportStart, Store};

/// The name the members go by inside the request.
const MEMBERS: &str = "members";

fn mode(mode: Mode) -> ExportMode {
    match mode {
        Mode::Sync => ExportMode::Sync,
        Mode::Overwrite => ExportMode::Overwrite,
        Mode::Delta => ExportMode::Delta,
    }
}

/// `audlink audience export`.
pub(super) fn run(ctx: &mut Context<'_>, args: &ExportArgs) -> Result<(), Failure> {
    let config = ctx.config()?;
    config.datasource(&args.datasource, None)?;
    if args.audience.is_none() && args.list.is_none() {
        return Err(Failure::usage("--where needs --audience NAME"));
    }
    // Credentials and folders are checked before any work, so a configuration error writes
    // nothing.
    let remote = if args.remote {
        let remote = super::remote::connect(ctx, &config)?;
        super::remote::folders(&remote)?;
        Some(remote)
    } else {
        None
    };
    let mut store = ctx.store()?;
    let progress = Progress::start(ctx, "exporting in the sandbox");
    let sandbox = ctx.sandbox()?;
    let exported = export(
        sandbox,
        &mut *store,
        &config,
        args,
        false,
        &|step| progress.step(step),
        &mut |files| write_files(&args.out, files),
    )?;
    drop(progress);
    let (mut json, mut human) = (exported.json, exported.human);
    // The files are written and the run recorded: a platform failure now leaves a run that a
    // retry resumes (same timestamp) and completes.
    if let Some(remote) = &remote {
        let _progress = Progress::start(ctx, "finding or creating the trait and segment");
        let data_source = config.datasource(&args.datasource, None)?;
        let (remote_json, remote_human) = super::remote::ensure_audience(
            remote,
            &exported.audience,
            &data_source,
            args.trait_id,
        )?;
        json["remote"] = remote_json;
        human.push_str(&remote_human);
    }
    print(ctx, &json, &human)
}

/// Writes `files` into the folder `out` (each through a temporary name, so no reader sees
/// half a file); a human line each.
fn write_files(out: &std::path::Path, files: &[RenderedFile]) -> Result<Vec<String>, Failure> {
    std::fs::create_dir_all(out).map_err(|e| Failure::job(format!("{}: {e}", out.display())))?;
    let mut lines = Vec::with_capacity(files.len());
    for file in files {
        let path = out.join(&file.name);
        let partial = out.join(format!(".{}.partial", file.name));
        std::fs::write(&partial, &file.bytes)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|e| Failure::job(format!("{}: {e}", path.display())))?;
        lines.push(format!("  wrote {} ({} lines)", path.display(), file.lines));
    }
    Ok(lines)
}

/// Exports a list or a rule's recipients as onboarding files in `args.out` (the platform is
/// not called: `--remote` is the command's), the run and the audience's snapshot stored: the
/// work of the server's export jobs; `step` hears what is being done. The JSON of `--json`
/// and the human text.
pub fn apply(
    sandbox: &Sandbox,
    store: &mut dyn Store,
    config: &Config,
    args: &ExportArgs,
    step: &dyn Fn(&str),
) -> Result<(Value, String), StepError> {
    let exported = export(sandbox, store, config, args, false, step, &mut |files| {
        write_files(&args.out, files)
    })?;
    Ok((exported.json, exported.human))
}

/// Where [`export`] puts the files: written to a folder, or uploaded; a human line each.
pub type Deliver<'a> = dyn FnMut(&[RenderedFile]) -> Result<Vec<String>, Failure> + 'a;

/// What [`export`] did.
#[derive(Debug)]
pub struct Exported {
    /// The audience's name.
    pub audience: String,
    /// The contract's JSON (`export_id`, `files`, `report`, …).
    pub json: Value,
    /// The human text.
    pub human: String,
    /// Whether nothing was sent because the audience would not change (`skip_unchanged`).
    pub unchanged: bool,
}

/// Exports what `args` selects (its `out`, `remote` and `timestamp` are the caller's): the one
/// code path of `audience export` and of `audlink sync`'s export jobs. The run is begun (a
/// retry with the same members and snapshot finds its timestamp, so the same file names), the
/// core renders the files in the sandbox, `deliver` puts them where they go (returning a human
/// line each), and only then is the run finished with the audience's new snapshot — so a run
/// interrupted before its files were delivered is resumed, not lost. With `skip_unchanged`, an
/// export whose new snapshot equals the last one delivers nothing (sending the same audience
/// again would change nothing on the platform).
pub fn export(
    sandbox: &Sandbox,
    store: &mut dyn Store,
    config: &Config,
    args: &ExportArgs,
    skip_unchanged: bool,
    step: &dyn Fn(&str),
    deliver: &mut Deliver<'_>,
) -> Result<Exported, StepError> {
    let data_source = config.datasource(&args.datasource, None)?;
    let audience = match (&args.audience, &args.list) {
        (Some(name), _) => name.clone(),
        (None, Some(list)) => list.clone(),
        (None, None) => return Err(StepError::Usage("--where needs --audience NAME".to_owned())),
    };
    let members = match (&args.list, &args.rule) {
        (Some(list), _) => store.list_members(list)?,
        (None, Some(rule)) => {
            let now = now_or(args.now.as_deref())?;
            let compiled = compile_rule(sandbox, store, rule, now)?;
            store.rule_ids(&compiled.clause, QUERY_DEADLINE)?
        }
        (None, None) => {
            return Err(StepError::Usage(
                "give --list NAME or --where RULE".to_owned(),
            ));
        }
    };
    let last = store.snapshot(&audience, &data_source.name)?;
    let previous = last.clone().unwrap_or_default();
    let limits = FileLimits {
        gzip: args.gzip,
        max_lines: args.max_lines.unwrap_or(FileLimits::default().max_lines),
        ..FileLimits::default()
    };
    let export_mode = mode(args.mode);

    // Everything that decides the files: a retry of the same run reuses its timestamp.
    let members_bytes = packed::encode_keys(&members);
    let snapshot_bytes = packed::encode_lines(previous.identifiers());
    let options = serde_json::to_vec(&json!({
        "audience": audience, "trait_id": args.trait_id, "mode": export_mode, "limits": limits,
    }))
    .expect("json");
    let mut hasher = InputKeyHasher::new(&data_source.name, &options);
    hasher.add_file(MEMBERS, &members_bytes);
    hasher.add_file("snapshot", &snapshot_bytes);
    let run_key = hasher.finish();
    let timestamp = match args.timestamp {
        Some(t) => {
            i64::try_from(t).map_err(|_| StepError::Usage("--timestamp is too large".to_owned()))?
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
            trait_id: args.trait_id,
            mode: export_mode,
            timestamp: u64::try_from(started.timestamp).unwrap_or(0),
            limits,
        },
        snapshot: Some(snapshot),
    });
    let result = crate::guest::call(sandbox, &request)?
        .export(op)
        .map_err(|e| StepError::Job(e.to_string()))?;

    let unchanged = skip_unchanged && last.as_ref() == Some(&result.snapshot);
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
    let report = serde_json::to_value(&result.report).expect("json");
    if !started.finished {
        store.finish_export(
            started.id,
            &names,
            &report.to_string(),
            &result.snapshot,
            now(),
        )?;
    }

    let by_reason: serde_json::Map<String, serde_json::Value> = NotExportedReason::ALL
        .iter()
        .map(|r| {
            (
                r.code().to_owned(),
                json!(result.report.not_exported.get(r).copied().unwrap_or(0)),
            )
        })
        .collect();
    let sent: &[RenderedFile] = if unchanged { &[] } else { &result.files };
    let json = json!({
        "export_id": started.id,
        "audience": audience,
        "data_source": data_source.name,
        "timestamp": started.timestamp,
        "resumed": started.resumed,
        "files": sent.iter().map(|f| json!({"name": f.name, "lines": f.lines, "bytes": f.bytes.len()})).collect::<Vec<_>>(),
        "report": report,
        "not_exported_by_reason": by_reason,
        "not_exported": result.not_exported.iter().take(100).collect::<Vec<_>>(),
    });
    let mut human = format!(
        "export {} of audience {audience} ({} mode, data source {}): {} members, {} exported, {} identifiers — {} added, {} removed\n",
        started.id,
        export_mode.code(),
        data_source.name,
        result.report.members,
        result.report.exported_recipients,
        result.report.identifiers,
        result.report.added,
        result.report.removed
    );
    for (reason, count) in &result.report.not_exported {
        if *count > 0 {
            let _ = writeln!(human, "  not exported, {}: {count}", reason.code());
        }
    }
    if unchanged {
        let _ = writeln!(human, "  unchanged since the last export: nothing sent");
    } else if result.files.is_empty() {
        let _ = writeln!(human, "  nothing to send: no file written");
    }
    for line in delivered {
        let _ = writeln!(human, "{line}");
    }
    Ok(Exported {
        audience,
        json,
        human,
        unchanged,
    })
}
