//! The `js` front door: wasm-bindgen bindings over [`dispatch`] for browsers and Node. Every
//! answer comes from [`dispatch::Workspace`] and [`dispatch::rule_sql`]; this module only
//! converts arguments in and results out.
//!
//! # JS API
//!
//! Built by `make js` into `target/js/nodejs/` (`--target nodejs`) and `www/pkg/`
//! (`--target web`), with `audlink_wasm.d.ts` beside it (see [TypeScript](#typescript)).
//!
//! ```js
//! const { Workspace, ruleSql } = require("./target/js/nodejs/audlink_wasm.js");
//! const ws = new Workspace();
//! ws.loadRecipients("recipients.csv", bytes, { strict: false, max_bad: 100 }, (p) => {});
//! ws.loadLinks("links.csv.gz", bytes);
//! ws.setList("vip", ["1", "2", "3"]);
//! const imported = ws.import(spec, [{ name, format: { format: "outbound" }, bytes }]);
//! const exported = ws.export(spec, previousSnapshot);
//! const preview = ws.previewRule({ rule: "age >= 30", now: "2026-01-01T00:00:00Z" });
//! const view = ws.importPreview(spec, files); // lists kept in ws, unmatched paged:
//! const page = ws.unmatchedPage(0, 10, "no_recipient");
//! formatOfName("S3_1_iter_1767225600000.sync"); // "outbound"
//! ```
//!
//! - **Options in** are plain objects with the field names of the serde structs of
//!   [`dispatch`] (`snake_case`: `max_bad`, `data_source`, `trait_id`, …), read with
//!   serde-wasm-bindgen into JSON and from there into the serde structs, so they mean what the
//!   ABI's JSON means: an unknown field is an error, a missing one takes its default. A field
//!   that is `null` or `undefined` counts as missing; `undefined`/`null` options are the
//!   defaults.
//! - **Results out** are plain objects (maps become objects), `null` for absent values.
//! - **Identifiers and recipient keys are strings** both ways: list members (`setList`), a list
//!   change's `added`/`removed`, `not_exported[].recipient`, a preview sample's `id`, the export
//!   `snapshot`. A 38-digit visitor id or an i64 recipient id does not fit a JS number.
//!   `setList` also accepts numbers (safe integers) and makes keys canonical as the core does
//!   (`"5"` is the recipient `5`).
//! - **Other integers** beyond ±(2⁵³−1) — possible only in values taken from the data: an
//!   integer cell of a preview sample or breakdown, an `int` parameter of a compiled rule — come
//!   out as decimal strings rather than rounded numbers. Counts, line numbers and timestamps
//!   are always numbers.
//! - **File bytes** go in as `Uint8Array` and export files come out as
//!   `{name, lines, bytes: Uint8Array}`.
//! - **Errors** are thrown as JS `Error`s: `message` is the [`DispatchError`] message (for rules
//!   the rendered caret excerpt) and the error carries own properties `kind` (`"file"`,
//!   `"rule"`, `"request"`, `"abi"`), and when known `file`, `line`, `column`, `span`
//!   (`{start, end}`, byte offsets in the rule text) and `reason` (a stable code such as
//!   `truncated_gzip`). Arguments that do not convert are `kind: "request"` errors.
//! - **Progress**: `loadRecipients` and `loadLinks` take an optional fourth argument, a function
//!   called with `{phase, done, total}` (bytes). Phase `"copy"` moves the file into WebAssembly
//!   memory in 16 MiB chunks and reports after each chunk; phase `"read"` runs the core reader,
//!   which takes the whole buffer at once, so it reports only at its start (`done: 0`) and end
//!   (`done: total`). An exception thrown by the callback aborts the load and is rethrown.
//!
//! # TypeScript
//!
//! `audlink_wasm.d.ts` is generated, never edited by hand. wasm-bindgen writes the classes and
//! functions; the object types are declared by [tsify](https://docs.rs/tsify) from the Rust types
//! that are serialized to JavaScript or deserialized from it, following their serde attributes
//! (names, tags, defaults, skipped `None`s):
//! - core's types (`DataSource`, `ImportReport`, `Schema`, …) derive `Tsify` under
//!   `audlink-core/ts`, a feature only this crate's `js` feature turns on
//!   (tests/it/core_purity.rs);
//! - [`dispatch`]'s specs and answers derive it under `js`;
//! - the shapes only JavaScript sees are typed here ([`ImportResult`], [`ExportResult`],
//!   [`RulePreview`], [`ImportPreview`], [`UnmatchedPage`], [`LoadProgress`], …): recipient
//!   keys as strings, files as `Uint8Array`s. They are what the functions serialize, so the
//!   declaration and the object cannot differ.
//!
//! Parameters and results are `tsify::Ts<T>`, so wasm-bindgen names the declared type itself.
//! Every type is declared with serde_json's view: maps as objects (`hashmap_as_object`),
//! `None` as `null` (`missing_as_null`). Written by hand, because tsify cannot express them:
//! `ImportFile` (an `ImportFileSpec` plus its `bytes`, read field by field) and `AudlinkError`
//! (an `Error` extended with [`DispatchError`]'s fields) below; on core types, the few that serde
//! reaches through a conversion (`DataSource` via its flat config, `Profile`, `CountryCode`,
//! `Timestamp`, `Date` as `IsoDate`) and the fields whose JavaScript value the Rust type does
//! not pin down (an `int` SQL parameter beyond 2⁵³−1 is a string; a segment's counts by reason
//! list only the reasons present: `Partial<Record<…>>`). Parameters typed `JsValue` (`files`, `members`, `snapshot`, the progress
//! callback) name their type in a wasm-bindgen attribute. tests/it/js_types.rs type-checks the
//! whole API against the generated file with `tsc --strict`.

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use tsify::{Ts, Tsify};
use wasm_bindgen::prelude::*;

