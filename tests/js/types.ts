// Type-checks the TypeScript declarations of the js front door (target/js/nodejs/audlink_wasm.d.ts,
// written by wasm-bindgen from wasm/src/js.rs and the tsify-derived types): tests/it/js_types.rs
// runs `tsc --strict --noEmit` on this file (it is never run). The lines using the API must
// compile, and every line after a `@ts-expect-error` must NOT: so a declaration that loses
// precision (a field typed `any`, a required field made optional, a literal union widened to
// `string`, a recipient typed as a number) fails the check, as does a wrong one.

import {
  Workspace,
  formatOfName,
  ruleSql,
  type AudlinkError,
  type Cell,
  type ExportResult,
  type ExportSpec,
  type ImportFile,
  type ImportPreview,
  type ImportResult,
  type ImportSpec,
  type LoadProgress,
  type LoadSummary,
  type RulePreview,
  type SqlOutput,
  type UnmatchedPage,
} from "../../target/js/nodejs/audlink_wasm.js";

const NOW = "2026-01-01T00:00:00Z";
const ws = new Workspace();
const bytes = new Uint8Array();

// Loads: options and progress are optional.
const summary: LoadSummary = ws.loadRecipients(
  "recipients.csv",
  bytes,
  { strict: false, max_bad: 100 },
  (progress: LoadProgress) => {
    const phase: "copy" | "read" = progress.phase;
    const done: number = progress.done + progress.total;
    void phase, done;
  },
);
ws.loadLinks("links.csv.gz", bytes);
ws.loadLinks("links.csv.gz", bytes, null);
const rows: number = summary.rows + summary.rejected + summary.empty_lines;
const schema: [string, string][] = summary.schema?.columns ?? [];
const merged: number | undefined = summary.merged;
const column: number | null | undefined = summary.bad[0]?.column;
const reason: string | undefined = summary.bad[0]?.id_error?.reason;
// @ts-expect-error rows is a number
const rowsText: string = summary.rows;
// @ts-expect-error options are snake_case, as serde reads them
ws.loadLinks("links.csv", bytes, { maxBad: 1 });
// @ts-expect-error a summary's bad records are always there
const bad: undefined = summary.bad;

ws.setList("vip", ["1", "2", "3"]);

// Imports.
const spec: ImportSpec = {
  data_source: { name: "crm-email", dpid: 12345, kind: "declared-id", key_column: "email", encoding: "sha256-email", profile: "adobe-v1" },
  options: { mappings: { "77": "newsletter" }, list_unmatched: true },
  last_applied: { "77": 1767225600000 },
};
const files: ImportFile[] = [
  { name: "S3_1_iter_1767225600000.sync", format: { format: "outbound", mode: null }, bytes },
  { name: "Demo_segment77.csv", format: { format: "aep", columns: { identity: "email_sha256", status: "status" } }, bytes },
  { name: "ids.txt", format: { format: "id-list", segment: "9" }, bytes },
];
// @ts-expect-error not a data source kind
const badKind: ImportSpec = { data_source: { name: "x", dpid: 1, kind: "cookie" } };
// @ts-expect-error not a normalization profile
const badProfile: ImportSpec = { data_source: { name: "x", dpid: 1, kind: "declared-id", profile: "adobe" } };
// @ts-expect-error an Experience Platform file needs its columns
const badFormat: ImportFile = { name: "x.csv", format: { format: "aep" }, bytes };
// @ts-expect-error a file needs its bytes
const noBytes: ImportFile = { name: "x.sync", format: { format: "onboarding" } };

const imported: ImportResult = ws.import(spec, files);
const added: string[] = imported.lists[0].added;
const segment = imported.report.segments["77"];
const rate: number = segment.match_rate;
const noRecipient: number | undefined = segment.unmatched.no_recipient;
const problem: [string, number] = [imported.report.problems[0].file, imported.report.problems[0].line];
const unmatchedId: string = imported.report.unmatched[0].id;
const kind: "visitor-id" | "declared-id" = imported.report.data_source.kind;
// @ts-expect-error recipients cross as strings
const addedNumbers: number[] = imported.lists[0].added;
// @ts-expect-error not every reason is in a segment's counts
const everyReason: number = segment.unmatched.duplicate;

