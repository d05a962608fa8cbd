//! `audlink remote check`: the platform's answer → text. Nothing here prints a credential.

use std::fmt::Write as _;

use super::{Context, Failure, print};
use crate::app::remote;

/// `audlink remote check`.
pub(super) fn check(ctx: &mut Context<'_>) -> Result<(), Failure> {
    let config = ctx.config()?;
    let platform = remote::connect(&ctx.cli.config, &config)?;
    let checked = remote::check(&platform, &config)?;
    let mut human = format!(
        "token ok; {} data sources visible to the organization\n",
        checked.platform_datasources
    );
    for ds in &checked.datasources {
        let _ = writeln!(
            human,
            "  {}\tdpid {}\t{}",
            ds.name,
            ds.dpid,
            match &ds.platform_name {
                Some(name) if ds.found => format!("found: {name:?}"),
                _ => "missing".to_owned(),
            }
        );
    }
    if checked.datasources.is_empty() {
        let _ = writeln!(human, "  audlink.toml defines no data source");
    }
    print(ctx, &checked, &human)
}
