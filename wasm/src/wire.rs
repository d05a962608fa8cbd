//! The ABI's request and response forms, and [`handle`]: request bytes in, response bytes out.
//!
//! A request carries a list of [`Op`]s run in order on a fresh [`Workspace`] (load the tables,
//! then import, export or preview); the response carries one JSON result per op, with bulk
//! columns (list members, files, snapshots) as blobs the JSON points at (`{"blob": 2}`). The
//! guest's `audlink_call` is [`handle`] and nothing else, and the host decodes responses with
//! [`decode`] and [`Decoded::import`] / [`Decoded::export`] back into the core's own types — so
//! a request can be run natively and in the sandbox and the two answers compared byte for byte.

pub mod envelope;
pub mod packed;
pub mod table;

use audlink_core::export::{
    ExportReport, ExportResult, NotExported, NotExportedReason, RenderedFile, Snapshot,
};
use audlink_core::format::links::VisitorLink;
use audlink_core::format::recipients::PartSpec;
use audlink_core::id::IdReason;
use audlink_core::import::{ImportReport, ImportResult, ListChange};
use audlink_core::recipients::{RecipientKey, RecipientsTable};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::dispatch::{
    DispatchError, ErrorKind, ExportSpec, ImportFileSpec, ImportSpec, LoadOptions, PreviewSpec,
    SqlSpec, Workspace, rule_sql,
};
use envelope::{ABI_VERSION, STATUS_ERROR, STATUS_OK};

use packed::PackedError;

/// The JSON of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestJson {
    /// The ABI version the caller speaks (must equal the guest's).
    pub abi: u32,
    /// What to do, in order.
    pub ops: Vec<Op>,
}

/// An audience file of an import op: how to read it, and which payload holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// Name and format.
    pub file: ImportFileSpec,
    /// Index of the payload holding its bytes.
    pub payload: usize,
}

/// One operation of a request. Payloads are referred to by index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Read a recipients CSV → a load summary.
    LoadRecipients {
        /// File name (for errors).
        name: String,
        /// Payload with the file's bytes.
        payload: usize,
        /// Reading options.
        #[serde(default)]
        options: LoadOptions,
        /// Read the payload as one part of a large file (the summary gets an `extent`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        part: Option<PartSpec>,
    },
    /// Read a visitor links CSV → a load summary.
    LoadLinks {
        /// File name (for errors).
        name: String,
        /// Payload with the file's bytes.
        payload: usize,
        /// Reading options.
        #[serde(default)]
        options: LoadOptions,
    },
    /// Set the recipients table from a packed table → `{"rows"}`.
    SetRecipients {
        /// Payload with the packed table.
        payload: usize,
    },
    /// Set the visitor links from packed links → `{"links"}`.
    SetLinks {
        /// Payload with the packed links.
        payload: usize,
    },
    /// The loaded recipients as a packed table → `{"rows", "table": blob}`.
    GetRecipients,
    /// The loaded visitor links as packed links → `{"links", "packed": blob}`.
    GetLinks,
    /// The line of each row of recipients loaded as a part → `{"rows", "lines": blob}` (u64
    /// little-endian each).
    GetRecipientLines,
    /// Set a list's current members (packed keys) → `{"list", "members"}`.
    SetList {
        /// The list's name.
        name: String,
        /// Payload with the packed keys.
        payload: usize,
    },
    /// Import audience files → report, list changes (packed keys), last applied.
    Import {
        /// Data source, options, last applied.
        spec: ImportSpec,
        /// The files.
        files: Vec<FileRef>,
    },
    /// Export a list or rule selection → report, files, snapshot, not exported.
    Export {
        /// What to export and how.
        spec: ExportSpec,
        /// Payload with the previous snapshot (identifiers one per line); none: empty.
        #[serde(default)]
        snapshot: Option<usize>,
    },
    /// Count, sample and break down what a rule selects.
    PreviewRule {
        /// The rule and what to show.
        spec: PreviewSpec,
    },
    /// Compile a rule to SQL for the host's database.
    RuleSql {
        /// The rule, schema and dialect.
        spec: SqlSpec,
    },
}

