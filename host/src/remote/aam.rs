//! The Audience Manager REST subset behind shared audiences: data sources, onboarded traits and
//! the segments built on them.
//!
//! Lists are paged (`page` from 0, `pageSize`); a page is a JSON array or an object holding the
//! array in `list` (with `total`), and listing stops at the first short page. Traits and segments
//! are found by exact name in their folder; [`Client::ensure_trait`] and
//! [`Client::ensure_segment`] create them only when the name is not there. A create is never
//! retried blindly: after a timeout, a dropped connection, a `5xx` or a `429` the name is looked
//! up again (the platform may have created it before failing), and a `409` (someone else created
//! it) is answered by one more look-up. Re-running an export therefore never duplicates a trait
//! or a segment.

use serde::Deserialize;
use serde_json::{Value, json};
use tracing::debug;

use super::RemoteError;
use super::client::{CallError, Client};

/// The data sources endpoint.
pub const DATASOURCES: &str = "/v1/datasources/";
/// The traits endpoint.
pub const TRAITS: &str = "/v1/traits/";
/// The segments endpoint.
pub const SEGMENTS: &str = "/v1/segments/";

/// No listing reads more pages than this (a server that never sends a short page).
const MAX_PAGES: u32 = 10_000;

/// A data source as the platform has it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformDataSource {
    /// The data source id (the DPID).
    pub data_source_id: u64,
    /// Its name.
    #[serde(default)]
    pub name: String,
}

/// A trait as the platform has it (the fields audlink reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformTrait {
    /// The trait's id.
    pub sid: u64,
    /// Its name.
    pub name: String,
    /// Its data source.
    #[serde(default)]
    pub data_source_id: Option<u64>,
    /// Its folder.
    #[serde(default)]
    pub folder_id: Option<u64>,
}

/// A segment as the platform has it (the fields audlink reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformSegment {
    /// The segment's id.
    pub sid: u64,
    /// Its name.
    pub name: String,
    /// Its rule, e.g. `1234T`.
    #[serde(default)]
    pub segment_rule: Option<String>,
    /// Its folder.
    #[serde(default)]
    pub folder_id: Option<u64>,
}

/// The onboarded trait an exported audience feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraitSpec {
    /// The trait's name (the audience's).
    pub name: String,
    /// The data source the identifiers belong to (its DPID).
    pub data_source_id: u64,
    /// The trait folder.
    pub folder_id: u64,
    /// The trait rule.
    pub trait_rule: String,
    /// Days a qualification lasts (0: forever).
    pub ttl: u32,
}

/// The segment built on a trait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSpec {
    /// The segment's name (the audience's).
    pub name: String,
    /// The data source.
    pub data_source_id: u64,
    /// The segment folder.
    pub folder_id: u64,
    /// The segment rule (`<trait sid>T`).
    pub segment_rule: String,
}

/// The segment rule that is exactly trait `sid`.
pub fn trait_rule_of(sid: u64) -> String {
    format!("{sid}T")
}

/// A trait or segment found or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ensured {
    /// Its id.
    pub sid: u64,
    /// Whether this run created it.
    pub created: bool,
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, value: Value) -> Result<T, RemoteError> {
    serde_json::from_value(value)
        .map_err(|e| RemoteError::Failed(format!("{what}: unexpected item in the response ({e})")))
}

impl Client {
    /// Pages through `path` (optionally one folder), handing each item to `found` until it
    /// returns `Some`.
    async fn scan<T>(
        &self,
        path: &str,
        folder: Option<u64>,
        mut found: impl FnMut(Value) -> Result<Option<T>, RemoteError>,
    ) -> Result<Option<T>, RemoteError> {
        let page_size = self.settings().page_size.max(1);
        let mut seen = 0u64;
        for page in 0..MAX_PAGES {
            let mut query = vec![
                ("page", page.to_string()),
                ("pageSize", page_size.to_string()),
            ];
            if let Some(folder) = folder {
                query.push(("folderId", folder.to_string()));
            }
            let (items, total) = match self.get(path, &query).await? {
                Value::Array(items) => (items, None),
                Value::Object(mut map) => match map.remove("list") {
                    Some(Value::Array(items)) => (items, map.get("total").and_then(Value::as_u64)),
                    _ => {
                        return Err(RemoteError::Failed(format!(
                            "GET {path}: page {page} holds no list"
                        )));
                    }
                },
                _ => {
                    return Err(RemoteError::Failed(format!(
                        "GET {path}: page {page} is neither a list nor a page object"
                    )));
                }
            };
            let count = items.len() as u64;
            seen += count;
            for item in items {
                if let Some(hit) = found(item)? {
                    return Ok(Some(hit));
                }
            }
            if count < u64::from(page_size) || total.is_some_and(|t| seen >= t) {
                return Ok(None);
            }
        }
        Err(RemoteError::Failed(format!(
            "GET {path}: more than {MAX_PAGES} pages"
        )))
    }

    /// Every data source the credentials can see.
    pub async fn datasources(&self) -> Result<Vec<PlatformDataSource>, RemoteError> {
        let mut all = Vec::new();
        self.scan::<()>(DATASOURCES, None, |item| {
            all.push(decode(&format!("GET {DATASOURCES}"), item)?);
            Ok(None)
        })
        .await?;
        Ok(all)
    }