use audlink_core::export::{self, ExportReport, NotExportedReason, Snapshot};
use audlink_core::id::IdReason;
use audlink_core::import::{self, AudienceFormat, ImportReport, RecipientKeys, UnmatchedId};
use audlink_core::recipients::RecipientKey;
use audlink_core::rule::preview::{Breakdown, Cell, Count, SampleColumn};

use crate::dispatch::{
    self, DispatchError, ErrorKind, ExportSpec, ImportFileSpec, ImportSpec, ListOverlap, ListSize,
    LoadOptions, LoadSummary, PreviewSpec, SqlOutput, SqlSpec, Workspace,
};

// What tsify cannot derive stays written here (see the module doc, "TypeScript").
#[wasm_bindgen(typescript_custom_section)]
const TS_HAND_WRITTEN: &str = r#"
/** An audience file of an import: its name and format, and its bytes. */
export type ImportFile = ImportFileSpec & { bytes: Uint8Array };

/** What audlink throws: an Error with the DispatchError fields as own properties. */
export interface AudlinkError extends Error, DispatchError {}
"#;

/// Where a load is, for the progress callback; `done` and `total` count bytes of the file.
#[derive(Debug, Clone, Copy, Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct LoadProgress {
    /// `copy`: into WebAssembly memory, per 16 MiB chunk; `read`: the core reader, start and end
    /// only.
    pub phase: LoadPhase,
    /// Bytes done.
    pub done: u64,
    /// Bytes of the file.
    pub total: u64,
}

/// The two phases of a load.
#[derive(Debug, Clone, Copy, Serialize, Tsify)]
#[serde(rename_all = "snake_case")]
pub enum LoadPhase {
    /// Copying the file into WebAssembly memory.
    Copy,
    /// The core reader.
    Read,
}

/// How one list changes, as JavaScript sees it: recipients as strings.
#[derive(Debug, Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ListChange<'a> {
    /// The list.
    pub list: &'a str,
    /// Whether a full delivery replaced it.
    pub replaced: bool,
    /// Recipients added.
    pub added: Vec<String>,
    /// Recipients removed.
    pub removed: Vec<String>,
    /// Members after the import.
    pub members: u64,
}