/// Collects the blobs of a response while its JSON is built.
#[derive(Debug, Default)]
struct Blobs(Vec<Vec<u8>>);

impl Blobs {
    fn push(&mut self, blob: Vec<u8>) -> Value {
        self.0.push(blob);
        json!({ "blob": self.0.len() - 1 })
    }
}

fn abi_error(message: impl Into<String>) -> DispatchError {
    DispatchError::new(ErrorKind::Abi, message)
}

impl From<PackedError> for DispatchError {
    fn from(error: PackedError) -> DispatchError {
        abi_error(error.to_string())
    }
}

fn payload(payloads: &[Option<Vec<u8>>], index: usize) -> Result<&[u8], DispatchError> {
    match payloads.get(index) {
        Some(Some(bytes)) => Ok(bytes),
        // Freed after its last use, so only an op the check below missed could get here.
        Some(None) => Err(abi_error(format!("payload {index} was already consumed"))),
        None => Err(abi_error(format!(
            "payload {index} does not exist (the request has {})",
            payloads.len()
        ))),
    }
}

impl Op {
    /// The payloads this op reads.
    fn payloads(&self) -> Vec<usize> {
        match self {
            Op::LoadRecipients { payload, .. }
            | Op::LoadLinks { payload, .. }
            | Op::SetList { payload, .. }
            | Op::SetRecipients { payload }
            | Op::SetLinks { payload } => vec![*payload],
            Op::Import { files, .. } => files.iter().map(|f| f.payload).collect(),
            Op::Export { snapshot, .. } => snapshot.iter().copied().collect(),
            Op::PreviewRule { .. }
            | Op::RuleSql { .. }
            | Op::GetRecipients
            | Op::GetLinks
            | Op::GetRecipientLines => Vec::new(),
        }
    }
}

fn to_value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("results serialize")
}

/// Runs one op on `workspace`, returning its JSON result.
fn run_op(
    workspace: &mut Workspace,
    op: &Op,
    payloads: &[Option<Vec<u8>>],
    blobs: &mut Blobs,
) -> Result<Value, DispatchError> {
    Ok(match op {
        Op::LoadRecipients {
            name,
            payload: p,
            options,
            part,
        } => {
            let bytes = payload(payloads, *p)?;
            to_value(&match part {
                Some(part) => workspace.load_recipients_part(name, bytes, *options, part)?,
                None => workspace.load_recipients(name, bytes, *options)?,
            })
        }
        Op::LoadLinks {
            name,
            payload: p,
            options,
        } => to_value(&workspace.load_links(name, payload(payloads, *p)?, *options)?),
        Op::SetRecipients { payload: p } => {
            let table = table::decode_table(payload(payloads, *p)?)?;
            let rows = table.len();
            workspace.set_recipients(table);
            json!({ "rows": rows })
        }
        Op::SetLinks { payload: p } => {
            let links = table::decode_links(payload(payloads, *p)?)?;
            let count = links.len();
            workspace.set_links(links);
            json!({ "links": count })
        }
        Op::GetRecipients => {
            let loaded = workspace.recipients().ok_or_else(|| {
                DispatchError::new(ErrorKind::Request, "no recipients are loaded")
            })?;
            json!({ "rows": loaded.len(), "table": blobs.push(table::encode_table(loaded)) })
        }
        Op::GetRecipientLines => {
            let lines = workspace.recipient_lines();
            let packed: Vec<u8> = lines.iter().flat_map(|l| l.to_le_bytes()).collect();
            json!({ "rows": lines.len(), "lines": blobs.push(packed) })
        }
        Op::GetLinks => {
            let links = workspace.links();
            json!({ "links": links.len(), "packed": blobs.push(table::encode_links(&links)) })
        }
        Op::SetList { name, payload: p } => {
            let members = packed::decode_keys(payload(payloads, *p)?)?;
            let count = members.len();
            workspace.set_list(name, members);
            json!({ "list": name, "members": count })
        }
        Op::Import { spec, files } => {
            let files = files
                .iter()
                .map(|f| Ok((f.file.clone(), payload(payloads, f.payload)?)))
                .collect::<Result<Vec<_>, DispatchError>>()?;
            encode_import(workspace.import(spec, &files)?, blobs)
        }
        Op::Export { spec, snapshot } => {
            let previous = match snapshot {
                Some(p) => Snapshot::new(packed::decode_lines(payload(payloads, *p)?)?),
                None => Snapshot::default(),
            };
            encode_export(workspace.export(spec, &previous)?, blobs)
        }
        Op::PreviewRule { spec } => to_value(&workspace.preview_rule(spec)?),
        Op::RuleSql { spec } => to_value(&rule_sql(spec)?),
    })
}

