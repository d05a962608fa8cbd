// Times one ABI request (wasm/ABI.md) in Node, with nothing but WebAssembly.instantiate.
// Usage: node bench/node_abi.mjs DIR   (DIR from `cargo bench -p audlink-host --bench sandbox -- N --write DIR`)
import { readFileSync } from 'node:fs';

const dir = process.argv[2];
const wasm = readFileSync(`${dir}/guest.wasm`);
const request = readFileSync(`${dir}/request.bin`);
const { instance } = await WebAssembly.instantiate(wasm, {});
const { memory, audlink_alloc, audlink_call, audlink_abi_version } = instance.exports;
if (audlink_abi_version() !== 1) throw new Error('unexpected ABI version');

const t0 = performance.now();
const ptr = audlink_alloc(request.length) >>> 0;
if (ptr === 0) throw new Error('the module could not allocate the request');
new Uint8Array(memory.buffer, ptr, request.length).set(request);
const t1 = performance.now();
const resp = audlink_call(ptr, request.length) >>> 0;
const t2 = performance.now();
const view = new DataView(memory.buffer);
const status = view.getUint32(resp + 8, true);
const total = view.getUint32(resp + 12, true);
const jsonLen = view.getUint32(resp + 16, true);
const json = JSON.parse(new TextDecoder().decode(new Uint8Array(memory.buffer, resp + 20, jsonLen)));
if (status !== 0) throw new Error(`error response: ${JSON.stringify(json.error)}`);
const totals = json.results[1].report.totals;
console.log(`node ${process.version}: copy in ${((t1 - t0) / 1000).toFixed(3)} s, call ${((t2 - t1) / 1000).toFixed(3)} s, ` +
  `total ${((t2 - t0) / 1000).toFixed(3)} s; response ${total} bytes; ${totals.units} units, ${totals.matched} matched; ` +
  `memory ${(memory.buffer.byteLength / 2 ** 20).toFixed(0)} MiB`);