const preview: ImportPreview = ws.importPreview(spec, files);
const overlap: number = preview.unmatched_total + preview.overlap.counts[0][0] + preview.lists[0].added;
const byReason: number | undefined = preview.unmatched_by_reason.ambiguous;
const page: UnmatchedPage = ws.unmatchedPage(0, 10, "no_recipient");
const pageRow: [number, string] = [page.total, page.rows[0].reason];
ws.unmatchedPage(0, 10);
// @ts-expect-error not a reason code
ws.unmatchedPage(0, 10, "missing");

// Exports.
const exportSpec: ExportSpec = {
  data_source: { name: "ecid", dpid: 21, kind: "visitor-id" },
  members: { rule: { text: "age >= 30", now: NOW } },
  trait_id: 4242,
  mode: "delta",
  timestamp: 1767225600,
  limits: { gzip: false },
};
const listExport: ExportSpec = { ...exportSpec, members: { list: "vip" } };
const exported: ExportResult = ws.export(listExport, ["a"]);
ws.export(exportSpec);
const fileBytes: Uint8Array = exported.files[0].bytes;
const fileName: string = exported.files[0].name;
const snapshot: string[] = exported.snapshot;
const recipient: string = exported.not_exported[0].recipient;
const optedOut: number = exported.report.not_exported.opted_out;
// @ts-expect-error not an export mode
const badMode: ExportSpec = { ...exportSpec, mode: "append" };
// @ts-expect-error an export needs its trait
const noTrait: ExportSpec = { data_source: exportSpec.data_source, members: { list: "vip" }, mode: "sync", timestamp: 1 };

// Rules.
const rule: RulePreview = ws.previewRule({ rule: "age >= 30", now: NOW, sample: 3, breakdown: "country" });
const id: string = rule.sample.rows[0].id;
const cell: Cell = rule.sample.rows[0].values[0];
const cells: (null | boolean | number | string)[] = rule.sample.rows[0].values;
const columnType: string = rule.sample.columns[0].type;
const selected: number = rule.count.selected + rule.count.total;
const top: Cell | undefined = rule.breakdown?.top[0].value;
// @ts-expect-error a preview needs now
ws.previewRule({ rule: "age >= 30" });
// @ts-expect-error a cell is no object
const cellObject: object = rule.sample.rows[0].values[0];

const sql: SqlOutput = ruleSql({
  rule: "age >= 30",
  schema: { columns: [["id", "int"], ["age", "int"], ["signup", "date_time"]] },
  dialect: "postgres",
  now: NOW,
});
const param = sql.clause.params[0];
const paramValue: number | string = param.value;
if (param.type === "float") {
  const float: number = param.value;
  void float;
}
const select: string = sql.select + sql.canonical + sql.clause.text;
// @ts-expect-error not a column type
ruleSql({ rule: "x", schema: { columns: [["id", "integer"]] }, dialect: "sqlite", now: NOW });
// @ts-expect-error not a dialect
ruleSql({ rule: "x", schema: { columns: [] }, dialect: "mysql", now: NOW });

const format: "onboarding" | "aep" | "outbound" | null = formatOfName("S3_1_iter_1767225600000.sync");

// Errors.
try {
  ws.previewRule({ rule: "age >=", now: NOW });
} catch (e) {
  const error = e as AudlinkError;
  const message: string = error.message;
  const errorKind: "file" | "rule" | "request" | "abi" = error.kind;
  const start: number | undefined = error.span?.start;
  const line: number | undefined = error.line;
  // @ts-expect-error not an error kind
  const wrongKind: "parse" = error.kind;
  void message, errorKind, start, line, wrongKind;
}

void rows, schema, merged, column, reason, rowsText, bad, badKind, badProfile, badFormat, noBytes,
  added, rate, noRecipient, problem, unmatchedId, kind, addedNumbers, everyReason, overlap,
  byReason, pageRow, fileBytes, fileName, snapshot, recipient, optedOut, badMode, noTrait, id, cell,
  cells, columnType, selected, top, cellObject, paramValue, select, format;