/// What `import` returns.
#[derive(Debug, Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ImportResult<'a> {
    /// The lists the import changes.
    pub lists: Vec<ListChange<'a>>,
    /// Unix ms of the last delivery applied, per segment.
    pub last_applied: &'a BTreeMap<String, i64>,
    /// What the import did with every identifier.
    pub report: &'a ImportReport,
}

/// What `importPreview` returns: the report without its unmatched rows (see `unmatchedPage`).
#[derive(Debug, Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ImportPreview<'a> {
    /// Each list the import touched, by size.
    pub lists: &'a [ListSize],
    /// Unix ms of the last delivery applied, per segment.
    pub last_applied: &'a BTreeMap<String, i64>,
    /// The report; its `unmatched` is empty.
    pub report: &'a ImportReport,
    /// Recipients in both of two lists, for the largest lists (largest first).
    pub overlap: &'a ListOverlap,
    /// Unmatched identifiers kept for `unmatchedPage`.
    pub unmatched_total: usize,
    /// Of those, how many of each reason (the reasons present).
    #[tsify(type = "Partial<Record<UnmatchedReason, number>>")]
    pub unmatched_by_reason: BTreeMap<&'static str, u64>,
}

/// What `unmatchedPage` returns.
#[derive(Debug, Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct UnmatchedPage<'a> {
    /// Unmatched identifiers of the reason asked for (all reasons: all of them).
    pub total: usize,
    /// The page.
    pub rows: Vec<&'a UnmatchedId>,
}

/// A member that is not exported, as JavaScript sees it: the recipient as a string.
#[derive(Debug, Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct NotExported {
    /// The member.
    pub recipient: String,
    /// Why.
    pub reason: NotExportedReason,
    /// For `invalid_key`: why the key is not an identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_error: Option<IdReason>,
}

/// One export file.
#[derive(Debug, Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ExportFile<'a> {
    /// The file name, e.g. `ftp_dpm_21_1486140844.sync.1.gz`.
    pub name: &'a str,
    /// Number of lines.
    pub lines: u64,
    /// The contents (gzip when the name ends in `.gz`).
    #[tsify(type = "Uint8Array")]
    pub bytes: &'a [u8],
}

/// What `export` returns.
#[derive(Debug, Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ExportResult<'a> {
    /// The files to upload, in order. Not serialized: each becomes `{name, lines, bytes}` with
    /// its bytes a `Uint8Array` (see `export_to_js`).
    #[serde(skip_serializing_if = "always")]
    pub files: Vec<ExportFile<'a>>,
    /// Members not exported, sorted by recipient.
    pub not_exported: Vec<NotExported>,
    /// The identifiers to keep for the next export of this audience.
    pub snapshot: &'a [String],
    /// Counts.
    pub report: &'a ExportReport,
}

/// A recipient of a preview sample, as JavaScript sees it: its id as a string.
#[derive(Debug, Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct SampleRow<'a> {
    /// Its row in the table.
    pub row: usize,
    /// Its id.
    pub id: String,
    /// Its attribute values, in the order of the sample's columns.
    pub values: &'a [Cell],
}

/// The first selected recipients by id.
#[derive(Debug, Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct Sample<'a> {
    /// The attribute columns (the id excluded), in table order.
    pub columns: &'a [SampleColumn],
    /// The recipients, ascending by id.
    pub rows: Vec<SampleRow<'a>>,
}

/// What `previewRule` returns.
#[derive(Debug, Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct RulePreview<'a> {
    /// The rule in canonical form.
    pub canonical: &'a str,
    /// How many recipients it selects.
    pub count: Count,
    /// The first selected recipients by id.
    pub sample: Sample<'a>,
    /// The breakdown, when a column was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<&'a Breakdown>,
}

/// `skip_serializing_if` for a field declared to TypeScript but set on the JS object apart.
fn always<T>(_: &T) -> bool {
    true
}

/// Bytes copied into WebAssembly memory between two `copy` progress reports.
const COPY_CHUNK: usize = 16 << 20;

