// Embeds the plain ABI module (wasm/ABI.md) with nothing but WebAssembly.instantiate, the way
// any runtime would: checks that it imports nothing, puts each payload in a buffer from
// audlink_alloc (written in chunks, as a host streaming a file would), writes the request head,
// calls, and writes the response bytes out.
// Usage: node tests/js/abi.mjs MODULE.wasm DIR RESPONSE.bin
//   DIR holds request.json and payload-0.bin, payload-1.bin, … (as many as exist).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export async function instantiate(wasmPath) {
  const module = await WebAssembly.compile(readFileSync(wasmPath));
  const imports = WebAssembly.Module.imports(module);
  if (imports.length !== 0) {
    throw new Error(`the module imports ${JSON.stringify(imports)}; ABI.md says it imports nothing`);
  }
  const instance = await WebAssembly.instantiate(module, {});
  if (instance.exports.audlink_abi_version() !== 1) throw new Error('expected ABI version 1');
  return instance.exports;
}

export function readRequest(dir) {
  const json = readFileSync(`${dir}/request.json`);
  const payloads = [];
  while (existsSync(`${dir}/payload-${payloads.length}.bin`)) {
    payloads.push(readFileSync(`${dir}/payload-${payloads.length}.bin`));
  }
  return { json, payloads };
}

const CHUNK = 1 << 16;

function alloc(exports, len) {
  const ptr = exports.audlink_alloc(len) >>> 0;
  if (ptr === 0) throw new Error(`audlink_alloc(${len}) refused: memory limit`);
  return ptr;
}

// Steps 2–4 of ABI.md "Calling it"; returns a copy of the response bytes.
export function call(exports, { json, payloads }) {
  const { memory } = exports;
  const table = payloads.map((bytes) => {
    const ptr = alloc(exports, bytes.length);
    for (let at = 0; at < bytes.length; at += CHUNK) {
      const chunk = bytes.subarray(at, Math.min(at + CHUNK, bytes.length));
      new Uint8Array(memory.buffer, ptr + at, chunk.length).set(chunk);
    }
    return [ptr, bytes.length];
  });
  const head = new Uint8Array(16 + json.length + 8 * table.length);
  const view = new DataView(head.buffer);
  head.set(new TextEncoder().encode('ALNQ'), 0);
  view.setUint32(4, 1, true);
  view.setUint32(8, json.length, true);
  view.setUint32(12, table.length, true);
  head.set(json, 16);
  table.forEach(([ptr, len], i) => {
    view.setUint32(16 + json.length + 8 * i, ptr, true);
    view.setUint32(16 + json.length + 8 * i + 4, len, true);
  });
  const headPtr = alloc(exports, head.length);
  new Uint8Array(memory.buffer, headPtr, head.length).set(head);
  const resp = exports.audlink_call(headPtr, head.length) >>> 0;
  exports.audlink_free(headPtr, head.length);
  const out = new DataView(memory.buffer);
  const magic = new TextDecoder().decode(new Uint8Array(memory.buffer, resp, 4));
  if (magic !== 'ALNR') throw new Error(`response magic ${magic}`);
  const total = out.getUint32(resp + 12, true);
  return new Uint8Array(memory.buffer, resp, total).slice();
}

// Status and the response JSON.
export function parse(response) {
  const view = new DataView(response.buffer, response.byteOffset, response.length);
  const jsonLen = view.getUint32(16, true);
  return {
    status: view.getUint32(8, true),
    json: JSON.parse(new TextDecoder().decode(response.subarray(20, 20 + jsonLen))),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [wasmPath, dir, responsePath] = process.argv.slice(2);
  const exports = await instantiate(wasmPath);
  const response = call(exports, readRequest(dir));
  writeFileSync(responsePath, response);
  const { status, json } = parse(response);
  console.log(JSON.stringify({ status, keys: Object.keys(json) }));
}
