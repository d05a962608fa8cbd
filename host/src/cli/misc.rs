//! `audlink init`, `list ls|show`, `segment preview`, `generate`, and the start of `audlink
//! serve`.

use std::fmt::Write as _;

use audlink_core::sample;

use super::args::{GenerateArgs, PreviewArgs, ServeArgs};
use super::{Context, Failure, now_or, print};
use crate::app::answer::{Generated, GeneratedFile, Initialized, RecipientId};
use crate::app::{QUERY_DEADLINE, preview as app_preview};
use crate::config::TEMPLATE;
use crate::plan::PreviewPlan;
use crate::serve::start::ServeSettings;

/// `audlink init`.
pub(super) fn init(ctx: &mut Context<'_>) -> Result<(), Failure> {
    let store = crate::store::create(&ctx.cli.db)?;
    let config = &ctx.cli.config;
    let wrote_config = !config.exists();
    if wrote_config {
        std::fs::write(config, TEMPLATE)
            .map_err(|e| Failure::job(format!("{}: {e}", config.display())))?;
    }
    let json = Initialized {
        db: store.location(),
        schema_version: store.schema_version()?,
        config: config.display().to_string(),
        config_written: wrote_config,
    };
    let human = format!(
        "database {} ready (schema version {}); {} {}\n",
        store.location(),
        store.schema_version()?,
        if wrote_config { "wrote" } else { "kept" },
        config.display()
    );
    print(ctx, &json, &human)
}

/// `audlink list ls`.
pub(super) fn list_ls(ctx: &mut Context<'_>) -> Result<(), Failure> {
    let lists = app_preview::lists(&*ctx.store()?)?;
    let mut human = String::new();
    for l in &lists.lists {
        let _ = writeln!(human, "{}\t{}", l.name, l.members);
    }
    print(ctx, &lists, &human)
}

/// `audlink list show NAME`.
pub(super) fn list_show(ctx: &mut Context<'_>, name: &str) -> Result<(), Failure> {
    let members = app_preview::list_members(&*ctx.store()?, name)?;
    let mut human = String::new();
    for m in &members.members {
        let _ = match m {
            RecipientId::Int(v) => writeln!(human, "{v}"),
            RecipientId::Text(s) => writeln!(human, "{s}"),
        };
    }
    print(ctx, &members, &human)
}

/// `audlink segment preview RULE`.
pub(super) fn preview(ctx: &mut Context<'_>, args: &PreviewArgs) -> Result<(), Failure> {
    let plan = PreviewPlan {
        rule: args.rule.clone(),
        sample: args.sample,
        by: args.by.clone(),
        now: now_or(args.now.as_deref())?,
        deadline: QUERY_DEADLINE,
    };
    let mut store = ctx.store()?;
    let preview = app_preview::preview(ctx.guest()?, &mut *store, &plan)?;
    let mut human = format!(
        "{}\n{} of {} recipients selected\n",
        preview.rule, preview.count, preview.total
    );
    for row in &preview.sample {
        let row = serde_json::to_value(row).expect("rows serialize");
        let _ = writeln!(human, "  {row}");
    }
    if let Some(b) = &preview.breakdown {
        let _ = writeln!(human, "by {}:", b.column);
        for bucket in &b.values {
            let _ = writeln!(human, "  {}\t{}", bucket.value, bucket.count);
        }
        let _ = writeln!(human, "  (other)\t{}\n  (null)\t{}", b.other, b.null);
    }
    print(ctx, &preview, &human)
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
        written.push(GeneratedFile {
            file: path.display().to_string(),
            lines,
        });
    }
    let generated = Generated {
        files: written,
        seed: args.seed,
    };
    print(ctx, &generated, &human)
}

/// `audlink serve`: the server is a front door of its own; the command line starts it.
pub(super) fn serve(ctx: &Context<'_>, args: &ServeArgs) -> Result<(), Failure> {
    let settings = ServeSettings {
        addr: args.addr,
        root: args.root.clone(),
        db: ctx.cli.db.clone(),
        config: ctx.cli.config.clone(),
    };
    Ok(crate::serve::start::run(&settings)?)
}