/// `Number.MAX_SAFE_INTEGER`.
const MAX_SAFE: i64 = (1 << 53) - 1;

/// Loaded tables (recipients, visitor links, list members) and the operations over them: a
/// [`dispatch::Workspace`] seen from JavaScript.
#[wasm_bindgen(js_name = Workspace)]
#[derive(Debug, Default)]
pub struct JsWorkspace {
    inner: Workspace,
    /// The last `importPreview`'s unmatched identifiers, served a page at a time.
    unmatched: Vec<UnmatchedId>,
}

#[wasm_bindgen(js_class = Workspace)]
impl JsWorkspace {
    /// An empty workspace.
    #[wasm_bindgen(constructor)]
    pub fn new() -> JsWorkspace {
        JsWorkspace::default()
    }

    /// Reads a recipients CSV (plain or gzip) and keeps it, replacing any loaded before.
    /// Throws an `AudlinkError` (`kind: "file"`) when the file cannot be read.
    #[wasm_bindgen(js_name = loadRecipients)]
    pub fn load_recipients(
        &mut self,
        name: &str,
        bytes: &Uint8Array,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions | null")] options: Option<
            Ts<LoadOptions>,
        >,
        #[wasm_bindgen(unchecked_optional_param_type = "(progress: LoadProgress) => void")]
        progress: Option<Function>,
    ) -> Result<Ts<LoadSummary>, JsValue> {
        self.load(bytes, options, progress, |ws, bytes, options| {
            ws.load_recipients(name, bytes, options)
        })
    }

    /// Reads a visitor links CSV (plain or gzip) and keeps it, replacing any loaded before.
    /// Throws an `AudlinkError` (`kind: "file"`) when the file cannot be read.
    #[wasm_bindgen(js_name = loadLinks)]
    pub fn load_links(
        &mut self,
        name: &str,
        bytes: &Uint8Array,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions | null")] options: Option<
            Ts<LoadOptions>,
        >,
        #[wasm_bindgen(unchecked_optional_param_type = "(progress: LoadProgress) => void")]
        progress: Option<Function>,
    ) -> Result<Ts<LoadSummary>, JsValue> {
        self.load(bytes, options, progress, |ws, bytes, options| {
            ws.load_links(name, bytes, options)
        })
    }

    /// Sets the current members of a list (recipient ids as strings; any order, repeats
    /// allowed). Returns the number of members given.
    #[wasm_bindgen(js_name = setList)]
    pub fn set_list(
        &mut self,
        name: &str,
        #[wasm_bindgen(unchecked_param_type = "string[]")] members: JsValue,
    ) -> Result<u32, JsValue> {
        let members: Vec<RecipientKey> = from_js(members, "members")?;
        let count = u32::try_from(members.len()).unwrap_or(u32::MAX);
        self.inner.set_list(name, members);
        Ok(count)
    }

