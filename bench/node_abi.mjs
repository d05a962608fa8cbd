// Times one ABI request (wasm/ABI.md) in Node, with nothing but WebAssembly.instantiate.
// Usage: node bench/node_abi.mjs DIR   (DIR from `cargo bench -p audlink-host --bench sandbox -- N --write DIR`)
import { instantiate, readRequest, call, parse } from '../tests/js/abi.mjs';

const dir = process.argv[2];
const exports = await instantiate(`${dir}/guest.wasm`);
const request = readRequest(dir);
const t0 = performance.now();
const response = call(exports, request);
const seconds = (performance.now() - t0) / 1000;
const { status, json } = parse(response);
if (status !== 0) throw new Error(`error response: ${JSON.stringify(json.error)}`);
const totals = json.results[1].report.totals;
console.log(`node ${process.version}: ${seconds.toFixed(3)} s (copy in + call + copy out); ` +
  `response ${response.length} bytes; ${totals.units} units, ${totals.matched} matched; ` +
  `memory ${(exports.memory.buffer.byteLength / 2 ** 20).toFixed(0)} MiB`);
