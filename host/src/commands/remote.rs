//! `audlink remote check` and the platform half of `audlink audience export --remote`.
//!
//! Both read `[remote]` and the credentials first (a missing or unsafe credential is a
//! configuration error, exit 2, before anything else happens), then drive the async
//! [`Client`] on a single-threaded tokio runtime of their own. Nothing here prints a credential:
//! the output names the organization, the data sources and the trait and segment ids only.

use std::fmt::Write as _;
use std::sync::Arc;

use audlink_core::datasource::DataSource;
use serde_json::{Value, json};

use super::{Context, Failure, print};
use crate::config::{Config, RemoteConfig};
use crate::remote::aam::{self, SegmentSpec, TraitSpec};
use crate::remote::clock::SystemClock;
use crate::remote::{Client, credentials};

/// A connected client (no request made yet) and the runtime that drives it.
#[derive(Debug)]
pub(super) struct Remote {
    client: Client,
    runtime: tokio::runtime::Runtime,
    config: RemoteConfig,
}

/// Reads the credentials and builds the client for `config`'s `[remote]` table.
pub(super) fn connect(ctx: &Context<'_>, config: &Config) -> Result<Remote, Failure> {
    let remote = config.remote.clone();
    let file = remote
        .credentials_file
        .as_deref()
        .map(|f| credentials::resolve(&ctx.cli.config, f));
    let credentials = credentials::from_env(file.as_deref(), remote.org_id.as_deref())
        .map_err(|e| Failure::usage(e.0))?;
    let client = Client::new(remote.settings(), credentials, Arc::new(SystemClock))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::job(format!("async runtime: {e}")))?;
    Ok(Remote {
        client,
        runtime,
        config: remote,
    })
}

/// The trait and segment folders an export needs (exit 2 naming the key when missing).
pub(super) fn folders(remote: &Remote) -> Result<(u64, u64), Failure> {
    let need = |value: Option<u64>, key: &str| {
        value.ok_or_else(|| {
            Failure::usage(format!(
                "--remote needs [remote] {key} in audlink.toml (the Audience Manager folder id)"
            ))
        })
    };
    Ok((
        need(remote.config.trait_folder_id, "trait_folder_id")?,
        need(remote.config.segment_folder_id, "segment_folder_id")?,
    ))
}

/// `audlink remote check`.
pub(super) fn check(ctx: &mut Context<'_>) -> Result<(), Failure> {
    let config = ctx.config()?;
    let remote = connect(ctx, &config)?;
    let platform = remote.runtime.block_on(async {
        remote.client.token().await?;
        remote.client.datasources().await
    })?;
    let mut human = format!(
        "token ok; {} data sources visible to the organization\n",
        platform.len()
    );
    let mut rows = Vec::new();
    let mut missing = 0;
    for ds in &config.datasources {
        let found = platform.iter().find(|p| p.data_source_id == ds.dpid);
        if found.is_none() {
            missing += 1;
        }
        let _ = writeln!(
            human,
            "  {}\tdpid {}\t{}",
            ds.name,
            ds.dpid,
            match found {
                Some(p) => format!("found: {:?}", p.name),
                None => "missing".to_owned(),
            }
        );
        rows.push(json!({
            "name": ds.name,
            "dpid": ds.dpid,
            "found": found.is_some(),
            "platform_name": found.map(|p| p.name.clone()),
        }));
    }
    if config.datasources.is_empty() {
        let _ = writeln!(human, "  audlink.toml defines no data source");
    }
    let json = json!({
        "ims_url": remote.config.ims_url,
        "aam_url": remote.config.aam_url,
        "token": "ok",
        "platform_datasources": platform.len(),
        "datasources": rows,
        "missing": missing,
    });
    print(ctx, &json, &human)
}

/// Finds or creates the onboarded trait and the segment of `audience`; their ids as JSON and
/// as lines for the human output.
pub(super) fn ensure_audience(
    remote: &Remote,
    audience: &str,
    data_source: &DataSource,
    trait_id: u64,
) -> Result<(Value, String), Failure> {
    let (trait_folder, segment_folder) = folders(remote)?;
    let trait_spec = TraitSpec {
        name: audience.to_owned(),
        data_source_id: data_source.dpid,
        folder_id: trait_folder,
        trait_rule: format!("d_sid == {trait_id}"),
        ttl: remote.config.trait_ttl,
    };
    let (trait_made, segment_made) = remote.runtime.block_on(async {
        let trait_made = remote.client.ensure_trait(&trait_spec).await?;
        let segment = SegmentSpec {
            name: audience.to_owned(),
            data_source_id: data_source.dpid,
            folder_id: segment_folder,
            segment_rule: aam::trait_rule_of(trait_made.sid),
        };
        let segment_made = remote.client.ensure_segment(&segment).await?;
        Ok::<_, crate::remote::RemoteError>((trait_made, segment_made))
    })?;
    let state = |created: bool| if created { "created" } else { "found" };
    let matches = trait_made.sid == trait_id;
    let mut human = format!(
        "  trait {} ({}), segment {} ({}) on the platform\n",
        trait_made.sid,
        state(trait_made.created),
        segment_made.sid,
        state(segment_made.created)
    );
    if !matches {
        let _ = writeln!(
            human,
            "  note: the files carry d_sid={trait_id}; export with --trait-id {} so that they feed the platform's trait",
            trait_made.sid
        );
    }
    let json = json!({
        "trait": {"sid": trait_made.sid, "created": trait_made.created, "folder_id": trait_folder},
        "segment": {"sid": segment_made.sid, "created": segment_made.created, "folder_id": segment_folder, "rule": aam::trait_rule_of(trait_made.sid)},
        "trait_matches_files": matches,
    });
    Ok((json, human))
}