    /// Imports audience files against the loaded tables; the lists set on the workspace are the
    /// current members. The workspace is not changed.
    pub fn import(
        &self,
        spec: Ts<ImportSpec>,
        #[wasm_bindgen(unchecked_param_type = "ImportFile[]")] files: JsValue,
    ) -> Result<Ts<ImportResult<'static>>, JsValue> {
        let spec: ImportSpec = from_js(spec.into(), "spec")?;
        let files = files_from_js(&files)?;
        let borrowed: Vec<(ImportFileSpec, &[u8])> = files
            .iter()
            .map(|(spec, bytes)| (spec.clone(), bytes.as_slice()))
            .collect();
        let result = self.inner.import(&spec, &borrowed).map_err(js_error)?;
        typed(&import_json(&result))
    }

    /// Exports a list or the recipients a rule selects, against `snapshot` (the identifiers
    /// sent to this audience before; none: an empty snapshot).
    pub fn export(
        &self,
        spec: Ts<ExportSpec>,
        #[wasm_bindgen(unchecked_optional_param_type = "string[] | null")] snapshot: JsValue,
    ) -> Result<Ts<ExportResult<'static>>, JsValue> {
        let spec: ExportSpec = from_js(spec.into(), "spec")?;
        let snapshot: Vec<String> = options_from_js(snapshot, "snapshot")?;
        let result = self
            .inner
            .export(&spec, &Snapshot::new(snapshot))
            .map_err(js_error)?;
        export_to_js(&result).map(Ts::new_unchecked)
    }

    /// Imports like `import`, then keeps the lists as the import leaves them (for `in_list`
    /// rules and list exports) and the unmatched identifiers (for `unmatchedPage`), and
    /// returns the report without them, each list's size and the overlap of the largest lists.
    /// Nothing per identifier crosses into JavaScript, so a million-line file stays fast.
    #[wasm_bindgen(js_name = importPreview)]
    pub fn import_preview(
        &mut self,
        spec: Ts<ImportSpec>,
        #[wasm_bindgen(unchecked_param_type = "ImportFile[]")] files: JsValue,
    ) -> Result<Ts<ImportPreview<'static>>, JsValue> {
        let spec: ImportSpec = from_js(spec.into(), "spec")?;
        let files = files_from_js(&files)?;
        let borrowed: Vec<(ImportFileSpec, &[u8])> = files
            .iter()
            .map(|(spec, bytes)| (spec.clone(), bytes.as_slice()))
            .collect();
        let (preview, unmatched) = self
            .inner
            .import_preview(&spec, &borrowed)
            .map_err(js_error)?;
        self.unmatched = unmatched;
        typed(&ImportPreview {
            lists: &preview.lists,
            last_applied: &preview.last_applied,
            report: &preview.report,
            overlap: &preview.overlap,
            unmatched_total: self.unmatched.len(),
            unmatched_by_reason: UnmatchedId::count_by_reason(&self.unmatched),
        })
    }

    /// Rows `offset..offset + limit` of the last `importPreview`'s unmatched identifiers, of
    /// one reason code when given: `{total, rows}`.
    #[wasm_bindgen(js_name = unmatchedPage)]
    pub fn unmatched_page(
        &self,
        offset: u32,
        limit: u32,
        #[wasm_bindgen(unchecked_optional_param_type = "UnmatchedReason | null")] reason: Option<
            String,
        >,
    ) -> Result<Ts<UnmatchedPage<'static>>, JsValue> {
        let (total, rows) = dispatch::unmatched_page(
            &self.unmatched,
            offset as usize,
            limit as usize,
            reason.as_deref().filter(|r| !r.is_empty()),
        );
        typed(&UnmatchedPage { total, rows })
    }

    /// Counts, samples and breaks down the recipients a rule selects.
    #[wasm_bindgen(js_name = previewRule)]
    pub fn preview_rule(&self, spec: Ts<PreviewSpec>) -> Result<Ts<RulePreview<'static>>, JsValue> {
        let spec: PreviewSpec = from_js(spec.into(), "spec")?;
        let preview = self.inner.preview_rule(&spec).map_err(js_error)?;
        typed(&preview_json(&preview))
    }
}

/// Parses, type-checks and compiles a rule to SQL for a database with the given schema.
#[wasm_bindgen(js_name = ruleSql)]
pub fn rule_sql(spec: Ts<SqlSpec>) -> Result<Ts<SqlOutput>, JsValue> {
    let spec: SqlSpec = from_js(spec.into(), "spec")?;
    let output = dispatch::rule_sql(&spec).map_err(js_error)?;
    typed(&output)
}

/// What an audience file's name says it is: `"onboarding"`, `"aep"`, `"outbound"`, or `null`
/// (the order and rules of `audlink audience import --format auto`).
#[wasm_bindgen(js_name = formatOfName, unchecked_return_type = "\"onboarding\" | \"aep\" | \"outbound\" | null")]
pub fn format_of_name(name: &str) -> JsValue {
    audlink_core::format::detect(name).map_or(JsValue::NULL, |kind| JsValue::from_str(kind.code()))
}

