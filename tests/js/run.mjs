// Runs the steps of <dir>/steps.json through the Node build of the `js` front door
// (target/js/nodejs, built by `make js`) and prints one JSON line: an array with one outcome per
// step, `{"ok": result}` or `{"error": {...}}`. tests/it/js_node.rs runs the same steps
// natively and compares.
//
// Usage: node tests/js/run.mjs <dir>
//
// A step is {"op": ..., ...}: loadRecipients / loadLinks {name, file, options?, progress?},
// setList {name, members}, import {spec, files: [{name, format, file}]},
// export {spec, snapshot?}, previewRule {spec}, ruleSql {spec}, importPreview {spec, files},
// unmatchedPage {offset, limit, reason?}, formatOfName {name}. `file` names a file in <dir>.
// In the output, every Uint8Array becomes {"hex": "..."}; an error becomes
// {"is_error": <instanceof Error>, "message": ..., ...its own enumerable properties}; a load
// with `progress: true` adds {"progress": [events]} next to "ok".

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const wasm = require(new URL("../../target/js/nodejs/audlink_wasm.js", import.meta.url).pathname);

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node tests/js/run.mjs <dir>");
  process.exit(2);
}
const steps = JSON.parse(readFileSync(join(dir, "steps.json"), "utf8"));
const bytesOf = (file) => new Uint8Array(readFileSync(join(dir, file)));

const workspace = new wasm.Workspace();

function run(step) {
  switch (step.op) {
    case "loadRecipients":
    case "loadLinks": {
      const events = [];
      const progress = step.progress ? (event) => events.push({ ...event }) : undefined;
      const ok = workspace[step.op](step.name, bytesOf(step.file), step.options, progress);
      return step.progress ? { ok, progress: events } : { ok };
    }
    case "setList":
      return { ok: workspace.setList(step.name, step.members) };
    case "import": {
      const files = step.files.map((f) => ({ name: f.name, format: f.format, bytes: bytesOf(f.file) }));
      return { ok: workspace.import(step.spec, files) };
    }
    case "importPreview": {
      const files = step.files.map((f) => ({ name: f.name, format: f.format, bytes: bytesOf(f.file) }));
      return { ok: workspace.importPreview(step.spec, files) };
    }
    case "unmatchedPage":
      return { ok: workspace.unmatchedPage(step.offset, step.limit, step.reason) };
    case "formatOfName":
      return { ok: wasm.formatOfName(step.name) };
    case "export":
      return { ok: workspace.export(step.spec, step.snapshot) };
    case "previewRule":
      return { ok: workspace.previewRule(step.spec) };
    case "ruleSql":
      return { ok: wasm.ruleSql(step.spec) };
    default:
      throw new Error(`unknown step ${step.op}`);
  }
}

const outcomes = steps.map((step) => {
  try {
    return run(step);
  } catch (e) {
    const own = Object.fromEntries(Object.keys(e).map((key) => [key, e[key]]));
    return { error: { is_error: e instanceof Error, message: e.message, ...own } };
  }
});

const hex = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
process.stdout.write(
  JSON.stringify(outcomes, (_key, value) => (value instanceof Uint8Array ? { hex: hex(value) } : value)) + "\n",
);
