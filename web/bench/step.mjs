// Per-step latency of Stream.step in Node (1 thread), per built-in model, on the backend `load`
// picks (onnxruntime-node when installed, else onnxruntime-web's wasm; EDGEINFER_WEB_BACKEND=wasm
// or =node chooses).
//
//   node bench/step.mjs [--warmup 2000] [--steps 5000] [--no-dequantize] [--json] [MODEL.onnx ...]
//
// --no-dequantize: on wasm, run the int8 operators as they are (the default rewrites them into
// fp32 ones over the dequantized weights, the faster there; see src/dequantize.js).
//
// Each model: one batch-1 stream, `warmup` steps untimed (the first wasm session stalls now and
// then for its first few thousand calls), then `steps` steps each timed with performance.now().
// Inputs are fixed and cycle: feature rows of a smooth pattern, or token ids 2, 3, ... .

import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";

import { load, readsTokens, runtimeVersions } from "../src/index.js";

const args = process.argv.slice(2);
/** @param {string} name @param {number} fallback */
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args.splice(i, 2)[1]) : fallback;
};
const warmup = option("--warmup", 2000), steps = option("--steps", 5000);
const json = args.includes("--json");
const keepInt8 = args.includes("--no-dequantize");
const paths = args.filter((a) => !a.startsWith("--"));
const models = fileURLToPath(new URL("../../edgeinfer/models/", import.meta.url));
const files = paths.length ? paths : ["digits", "sentiment", "characters"].map((n) => join(models, `${n}.onnx`));

/** @param {number[]} sorted @param {number} q */
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

const results = [];
let backendUsed = "";
for (const file of files) {
  const model = await load(file, { numThreads: 1, ...(keepInt8 ? { dequantize: false } : {}) });
  backendUsed = model.backend;
  const stream = model.stream();
  const f = model.spec.input_size, tokens = readsTokens(model.spec);
  const vocab = tokens ? /** @type {any} */ (model.spec.input).vocab.length + 2 : 0;
  const rows = Array.from({ length: 64 }, (_, i) => Float32Array.from({ length: f }, (_, k) => Math.sin(0.1 * i + 0.3 * k)));
  /** @param {number} i */
  const input = (i) => (tokens ? 2 + (i % (vocab - 2)) : rows[i % rows.length]);
  for (let i = 0; i < warmup; i++) await stream.step(input(i));
  const times = new Float64Array(steps);
  const start = performance.now();
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await stream.step(input(i));
    times[i] = performance.now() - t0;
  }
  const total = performance.now() - start;
  const sorted = [...times].sort((a, b) => a - b);
  const us = (/** @type {number} */ ms) => Math.round(ms * 1000 * 10) / 10;
  results.push({ model: basename(file, ".onnx"), file, precision: model.spec.precision, cell: model.spec.cell,
    layers: model.spec.layers, hidden: model.spec.hidden, warmup, steps, median_us: us(quantile(sorted, 0.5)),
    p90_us: us(quantile(sorted, 0.9)), p99_us: us(quantile(sorted, 0.99)), mean_us: us(total / steps) });
  await model.release();
}
if (json) {
  console.log(JSON.stringify({ node: process.version, backend: backendUsed, onnxruntime: runtimeVersions(), threads: 1, results }, null, 2));
} else {
    const version = backendUsed === "node" ? `onnxruntime-node ${runtimeVersions().node}` : `onnxruntime-web ${runtimeVersions().web}`;
  const how = backendUsed === "wasm" ? (keepInt8 ? ", int8 operators as they are" : ", int8 operators dequantized") : "";
  console.log(`node ${process.version}, ${version} (${backendUsed}${how}, 1 thread); µs per step after ${warmup} warm-up steps`);
  console.log("model        precision cell  layers x hidden    median      p90      p99     mean");
  for (const r of results) {
    console.log(`${r.model.padEnd(12)} ${r.precision.padEnd(9)} ${r.cell.padEnd(5)} ${`${r.layers} x ${r.hidden}`.padEnd(16)}`
      + [r.median_us, r.p90_us, r.p99_us, r.mean_us].map((v) => String(v).padStart(9)).join(""));
  }
}