fn encode_import(mut result: ImportResult, blobs: &mut Blobs) -> Value {
    // One JSON object per unmatched identifier would cost more than the import itself.
    let unmatched = std::mem::take(&mut result.report.unmatched);
    let lists: Vec<Value> = result
        .lists
        .into_iter()
        .map(|change| {
            json!({
                "list": change.list,
                "replaced": change.replaced,
                "members": change.members,
                "added": blobs.push(packed::encode_key_list(&change.added)),
                "removed": blobs.push(packed::encode_key_list(&change.removed)),
            })
        })
        .collect();
    json!({
        "report": to_value(&result.report),
        "unmatched": blobs.push(packed::encode_unmatched(&unmatched)),
        "last_applied": result.last_applied,
        "lists": lists,
    })
}

fn encode_export(result: ExportResult, blobs: &mut Blobs) -> Value {
    let files: Vec<Value> = result
        .files
        .into_iter()
        .map(|file| json!({ "name": file.name, "lines": file.lines, "bytes": blobs.push(file.bytes) }))
        .collect();
    let recipients: Vec<RecipientKey> = result
        .not_exported
        .iter()
        .map(|n| n.recipient.clone())
        .collect();
    let reasons: Vec<String> = result
        .not_exported
        .iter()
        .map(|n| match n.key_error {
            Some(why) => format!("{}\t{}", n.reason.code(), why.code()),
            None => n.reason.code().to_owned(),
        })
        .collect();
    json!({
        "report": to_value(&result.report),
        "files": files,
        "snapshot": blobs.push(packed::encode_lines(result.snapshot.identifiers())),
        "not_exported": {
            "recipients": blobs.push(packed::encode_keys(&recipients)),
            "reasons": blobs.push(packed::encode_lines(&reasons)),
        },
    })
}

/// Runs a request's ops on a fresh workspace: response bytes, never a panic for bad input.
///
/// `version` is the ABI version of the request's header, `json` its JSON and `payloads` its
/// payload buffers, which are dropped as soon as the last op that reads them is done. The
/// response JSON is `{"results": [..]}` with one result per op, or `{"error": {..}, "op": i}`
/// ([`DispatchError`]) when op `i` failed (earlier results are dropped: a request succeeds or
/// fails as a whole).
pub fn handle(version: u32, json: &[u8], payloads: Vec<Vec<u8>>) -> Vec<u8> {
    let mut blobs = Blobs::default();
    match run(version, json, payloads, &mut blobs) {
        Ok(results) => {
            let json = serde_json::to_vec(&json!({ "results": results })).expect("json");
            envelope::encode_response(STATUS_OK, &json, &blobs.0)
        }
        Err((op, error)) => error_response(op, &error),
    }
}

/// Runs a request given as its head (`wasm/ABI.md`); `take_payloads` turns the head's
/// `(address, length)` table into the payload buffers (the module's exports do this with the
/// buffers `audlink_alloc` made; nothing else here touches raw memory).
pub fn handle_head(
    head: &[u8],
    take_payloads: impl FnOnce(&[(u32, u32)]) -> Vec<Vec<u8>>,
) -> Vec<u8> {
    match envelope::decode_request_head(head) {
        Ok(head) => {
            let payloads = take_payloads(&head.payloads);
            handle(head.version, head.json, payloads)
        }
        Err(error) => error_response(None, &error.into()),
    }
}

