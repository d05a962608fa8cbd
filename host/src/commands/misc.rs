//! `audlink init`, `list ls|show`, `segment preview` and `generate`.

use std::fmt::Write as _;

use audlink_core::format::recipients::RecipientKey;
use audlink_core::rule::preview::Cell;
use audlink_core::sample;
use serde_json::{Value, json};

use std::time::Duration;

use audlink_core::time::Timestamp;

use super::{Context, Failure, QUERY_DEADLINE, StepError, compile_rule, now_or, print};
use crate::cli::{GenerateArgs, PreviewArgs};
use crate::config::TEMPLATE;
use crate::sandbox::Sandbox;
use crate::store::Store;

/// `audlink init`.
pub(super) fn init(ctx: &mut Context<'_>) -> Result<(), Failure> {
    let store = crate::store::create(&ctx.cli.db)?;
    let config = &ctx.cli.config;
    let wrote_config = !config.exists();
    if wrote_config {
        std::fs::write(config, TEMPLATE)
            .map_err(|e| Failure::job(format!("{}: {e}", config.display())))?;
    }
    let json = json!({
        "db": store.location(),
        "schema_version": store.schema_version()?,
        "config": config.display().to_string(),
        "config_written": wrote_config,
    });
    let human = format!(
        "database {} ready (schema version {}); {} {}\n",
        store.location(),
        store.schema_version()?,
        if wrote_config { "wrote" } else { "kept" },
        config.display()
    );
    print(ctx, &json, &human)
}

fn key_json(key: &RecipientKey) -> Value {
    match key {
        RecipientKey::Int(v) => json!(v),
        RecipientKey::String(s) => json!(s),
    }
}

/// The JSON of `audlink list ls` (and `GET /api/lists`).
pub fn lists_json(store: &dyn Store) -> Result<Value, StepError> {
    let lists = store.lists()?;
    Ok(json!({
        "lists": lists.iter().map(|l| json!({"name": l.name, "members": l.members})).collect::<Vec<_>>(),
    }))
}

/// `audlink list ls`.
pub(super) fn list_ls(ctx: &mut Context<'_>) -> Result<(), Failure> {
    let json = lists_json(&*ctx.store()?)?;
    let mut human = String::new();
    for l in json["lists"].as_array().into_iter().flatten() {
        let _ = writeln!(
            human,
            "{}\t{}",
            l["name"].as_str().unwrap_or_default(),
            l["members"]
        );
    }
    print(ctx, &json, &human)
}

/// `audlink list show NAME`.
pub(super) fn list_show(ctx: &mut Context<'_>, name: &str) -> Result<(), Failure> {
    let members = ctx.store()?.list_members(name)?;
    let json = json!({"name": name, "members": members.iter().map(key_json).collect::<Vec<_>>()});
    let mut human = String::new();
    for m in &members {
        let _ = writeln!(human, "{m}");
    }
    print(ctx, &json, &human)
}

fn cell_json(cell: &Cell) -> Value {
    serde_json::to_value(cell).expect("cells serialize")
}

/// What a rule preview asks: `audlink segment preview`'s arguments (and the API's body).
#[derive(Debug, Clone)]
pub struct PreviewQuery<'a> {
    /// The rule's text.
    pub rule: &'a str,
    /// Recipients to show at most.
    pub sample: usize,
    /// A column to break the selection down by.
    pub by: Option<&'a str>,
    /// The value of `now()`.
    pub now: Timestamp,
    /// How long each database query may run.
    pub deadline: Duration,
}

/// The JSON of `audlink segment preview --json` (and `POST /api/rules/preview`): the rule
/// compiled to SQL in `sandbox`, counted, sampled and broken down in the database.
pub fn preview_json(
    sandbox: &Sandbox,
    store: &mut dyn Store,
    query: &PreviewQuery<'_>,
) -> Result<Value, StepError> {
    let compiled = compile_rule(sandbox, store, query.rule, query.now)?;
    let count = store.rule_count(&compiled.clause, query.deadline)?;
    let sample = store.rule_sample(&compiled.clause, query.sample, query.deadline)?;
    let breakdown = match query.by {
        Some(column) => Some(store.rule_breakdown(&compiled.clause, column, 10, query.deadline)?),
        None => None,
    };
    let rows: Vec<Value> = sample
        .rows
        .iter()
        .map(|row| {
            let mut object = serde_json::Map::new();
            object.insert("id".to_owned(), key_json(&row.id));
            for (column, value) in sample.columns.iter().zip(&row.values) {
                object.insert(column.name.clone(), cell_json(value));
            }
            Value::Object(object)
        })
        .collect();
    let breakdown_json = breakdown.as_ref().map(|b| {
        json!({
            "column": b.column,
            "values": b.top.iter().map(|bucket| json!({"value": cell_json(&bucket.value), "count": bucket.count})).collect::<Vec<_>>(),
            "other": b.other,
            "null": b.null,
        })
    });
    Ok(json!({
        "rule": compiled.canonical,
        "count": count.selected,
        "total": count.total,
        "sample": rows,
        "breakdown": breakdown_json,
    }))
}

/// `audlink segment preview RULE`.
pub(super) fn preview(ctx: &mut Context<'_>, args: &PreviewArgs) -> Result<(), Failure> {
    let now = now_or(args.now.as_deref())?;
    let mut store = ctx.store()?;
    let query = PreviewQuery {
        rule: &args.rule,
        sample: args.sample,
        by: args.by.as_deref(),
        now,
        deadline: QUERY_DEADLINE,
    };
    let json = preview_json(ctx.sandbox()?, &mut *store, &query)?;
    let mut human = format!(
        "{}\n{} of {} recipients selected\n",
        json["rule"].as_str().unwrap_or_default(),
        json["count"],
        json["total"]
    );
    for row in json["sample"].as_array().into_iter().flatten() {
        let _ = writeln!(human, "  {row}");
    }
    if let Some(b) = json["breakdown"].as_object() {
        let _ = writeln!(human, "by {}:", b["column"].as_str().unwrap_or_default());
        for bucket in b["values"].as_array().into_iter().flatten() {
            let _ = writeln!(human, "  {}\t{}", bucket["value"], bucket["count"]);
        }
        let _ = writeln!(human, "  (other)\t{}\n  (null)\t{}", b["other"], b["null"]);
    }
    print(ctx, &json, &human)
}

/// The Experience Platform export's name in generated data.
pub const GENERATED_AEP: &str = "Demo_segment77_20260101120000.csv";
/// The outbound file's name in generated data.
pub const GENERATED_OUTBOUND: &str = "S3_1_iter_1767225600000.sync";

/// `audlink generate --out DIR`.
pub(super) fn generate(ctx: &mut Context<'_>, args: &GenerateArgs) -> Result<(), Failure> {
    let data = sample::demo(args.seed, args.recipients);
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Failure::job(format!("{}: {e}", args.out.display())))?;
    let files = [
        ("recipients.csv", &data.recipients_csv),
        ("visitors.csv", &data.links_csv),
        (GENERATED_OUTBOUND, &data.outbound),
        (GENERATED_AEP, &data.aep_export),
    ];
    let mut written = Vec::new();
    let mut human = String::new();
    for (name, bytes) in files {
        let path = args.out.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| Failure::job(format!("{}: {e}", path.display())))?;
        let lines = bytes.iter().filter(|&&b| b == b'\n').count();
        let _ = writeln!(human, "wrote {} ({lines} lines)", path.display());
        written.push(json!({"file": path.display().to_string(), "lines": lines}));
    }
    print(ctx, &json!({"files": written, "seed": args.seed}), &human)
}
