// Embeds the plain ABI module (wasm/ABI.md) with nothing but WebAssembly.instantiate, the way
// any runtime would: checks that it imports nothing, writes a request into its memory, calls it
// and writes the response bytes out.
// Usage: node tests/js/abi.mjs MODULE.wasm REQUEST.bin RESPONSE.bin
import { readFileSync, writeFileSync } from 'node:fs';

const [wasmPath, requestPath, responsePath] = process.argv.slice(2);
const bytes = readFileSync(wasmPath);
const module = await WebAssembly.compile(bytes);
const imports = WebAssembly.Module.imports(module);
if (imports.length !== 0) {
  throw new Error(`the module imports ${JSON.stringify(imports)}; ABI.md says it imports nothing`);
}
const instance = await WebAssembly.instantiate(module, {});
const { memory, audlink_abi_version, audlink_alloc, audlink_free, audlink_call } = instance.exports;
if (audlink_abi_version() !== 1) throw new Error(`ABI version ${audlink_abi_version()}, expected 1`);

const request = readFileSync(requestPath);
// The head (magic, version, JSON length, payload count) as ABI.md lays it out.
const head = new DataView(request.buffer, request.byteOffset, 16);
const magic = new TextDecoder().decode(request.subarray(0, 4));
if (magic !== 'ALNQ' || head.getUint32(4, true) !== 1) throw new Error('not an ABI 1 request');

const ptr = audlink_alloc(request.length) >>> 0;
if (ptr === 0) throw new Error('audlink_alloc refused the request size');
// Written in chunks, as a host streaming a file would.
const CHUNK = 1 << 16;
for (let at = 0; at < request.length; at += CHUNK) {
  const chunk = request.subarray(at, Math.min(at + CHUNK, request.length));
  new Uint8Array(memory.buffer, ptr + at, chunk.length).set(chunk);
}
const resp = audlink_call(ptr, request.length) >>> 0;
// Read the 16-byte header, then the whole response by its announced length.
const view = new DataView(memory.buffer);
const respMagic = new TextDecoder().decode(new Uint8Array(memory.buffer, resp, 4));
if (respMagic !== 'ALNR') throw new Error(`response magic ${respMagic}`);
const total = view.getUint32(resp + 12, true);
const response = new Uint8Array(memory.buffer, resp, total).slice();
audlink_free(ptr, request.length);
writeFileSync(responsePath, response);
// A summary for people: status and the JSON's top-level keys.
const jsonLen = view.getUint32(resp + 16, true);
const json = JSON.parse(new TextDecoder().decode(response.subarray(20, 20 + jsonLen)));
console.log(JSON.stringify({ status: view.getUint32(resp + 8, true), keys: Object.keys(json) }));