fn error_response(op: Option<usize>, error: &DispatchError) -> Vec<u8> {
    let mut body = json!({ "error": to_value(error) });
    if let Some(op) = op {
        body["op"] = json!(op);
    }
    let json = serde_json::to_vec(&body).expect("json");
    envelope::encode_response(STATUS_ERROR, &json, &[])
}

type Failure = (Option<usize>, Box<DispatchError>);

fn run(
    version: u32,
    json: &[u8],
    payloads: Vec<Vec<u8>>,
    blobs: &mut Blobs,
) -> Result<Vec<Value>, Failure> {
    if version != ABI_VERSION {
        return Err((
            None,
            Box::new(abi_error(format!(
                "the request speaks ABI version {version}, this module {ABI_VERSION}"
            ))),
        ));
    }
    let json: RequestJson = serde_json::from_slice(json)
        .map_err(|e| (None, Box::new(abi_error(format!("request JSON: {e}")))))?;
    if json.abi != ABI_VERSION {
        return Err((
            None,
            Box::new(abi_error(format!(
                "the request JSON says ABI version {}, this module speaks {ABI_VERSION}",
                json.abi
            ))),
        ));
    }
    // The op after which each payload is no longer needed.
    let mut last_use: Vec<Option<usize>> = vec![None; payloads.len()];
    for (i, op) in json.ops.iter().enumerate() {
        for p in op.payloads() {
            if let Some(slot) = last_use.get_mut(p) {
                *slot = Some(i);
            }
        }
    }
    let mut payloads: Vec<Option<Vec<u8>>> = payloads
        .into_iter()
        .zip(&last_use)
        .map(|(bytes, last)| last.map(|_| bytes))
        .collect();
    let mut workspace = Workspace::new();
    let mut results = Vec::with_capacity(json.ops.len());
    for (i, op) in json.ops.iter().enumerate() {
        let result =
            run_op(&mut workspace, op, &payloads, blobs).map_err(|e| (Some(i), Box::new(e)))?;
        results.push(result);
        for (slot, last) in payloads.iter_mut().zip(&last_use) {
            if *last == Some(i) {
                *slot = None;
            }
        }
    }
    Ok(results)
}

/// A decoded response: the per-op results, or the error.
#[derive(Debug)]
pub struct Decoded {
    /// One JSON result per op.
    pub results: Vec<Value>,
    /// The blobs the results point at.
    pub blobs: Vec<Vec<u8>>,
}

/// Why a response is not a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The guest reported an error (op index, when an op failed).
    #[error("{error}")]
    Failed {
        /// The failing op, when the request itself was readable.
        op: Option<usize>,
        /// What went wrong.
        error: Box<DispatchError>,
    },
    /// The response bytes do not follow the ABI.
    #[error("malformed response: {0}")]
    Malformed(String),
}

fn malformed(detail: impl std::fmt::Display) -> ResponseError {
    ResponseError::Malformed(detail.to_string())
}

/// Reads response bytes.
pub fn decode(response: &[u8]) -> Result<Decoded, ResponseError> {
    let response = envelope::decode_response(response).map_err(malformed)?;
    let mut body: Value = serde_json::from_slice(&response.json).map_err(malformed)?;
    if response.status == STATUS_ERROR {
        let error: Box<DispatchError> =
            serde_json::from_value(body["error"].take()).map_err(malformed)?;
        let op = body["op"].as_u64().map(|i| i as usize);
        return Err(ResponseError::Failed { op, error });
    }
    let Value::Array(results) = body["results"].take() else {
        return Err(malformed("no results"));
    };
    Ok(Decoded {
        results,
        blobs: response.blobs,
    })
}

