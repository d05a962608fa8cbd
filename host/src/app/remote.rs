//! The platform: `audlink remote check` and the platform half of an export (`audience export
//! --remote`, export jobs with `remote`).
//!
//! Both read `[remote]` and the credentials first (a missing or unsafe credential is a
//! configuration error, exit 2, before anything else happens), then drive the async
//! [`Client`] on a single-threaded tokio runtime of their own. Nothing here prints a credential:
//! the output names the organization, the data sources and the trait and segment ids only.

use std::path::Path;
use std::sync::Arc;

use audlink_core::datasource::DataSource;
use serde::{Deserialize, Serialize};

use super::AppError;
use super::answer::{RemoteAudience, RemoteObject};
use crate::config::{Config, RemoteConfig};
use crate::remote::aam::{self, SegmentSpec, TraitSpec};
use crate::remote::clock::SystemClock;
use crate::remote::{Client, credentials};

/// A connected client (no request made yet) and the runtime that drives it.
#[derive(Debug)]
pub struct Remote {
    client: Client,
    runtime: tokio::runtime::Runtime,
    config: RemoteConfig,
}

/// Reads the credentials and builds the client for `config`'s `[remote]` table
/// (`config_path`: the configuration file, which a relative credentials file is beside).
pub fn connect(config_path: &Path, config: &Config) -> Result<Remote, AppError> {
    let remote = config.remote.clone();
    let file = remote
        .credentials_file
        .as_deref()
        .map(|f| credentials::resolve(config_path, f));
    let credentials = credentials::from_env(file.as_deref(), remote.org_id.as_deref())
        .map_err(|e| AppError::Usage(e.0))?;
    let client = Client::new(remote.settings(), credentials, Arc::new(SystemClock))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::Job(format!("async runtime: {e}")))?;
    Ok(Remote {
        client,
        runtime,
        config: remote,
    })
}

/// The trait and segment folders an export needs (exit 2 naming the key when missing).
pub fn folders(remote: &Remote) -> Result<(u64, u64), AppError> {
    let need = |value: Option<u64>, key: &str| {
        value.ok_or_else(|| {
            AppError::Usage(format!(
                "--remote needs [remote] {key} in audlink.toml (the Audience Manager folder id)"
            ))
        })
    };
    Ok((
        need(remote.config.trait_folder_id, "trait_folder_id")?,
        need(remote.config.segment_folder_id, "segment_folder_id")?,
    ))
}

/// One configured data source as the platform sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSourceSeen {
    /// Its name in the configuration.
    pub name: String,
    /// Its data source id.
    pub dpid: u64,
    /// Whether the platform has it.
    pub found: bool,
    /// The platform's name for it.
    pub platform_name: Option<String>,
}

/// `audlink remote check --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteCheck {
    /// The token endpoint.
    pub ims_url: String,
    /// The Audience Manager API.
    pub aam_url: String,
    /// `ok`: a token was issued.
    pub token: String,
    /// Data sources the organization sees.
    pub platform_datasources: usize,
    /// The configured data sources.
    pub datasources: Vec<DataSourceSeen>,
    /// Configured data sources the platform lacks.
    pub missing: usize,
}

/// Gets a token and looks up every configured data source on the platform.
pub fn check(remote: &Remote, config: &Config) -> Result<RemoteCheck, AppError> {
    let platform = remote.runtime.block_on(async {
        remote.client.token().await?;
        remote.client.datasources().await
    })?;
    let datasources: Vec<DataSourceSeen> = config
        .datasources
        .iter()
        .map(|ds| {
            let found = platform.iter().find(|p| p.data_source_id == ds.dpid);
            DataSourceSeen {
                name: ds.name.clone(),
                dpid: ds.dpid,
                found: found.is_some(),
                platform_name: found.map(|p| p.name.clone()),
            }
        })
        .collect();
    Ok(RemoteCheck {
        ims_url: remote.config.ims_url.clone(),
        aam_url: remote.config.aam_url.clone(),
        token: "ok".to_owned(),
        platform_datasources: platform.len(),
        missing: datasources.iter().filter(|d| !d.found).count(),
        datasources,
    })
}

/// Finds or creates the onboarded trait and the segment of `audience`.
pub fn ensure_audience(
    remote: &Remote,
    audience: &str,
    data_source: &DataSource,
    trait_id: u64,
) -> Result<RemoteAudience, AppError> {
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
    Ok(RemoteAudience {
        trait_: RemoteObject {
            sid: trait_made.sid,
            created: trait_made.created,
            folder_id: trait_folder,
            rule: None,
        },
        segment: RemoteObject {
            sid: segment_made.sid,
            created: segment_made.created,
            folder_id: segment_folder,
            rule: Some(aam::trait_rule_of(trait_made.sid)),
        },
        trait_matches_files: trait_made.sid == trait_id,
    })
}