/// A [`DispatchError`] as a JS `Error` with own properties `kind`, `file`, `line`, `column`,
/// `span` and `reason` (those present).
fn js_error(error: DispatchError) -> JsValue {
    let js = js_sys::Error::new(&error.message);
    let set = |key: &str, value: JsValue| {
        // Setting an own property of a fresh ordinary object does not fail.
        let _ = Reflect::set(&js, &JsValue::from_str(key), &value);
    };
    if let Value::String(kind) = plain(&error.kind) {
        set("kind", JsValue::from_str(&kind));
    }
    if let Some(file) = &error.file {
        set("file", JsValue::from_str(file));
    }
    if let Some(line) = error.line {
        set("line", JsValue::from_f64(line as f64));
    }
    if let Some(column) = error.column {
        set("column", JsValue::from_f64(f64::from(column)));
    }
    if let Some(span) = error.span {
        let object = Object::new();
        let _ = Reflect::set(&object, &"start".into(), &f64::from(span.start).into());
        let _ = Reflect::set(&object, &"end".into(), &f64::from(span.end).into());
        set("span", object.into());
    }
    if let Some(reason) = &error.reason {
        set("reason", JsValue::from_str(reason));
    }
    js.into()
}

fn request_error(what: &str, detail: impl std::fmt::Display) -> JsValue {
    js_error(DispatchError::new(
        ErrorKind::Request,
        format!("{what}: {detail}"),
    ))
}

/// A required argument: read with serde-wasm-bindgen into JSON, fields that are `null` or
/// `undefined` dropped, then into `T` (so `deny_unknown_fields` and the serde defaults apply
/// as they do to the ABI's JSON).
fn from_js<T: DeserializeOwned>(value: JsValue, what: &str) -> Result<T, JsValue> {
    let mut json: Value = serde_wasm_bindgen::from_value(value).map_err(|error| {
        let error = JsValue::from(error);
        let message = match error.dyn_ref::<js_sys::Error>() {
            Some(error) => String::from(error.message()),
            None => format!("{error:?}"),
        };
        request_error(what, message)
    })?;
    drop_nulls(&mut json);
    // Through text, not `from_value`: some core types deserialize from a borrowed `&str` (the
    // normalization `Profile`), which a `Value` cannot lend.
    serde_json::from_str(&json.to_string()).map_err(|error| request_error(what, error))
}

/// An optional argument: `undefined` or `null` is the default.
fn options_from_js<T: DeserializeOwned + Default>(
    value: JsValue,
    what: &str,
) -> Result<T, JsValue> {
    if value.is_undefined() || value.is_null() {
        Ok(T::default())
    } else {
        from_js(value, what)
    }
}

/// A serializable result as a plain JS value of its declared TypeScript type `U`: `T` itself,
/// or `T` with `'static` lifetimes when it borrows (through [`plain`], so integers beyond
/// ±(2⁵³−1) are strings).
fn typed<T: Serialize, U: Tsify>(value: &T) -> Result<Ts<U>, JsValue> {
    to_js(&plain(value)).map(Ts::new_unchecked)
}

/// Removes object fields whose value is `null` (JS `null` or `undefined`): absent, as in JSON
/// written by `JSON.stringify` with `undefined` fields.
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, field| !field.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// The fields of an import file besides its bytes.
const FILE_FIELDS: [&str; 3] = ["name", "format", "bytes"];