impl Decoded {
    fn blob(&self, reference: &Value) -> Result<&[u8], ResponseError> {
        let index = reference["blob"]
            .as_u64()
            .ok_or_else(|| malformed("a blob reference without an index"))?;
        self.blobs
            .get(index as usize)
            .map(Vec::as_slice)
            .ok_or_else(|| malformed(format!("blob {index} does not exist")))
    }

    fn result(&self, op: usize) -> Result<&Value, ResponseError> {
        self.results
            .get(op)
            .ok_or_else(|| malformed(format!("no result for op {op}")))
    }

    fn keys(&self, reference: &Value) -> Result<Vec<RecipientKey>, ResponseError> {
        packed::decode_keys(self.blob(reference)?).map_err(malformed)
    }

    fn lines(&self, reference: &Value) -> Result<Vec<String>, ResponseError> {
        packed::decode_lines(self.blob(reference)?).map_err(malformed)
    }

    /// The result of op `op` as a typed value (load summaries, previews, compiled rules).
    pub fn typed<T: serde::de::DeserializeOwned>(&self, op: usize) -> Result<T, ResponseError> {
        serde_json::from_value(self.result(op)?.clone()).map_err(malformed)
    }

    /// The table of a `get_recipients` op.
    pub fn recipients(&self, op: usize) -> Result<RecipientsTable, ResponseError> {
        table::decode_table(self.blob(&self.result(op)?["table"])?).map_err(malformed)
    }

    /// The lines of a `get_recipient_lines` op.
    pub fn recipient_lines(&self, op: usize) -> Result<Vec<u64>, ResponseError> {
        let blob = self.blob(&self.result(op)?["lines"])?;
        if blob.len() % 8 != 0 {
            return Err(malformed("recipient lines are not whole u64s"));
        }
        Ok(blob
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect())
    }

    /// The links of a `get_links` op.
    pub fn links(&self, op: usize) -> Result<Vec<VisitorLink>, ResponseError> {
        table::decode_links(self.blob(&self.result(op)?["packed"])?).map_err(malformed)
    }

    /// The result of import op `op`, as the core returns it.
    pub fn import(&self, op: usize) -> Result<ImportResult, ResponseError> {
        let value = self.result(op)?;
        let mut report: ImportReport =
            serde_json::from_value(value["report"].clone()).map_err(malformed)?;
        report.unmatched =
            packed::decode_unmatched(self.blob(&value["unmatched"])?).map_err(malformed)?;
        let last_applied =
            serde_json::from_value(value["last_applied"].clone()).map_err(malformed)?;
        let lists = value["lists"]
            .as_array()
            .ok_or_else(|| malformed("import without lists"))?
            .iter()
            .map(|list| {
                Ok(ListChange {
                    list: list["list"]
                        .as_str()
                        .ok_or_else(|| malformed("list name"))?
                        .to_owned(),
                    replaced: list["replaced"]
                        .as_bool()
                        .ok_or_else(|| malformed("replaced"))?,
                    added: self.keys(&list["added"])?.into(),
                    removed: self.keys(&list["removed"])?.into(),
                    members: list["members"]
                        .as_u64()
                        .ok_or_else(|| malformed("members"))?,
                })
            })
            .collect::<Result<_, ResponseError>>()?;
        Ok(ImportResult {
            lists,
            last_applied,
            report,
        })
    }

