// The page's Web Worker: owns the WebAssembly core (the `js` build in ./pkg, made by `make js`)
// and every piece of loaded data, so the page stays responsive while files load and rules run.
//
// Protocol: the page posts {id, op, ...args}; the worker answers {id, ok: result} or
// {id, error: {message, kind, file, line, column, span, reason}}, and may post
// {id, progress: {phase, done, total}} before the answer. Ops:
//   load {kind: "recipients" | "links", file: File}         → LoadSummary
//   inspect {file: File}                                    → {format, columns}
//   import {dataSource, files: [{file, format}], mappings}   → import view (see importView)
//   unmatched {offset, limit, reason}                       → {total, rows}
//   preview {rule, now, breakdown, sample}                  → RulePreview
//   export {spec}                                           → ExportResult (file bytes transferred)
//   setDataSource — none: the data source travels with each op that needs it.

import init, { Workspace, formatOfName } from "./pkg/audlink_wasm.js";

const ready = init();
let workspace = null;
/** Lists the last import produced (name → member keys); cleared before the next import. */
let lists = new Map();
/** The last import's unmatched identifiers, kept here and sent a page at a time. */
let unmatched = [];

/** Reads a File to bytes, posting `read` progress per chunk. */
async function bytesOf(file, progress) {
  const total = file.size;
  const out = new Uint8Array(total);
  const reader = file.stream().getReader();
  let done = 0;
  progress({ phase: "read-file", done, total });
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) break;
    out.set(chunk.value, done);
    done += chunk.value.length;
    progress({ phase: "read-file", done, total });
  }
  return done === total ? out : out.subarray(0, done);
}

/** The first line of a file (gzip decompressed with the browser's DecompressionStream). */
async function firstLine(file) {
  const head = new Uint8Array(await file.slice(0, 2).arrayBuffer());
  let stream = file.stream();
  if (head[0] === 0x1f && head[1] === 0x8b) stream = stream.pipeThrough(new DecompressionStream("gzip"));
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("\n") && text.length < 65536) {
    const chunk = await reader.read();
    if (chunk.done) break;
    text += decoder.decode(chunk.value, { stream: true });
  }
  reader.cancel().catch(() => {});
  return text.split(/\r?\n/)[0].replace(/^\uFEFF/, "");
}

/** The columns of a CSV header line (quotes removed; enough for choosing a column). */
function headerColumns(line) {
  return line.split(",").map((c) => c.trim().replace(/^"(.*)"$/, "$1"));
}

/**
 * Recipients in several lists: for every pair of lists, how many recipients are in both
 * (the diagonal is each list's size). Lists in the order given.
 */
function overlap(names) {
  const index = new Map(names.map((name, i) => [name, i]));
  const of = new Map(); // recipient → indices of its lists
  for (const [name, members] of lists) {
    const i = index.get(name);
    if (i === undefined) continue;
    for (const key of members) {
      const found = of.get(key);
      if (found) found.push(i);
      else of.set(key, [i]);
    }
  }
  const n = names.length;
  const matrix = new Float64Array(n * n);
  for (const set of of.values()) {
    for (let a = 0; a < set.length; a++) {
      for (let b = 0; b < set.length; b++) matrix[set[a] * n + set[b]] += 1;
    }
  }
  const rows = [];
  for (let i = 0; i < n; i++) rows.push(Array.from(matrix.subarray(i * n, (i + 1) * n)));
  return { lists: names, matrix: rows };
}

const ops = {
  async load({ kind, file }, progress) {
    const bytes = await bytesOf(file, progress);
    workspace ??= new Workspace();
    const load = kind === "recipients" ? "loadRecipients" : "loadLinks";
    const summary = workspace[load](file.name, bytes, { max_bad: 20 }, progress);
    summary.size = file.size;
    return summary;
  },

  async inspect({ file }) {
    const format = formatOfName(file.name);
    const columns = format === "aep" ? headerColumns(await firstLine(file)) : [];
    return { format, columns };
  },

  async import({ dataSource, files, mappings }, progress) {
    if (!workspace) throw Object.assign(new Error("load a recipients file first"), { kind: "request" });
    const inputs = [];
    let total = files.reduce((n, f) => n + f.file.size, 0);
    let base = 0;
    for (const { file, format } of files) {
      const bytes = await bytesOf(file, (p) => progress({ phase: "read-file", done: base + p.done, total }));
      base += file.size;
      inputs.push({ name: file.name, format, bytes });
    }
    progress({ phase: "import", done: 0, total });
    // A preview starts from empty lists, as a fresh database does.
    for (const name of lists.keys()) workspace.setList(name, []);
    lists = new Map();
    const result = workspace.import(
      { data_source: dataSource, options: { mappings: mappings ?? {}, list_unmatched: true } },
      inputs,
    );
    for (const change of result.lists) {
      const members = change.added;
      workspace.setList(change.list, members);
      lists.set(change.list, members);
    }
    unmatched = result.report.unmatched ?? [];
    const report = { ...result.report, unmatched: undefined };
    const segments = Object.values(report.segments);
    const names = [...new Set(segments.map((s) => s.list))].filter((l) => lists.has(l));
    progress({ phase: "import", done: total, total });
    return {
      report,
      lists: result.lists.map((c) => ({ list: c.list, members: c.members })),
      overlap: overlap(names),
      unmatchedTotal: unmatched.length,
      unmatchedReasons: [...new Set(unmatched.map((u) => u.reason))].sort(),
    };
  },

  async unmatched({ offset, limit, reason }) {
    const rows = reason ? unmatched.filter((u) => u.reason === reason) : unmatched;
    return { total: rows.length, rows: rows.slice(offset, offset + limit) };
  },

  async preview({ rule, now, breakdown, sample }) {
    if (!workspace) throw Object.assign(new Error("load a recipients file first"), { kind: "request" });
    const started = performance.now();
    const preview = workspace.previewRule({ rule, now, breakdown: breakdown || null, sample: sample ?? 10, top_k: 12 });
    preview.millis = performance.now() - started;
    return preview;
  },

  async export({ spec }) {
    if (!workspace) throw Object.assign(new Error("load a recipients file first"), { kind: "request" });
    return workspace.export(spec, null);
  },
};

self.onmessage = async (event) => {
  const { id, op, ...args } = event.data;
  const progress = (p) => self.postMessage({ id, progress: { phase: p.phase, done: p.done, total: p.total } });
  try {
    await ready;
    const result = await ops[op](args, progress);
    const transfer = op === "export" ? result.files.map((f) => f.bytes.buffer) : [];
    self.postMessage({ id, ok: result }, transfer);
  } catch (e) {
    const error = { message: String(e?.message ?? e) };
    for (const key of ["kind", "file", "line", "column", "span", "reason"]) {
      if (e && e[key] !== undefined) error[key] = e[key];
    }
    self.postMessage({ id, error });
  }
};