    /// The trait called `name` in `folder`.
    pub async fn find_trait(
        &self,
        name: &str,
        folder: u64,
    ) -> Result<Option<PlatformTrait>, RemoteError> {
        self.scan(TRAITS, Some(folder), |item| {
            if item.get("name").and_then(Value::as_str) != Some(name) {
                return Ok(None);
            }
            decode::<PlatformTrait>(&format!("GET {TRAITS}"), item).map(Some)
        })
        .await
    }

    /// The segment called `name` in `folder`.
    pub async fn find_segment(
        &self,
        name: &str,
        folder: u64,
    ) -> Result<Option<PlatformSegment>, RemoteError> {
        self.scan(SEGMENTS, Some(folder), |item| {
            if item.get("name").and_then(Value::as_str) != Some(name) {
                return Ok(None);
            }
            decode::<PlatformSegment>(&format!("GET {SEGMENTS}"), item).map(Some)
        })
        .await
    }

    /// Finds the onboarded trait `spec.name` in its folder, or creates it.
    pub async fn ensure_trait(&self, spec: &TraitSpec) -> Result<Ensured, RemoteError> {
        let body = json!({
            "name": spec.name,
            "description": "shared audience exported by audlink",
            "traitType": "ON_BOARDED_TRAIT",
            "dataSourceId": spec.data_source_id,
            "folderId": spec.folder_id,
            "traitRule": spec.trait_rule,
            "ttl": spec.ttl,
        });
        let found = async || {
            let found = self.find_trait(&spec.name, spec.folder_id).await?;
            if let Some(t) = &found
                && t.data_source_id.is_some_and(|d| d != spec.data_source_id)
            {
                return Err(RemoteError::Failed(format!(
                    "trait {:?} (sid {}) in folder {} belongs to data source {}, not {}",
                    spec.name,
                    t.sid,
                    spec.folder_id,
                    t.data_source_id.unwrap_or_default(),
                    spec.data_source_id
                )));
            }
            Ok(found.map(|t| t.sid))
        };
        self.find_or_create("trait", &spec.name, TRAITS, &body, found)
            .await
    }

    /// Finds the segment `spec.name` in its folder, or creates it.
    pub async fn ensure_segment(&self, spec: &SegmentSpec) -> Result<Ensured, RemoteError> {
        let body = json!({
            "name": spec.name,
            "description": "shared audience exported by audlink",
            "segmentRule": spec.segment_rule,
            "dataSourceId": spec.data_source_id,
            "folderId": spec.folder_id,
        });
        let found = async || {
            let found = self.find_segment(&spec.name, spec.folder_id).await?;
            if let Some(s) = &found
                && let Some(rule) = &s.segment_rule
                && rule.replace(' ', "") != spec.segment_rule
            {
                tracing::warn!(
                    "segment {:?} (sid {}) has the rule {rule:?}, not {:?}; left as it is",
                    spec.name,
                    s.sid,
                    spec.segment_rule
                );
            }
            Ok(found.map(|s| s.sid))
        };
        self.find_or_create("segment", &spec.name, SEGMENTS, &body, found)
            .await
    }

    /// Looks `name` up with `find`; creates it with `body` when missing. Transient failures of
    /// the create are retried — each time after another look-up — within the retry policy.
    async fn find_or_create(
        &self,
        kind: &str,
        name: &str,
        path: &str,
        body: &Value,
        find: impl AsyncFn() -> Result<Option<u64>, RemoteError>,
    ) -> Result<Ensured, RemoteError> {
        let what = format!("POST {path}");
        let mut retries = 0;
        let mut conflicts = 0;
        loop {
            if let Some(sid) = find().await? {
                debug!("{kind} {name:?} exists (sid {sid})");
                return Ok(Ensured {
                    sid,
                    created: false,
                });
            }
            match self.post_once(path, body).await {
                Ok(created) => {
                    let sid = created.get("sid").and_then(Value::as_u64).ok_or_else(|| {
                        RemoteError::Failed(format!("{what}: the response names no sid"))
                    })?;
                    debug!("created {kind} {name:?} (sid {sid})");
                    return Ok(Ensured { sid, created: true });
                }
                Err(CallError::Conflict(message)) if conflicts == 0 => {
                    debug!("{what}: {message}; looking {kind} {name:?} up again");
                    conflicts += 1;
                }
                Err(CallError::Conflict(message)) => {
                    return Err(RemoteError::Failed(format!(
                        "{what}: {message}, yet no {kind} {name:?} is in the folder"
                    )));
                }
                Err(error) => {
                    self.pause(&what, retries, error).await?;
                    retries += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_rules_name_the_trait() {
        assert_eq!(trait_rule_of(1234), "1234T");
    }

    #[test]
    fn platform_items_decode_with_extra_fields() {
        let t: PlatformTrait = decode(
            "t",
            json!({"sid": 5, "name": "vip", "dataSourceId": 21, "folderId": 3, "pid": 9}),
        )
        .unwrap();
        assert_eq!(
            (t.sid, t.data_source_id, t.folder_id),
            (5, Some(21), Some(3))
        );
        let err = decode::<PlatformTrait>("GET /v1/traits/", json!({"name": "x"})).unwrap_err();
        assert!(err.to_string().contains("GET /v1/traits/"), "{err}");
    }
}
