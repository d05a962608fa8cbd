// The page's Web Worker: owns the WebAssembly core (the `js` build in ./pkg, made by `make js`)
// and every piece of loaded data, so the page stays responsive while files load and rules run.
//
// Protocol: the page posts {id, op, ...args}; the worker answers {id, ok: result} or
// {id, error: {message, kind, file, line, column, span, reason}}, and may post
// {id, progress: {phase, done, total}} before the answer. Ops:
//   load {kind: "recipients" | "links", file: File}         → LoadSummary
//   inspect {file: File}                                    → {format, columns}
//   import {dataSource, files: [{file, format}], mappings}   → ImportPreview (+ timings)
//   unmatched {offset, limit, reason}                       → {total, rows}
//   preview {rule, now, breakdown, sample}                  → RulePreview
//   export {spec}                                           → ExportResult (file bytes transferred)
// The data source travels with each op that needs it; the lists an import produces and its
// unmatched identifiers stay in the WebAssembly workspace (nothing per identifier is copied).

import init, { Workspace, formatOfName } from "./pkg/audlink_wasm.js";

const ready = init();
let workspace = null;
/** Lists the last import produced (kept in the workspace); emptied before the next import. */
let lists = [];

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
    const total = files.reduce((n, f) => n + f.file.size, 0);
    let base = 0;
    for (const { file, format } of files) {
      const bytes = await bytesOf(file, (p) => progress({ phase: "read-file", done: base + p.done, total }));
      base += file.size;
      inputs.push({ name: file.name, format, bytes });
    }
    progress({ phase: "import", done: 0, total });
    const started = performance.now();
    // A preview starts from empty lists, as a fresh database does.
    for (const name of lists) workspace.setList(name, []);
    const view = workspace.importPreview(
      { data_source: dataSource, options: { mappings: mappings ?? {}, list_unmatched: true } },
      inputs,
    );
    lists = view.lists.map((l) => l.list);
    view.timings = { core: performance.now() - started };
    progress({ phase: "import", done: total, total });
    return view;
  },

  async unmatched({ offset, limit, reason }) {
    if (!workspace) return { total: 0, rows: [] };
    return workspace.unmatchedPage(offset, limit, reason || null);
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