fn files_from_js(files: &JsValue) -> Result<Vec<(ImportFileSpec, Vec<u8>)>, JsValue> {
    let files: &Array = files
        .dyn_ref()
        .ok_or_else(|| request_error("files", "expected an array of {name, format, bytes}"))?;
    files
        .iter()
        .enumerate()
        .map(|(i, file)| {
            let what = format!("files[{i}]");
            let object: &Object = file
                .dyn_ref()
                .ok_or_else(|| request_error(&what, "expected an object {name, format, bytes}"))?;
            for key in Object::keys(object).iter() {
                let key = key.as_string().unwrap_or_default();
                if !FILE_FIELDS.contains(&key.as_str()) {
                    return Err(request_error(
                        &what,
                        format!("unknown field `{key}`, expected one of `name`, `format`, `bytes`"),
                    ));
                }
            }
            let get = |key: &str| Reflect::get(object, &key.into()).unwrap_or(JsValue::UNDEFINED);
            let bytes = get("bytes")
                .dyn_into::<Uint8Array>()
                .map_err(|_| request_error(&what, "bytes: expected a Uint8Array"))?;
            let name: String = from_js(get("name"), &format!("{what}.name"))?;
            let format: AudienceFormat = from_js(get("format"), &format!("{what}.format"))?;
            Ok((ImportFileSpec { name, format }, bytes.to_vec()))
        })
        .collect()
}

/// Copies `bytes` into WebAssembly memory, reporting `copy` progress per chunk.
fn copy_in(bytes: &Uint8Array, progress: Option<&Function>) -> Result<Vec<u8>, JsValue> {
    let total = bytes.length() as usize;
    let mut out = vec![0u8; total];
    report(progress, LoadPhase::Copy, 0, total)?;
    let mut done = 0;
    while done < total {
        let end = (done + COPY_CHUNK).min(total);
        bytes
            .subarray(done as u32, end as u32)
            .copy_to(&mut out[done..end]);
        done = end;
        report(progress, LoadPhase::Copy, done, total)?;
    }
    Ok(out)
}

/// Calls the progress callback, if any, with `{phase, done, total}`.
fn report(
    progress: Option<&Function>,
    phase: LoadPhase,
    done: usize,
    total: usize,
) -> Result<(), JsValue> {
    let Some(progress) = progress else {
        return Ok(());
    };
    let event = LoadProgress {
        phase,
        done: done as u64,
        total: total as u64,
    }
    .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
    .map_err(JsValue::from)?;
    progress.call1(&JsValue::NULL, &event).map(drop)
}

/// A serializable result as JSON with integers beyond ±(2⁵³−1) made strings.
fn plain<T: Serialize>(value: &T) -> Value {
    let mut value = serde_json::to_value(value).expect("results serialize");
    safe_numbers(&mut value);
    value
}

/// Turns every integer a JS number cannot hold exactly into its decimal string.
fn safe_numbers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            let unsafe_int = match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => !(-MAX_SAFE..=MAX_SAFE).contains(&i),
                (None, Some(_)) => true,
                (None, None) => false,
            };
            if unsafe_int {
                *value = Value::String(n.to_string());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(safe_numbers),
        Value::Object(map) => map.values_mut().for_each(safe_numbers),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

fn keys(keys: &RecipientKeys) -> Vec<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// An import result as JS sees it: recipient keys as strings.
fn import_json(result: &import::ImportResult) -> ImportResult<'_> {
    ImportResult {
        lists: result
            .lists
            .iter()
            .map(|change| ListChange {
                list: &change.list,
                replaced: change.replaced,
                added: keys(&change.added),
                removed: keys(&change.removed),
                members: change.members,
            })
            .collect(),
        last_applied: &result.last_applied,
        report: &result.report,
    }
}

/// An export result as JS sees it: recipient keys as strings, the snapshot as an array of
/// identifiers.
fn export_json(result: &export::ExportResult) -> ExportResult<'_> {
    ExportResult {
        files: result
            .files
            .iter()
            .map(|file| ExportFile {
                name: &file.name,
                lines: file.lines,
                bytes: &file.bytes,
            })
            .collect(),
        not_exported: result
            .not_exported
            .iter()
            .map(|n| NotExported {
                recipient: n.recipient.to_string(),
                reason: n.reason,
                key_error: n.key_error,
            })
            .collect(),
        snapshot: result.snapshot.identifiers(),
        report: &result.report,
    }
}