    /// The result of export op `op`, as the core returns it.
    pub fn export(&self, op: usize) -> Result<ExportResult, ResponseError> {
        let value = self.result(op)?;
        let report: ExportReport =
            serde_json::from_value(value["report"].clone()).map_err(malformed)?;
        let files = value["files"]
            .as_array()
            .ok_or_else(|| malformed("export without files"))?
            .iter()
            .map(|file| {
                Ok(RenderedFile {
                    name: file["name"]
                        .as_str()
                        .ok_or_else(|| malformed("file name"))?
                        .to_owned(),
                    bytes: self.blob(&file["bytes"])?.to_vec(),
                    lines: file["lines"]
                        .as_u64()
                        .ok_or_else(|| malformed("file lines"))?,
                })
            })
            .collect::<Result<_, ResponseError>>()?;
        let recipients = self.keys(&value["not_exported"]["recipients"])?;
        let reasons = self.lines(&value["not_exported"]["reasons"])?;
        if recipients.len() != reasons.len() {
            return Err(malformed(
                "not exported: as many reasons as recipients expected",
            ));
        }
        let not_exported = recipients
            .into_iter()
            .zip(reasons)
            .map(|(recipient, line)| {
                let (reason, key_error) = match line.split_once('\t') {
                    Some((reason, why)) => (reason.to_owned(), Some(why.to_owned())),
                    None => (line, None),
                };
                Ok(NotExported {
                    recipient,
                    reason: serde_json::from_value::<NotExportedReason>(Value::String(reason))
                        .map_err(malformed)?,
                    key_error: key_error
                        .map(|why| serde_json::from_value::<IdReason>(Value::String(why)))
                        .transpose()
                        .map_err(malformed)?,
                })
            })
            .collect::<Result<_, ResponseError>>()?;
        Ok(ExportResult {
            files,
            not_exported,
            snapshot: Snapshot::new(self.lines(&value["snapshot"])?),
            report,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of `wasm/ABI.md`, byte for byte.
    #[test]
    fn the_worked_example_of_abi_md() {
        let links = b"recipient_id,visitor_id\n7,12345678901234567890123456789012345678\n";
        let outbound = b"12345678901234567890123456789012345678 55\n";
        assert_eq!((links.len(), outbound.len()), (65, 42));
        let json = br#"{"abi":1,"ops":[{"op":"load_links","name":"links.csv","payload":0},{"op":"import","spec":{"data_source":{"name":"ecid","dpid":21,"kind":"visitor-id"}},"files":[{"file":{"name":"S3_1_iter_1700000000000.sync","format":{"format":"outbound"}},"payload":1}]}]}"#;
        // The head as ABI.md lays it out, with the payloads at 0x10000 and 0x20000.
        let head = envelope::encode_request_head(json, &[(0x10000, 65), (0x20000, 42)]);
        let at = 16 + json.len();
        assert_eq!(json.len(), 255);
        assert_eq!(&head[..16], b"ALNQ\x01\0\0\0\xff\0\0\0\x02\0\0\0");
        assert_eq!(
            &head[at..],
            &[0, 0, 1, 0, 0x41, 0, 0, 0, 0, 0, 2, 0, 0x2a, 0, 0, 0]
        );
        let response = handle_head(&head, |table| {
            assert_eq!(table, [(0x10000, 65), (0x20000, 42)]);
            vec![links.to_vec(), outbound.to_vec()]
        });
        assert_eq!(&response[..12], b"ALNR\x01\0\0\0\0\0\0\0");
        let decoded = decode(&response).unwrap();
        assert_eq!(decoded.results[0]["rows"], 1);
        let import = &decoded.results[1];
        assert_eq!(import["last_applied"], json!({"55": 1_700_000_000_000i64}));
        assert_eq!(
            import["lists"],
            json!([{"list": "segment-55", "replaced": false, "members": 1,
                    "added": {"blob": 0}, "removed": {"blob": 1}}])
        );
        assert_eq!(
            decoded.blobs[0],
            [1, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(decoded.blobs[1], [1, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn a_failing_op_fails_the_request_and_names_the_op() {
        let json = br#"{"abi":1,"ops":[{"op":"set_list","name":"a","payload":0},{"op":"export","spec":{"data_source":{"name":"ecid","dpid":21,"kind":"visitor-id"},"members":{"list":"b"},"trait_id":1,"mode":"sync","timestamp":1}}]}"#;
        let keys = packed::encode_keys(&[RecipientKey::Int(1)]);
        let response = handle(ABI_VERSION, json, vec![keys]);
        match decode(&response) {
            Err(ResponseError::Failed { op, error }) => {
                assert_eq!(op, Some(1));
                assert_eq!(error.kind, ErrorKind::Request);
                assert!(error.message.contains("no list \"b\""), "{}", error.message);
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        match decode(&handle(ABI_VERSION, br#"{"abi":2,"ops":[]}"#, Vec::new())) {
            Err(ResponseError::Failed { op: None, error }) => {
                assert_eq!(error.kind, ErrorKind::Abi);
                assert!(error.message.contains("version 2"), "{}", error.message);
            }
            other => panic!("expected an ABI error, got {other:?}"),
        }
        match decode(&handle_head(b"ALNQ\x02\0\0\0\0\0\0\0\0\0\0\0", |_| {
            Vec::new()
        })) {
            Err(ResponseError::Failed { op: None, error }) => {
                assert!(error.message.contains("version 2"), "{}", error.message);
            }
            other => panic!("expected an ABI error, got {other:?}"),
        }
    }

    #[test]
    fn payloads_are_dropped_after_their_last_use_and_unknown_ones_are_errors() {
        let json = br#"{"abi":1,"ops":[{"op":"set_list","name":"a","payload":0},{"op":"set_list","name":"b","payload":1}]}"#;
        let keys = packed::encode_keys(&[RecipientKey::Int(1)]);
        let ok = decode(&handle(ABI_VERSION, json, vec![keys.clone(), keys.clone()])).unwrap();
        assert_eq!(ok.results[1], json!({"list": "b", "members": 1}));
        match decode(&handle(ABI_VERSION, json, vec![keys])) {
            Err(ResponseError::Failed { op, error }) => {
                assert_eq!(op, Some(1));
                assert!(
                    error.message.contains("payload 1 does not exist"),
                    "{}",
                    error.message
                );
            }
            other => panic!("expected a missing payload, got {other:?}"),
        }
    }

    /// Tables handed over packed (as the host does from its database) give the same import as
    /// the CSV files they were read from; and get_* gives back what set_* was given.
    #[test]
    fn packed_tables_import_like_the_files_they_came_from() {
        use audlink_core::sample;
        let visitors = sample::visitor_sample(11, 400);
        let recipients_csv =
            audlink_core::format::recipients::write(&sample::recipients_table(11, 400));
        let import = r#"{"op":"import","spec":{"data_source":{"name":"ecid","dpid":21,"kind":"visitor-id"}},"files":[{"file":{"name":"S3_1_iter_1700000000000.sync","format":{"format":"outbound"}},"payload":2}]}"#;
        let from_files = format!(
            r#"{{"abi":1,"ops":[{{"op":"load_recipients","name":"r.csv","payload":0}},{{"op":"load_links","name":"l.csv","payload":1}},{import},{{"op":"get_recipients"}},{{"op":"get_links"}}]}}"#
        );
        let files = decode(&handle(
            ABI_VERSION,
            from_files.as_bytes(),
            vec![
                recipients_csv,
                visitors.links_csv,
                visitors.audience.clone(),
            ],
        ))
        .unwrap();
        let table = files.recipients(3).unwrap();
        let links = files.links(4).unwrap();
        assert_eq!(table.len(), 400);
        assert!(links.len() >= 400);
        let from_packed = format!(
            r#"{{"abi":1,"ops":[{{"op":"set_recipients","payload":0}},{{"op":"set_links","payload":1}},{import},{{"op":"get_recipients"}},{{"op":"get_links"}}]}}"#
        );
        let packed = decode(&handle(
            ABI_VERSION,
            from_packed.as_bytes(),
            vec![
                table::encode_table(&table),
                table::encode_links(&links),
                visitors.audience,
            ],
        ))
        .unwrap();
        assert_eq!(packed.import(2).unwrap(), files.import(2).unwrap());
        assert_eq!(packed.recipients(3).unwrap(), table);
        assert_eq!(packed.links(4).unwrap(), links);
    }
}