/// An export result as a JS object: the JSON part through [`plain`], then `files` with their
/// bytes as `Uint8Array`s (set last, as an own property).
fn export_to_js(result: &export::ExportResult) -> Result<JsValue, JsValue> {
    let value = export_json(result);
    let object = to_js(&plain(&value))?;
    let files = Array::new();
    for file in &value.files {
        let entry = Object::new();
        let _ = Reflect::set(&entry, &"name".into(), &file.name.into());
        let _ = Reflect::set(&entry, &"lines".into(), &(file.lines as f64).into());
        let _ = Reflect::set(
            &entry,
            &"bytes".into(),
            &Uint8Array::from(file.bytes).into(),
        );
        files.push(&entry);
    }
    Reflect::set(&object, &"files".into(), &files)?;
    Ok(object)
}

/// A rule preview as JS sees it: sample ids as strings.
fn preview_json(preview: &dispatch::RulePreview) -> RulePreview<'_> {
    RulePreview {
        canonical: &preview.canonical,
        count: preview.count,
        sample: Sample {
            columns: &preview.sample.columns,
            rows: preview
                .sample
                .rows
                .iter()
                .map(|row| SampleRow {
                    row: row.row,
                    id: row.id.to_string(),
                    values: &row.values,
                })
                .collect(),
        },
        breakdown: preview.breakdown.as_ref(),
    }
}

/// JSON → a plain JS value (objects, not `Map`s).
fn to_js(value: &Value) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|error| js_error(DispatchError::new(ErrorKind::Request, error.to_string())))
}

impl JsWorkspace {
    /// What both loads do around the core's reader: options in, bytes copied into wasm memory
    /// with progress, the read reported at its start and end, the summary out.
    fn load(
        &mut self,
        bytes: &Uint8Array,
        options: Option<Ts<LoadOptions>>,
        progress: Option<Function>,
        read: impl FnOnce(&mut Workspace, &[u8], LoadOptions) -> Result<LoadSummary, DispatchError>,
    ) -> Result<Ts<LoadSummary>, JsValue> {
        let options: LoadOptions = match options {
            Some(options) => from_js(options.into(), "options")?,
            None => LoadOptions::default(),
        };
        let bytes = copy_in(bytes, progress.as_ref())?;
        report(progress.as_ref(), LoadPhase::Read, 0, bytes.len())?;
        let summary = read(&mut self.inner, &bytes, options).map_err(js_error)?;
        report(progress.as_ref(), LoadPhase::Read, bytes.len(), bytes.len())?;
        typed(&summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unsafe_integers_become_strings_and_safe_ones_stay_numbers() {
        let mut value = json!({
            "a": [MAX_SAFE, -MAX_SAFE, MAX_SAFE + 1, -MAX_SAFE - 1, i64::MIN, u64::MAX, 1.5],
            "b": {"c": 9_007_199_254_740_993_i64, "d": "x", "e": null, "f": true},
        });
        safe_numbers(&mut value);
        assert_eq!(
            value,
            json!({
                "a": [MAX_SAFE, -MAX_SAFE, "9007199254740992", "-9007199254740992",
                      "-9223372036854775808", "18446744073709551615", 1.5],
                "b": {"c": "9007199254740993", "d": "x", "e": null, "f": true},
            })
        );
    }

    #[test]
    fn null_fields_are_absent_but_null_items_stay() {
        let mut value = json!({"a": null, "b": {"c": null, "d": 1}, "e": [null, {"f": null}]});
        drop_nulls(&mut value);
        assert_eq!(value, json!({"b": {"d": 1}, "e": [null, {}]}));
        let options: LoadOptions =
            serde_json::from_value(json!({"strict": true})).expect("defaults fill in");
        assert_eq!(options.max_bad, dispatch::DEFAULT_MAX_BAD);
        assert!(serde_json::from_value::<LoadOptions>(json!({"maxBad": 5})).is_err());
    }

    #[test]
    fn recipient_keys_cross_as_their_canonical_text() {
        let keys = keys(&RecipientKeys::from(vec![
            RecipientKey::Int(i64::MAX),
            RecipientKey::Int(-3),
            RecipientKey::String("abc".into()),
        ]));
        assert_eq!(keys, ["9223372036854775807", "-3", "abc"]);
    }
}
