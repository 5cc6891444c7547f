// Users' own models (format 7) through the JavaScript runtime, for a Python test to compare with
// the Python runtime's answers:
//
//   node web/test/user/roundtrip.mjs MANIFEST.json OUT.json
//
// MANIFEST: {"models": [{"file": "/abs/path.onnx", "inputs": [...], "lengths": [...] | null}]}
// with `inputs` a nested array (N, T, F) of raw floats for a model that reads feature rows (the
// runtime normalises them), or (N, T) of token ids for a words or characters model, and
// `lengths` N whole numbers (each row's valid steps, 1..T) or null (every row all T steps).
//
// OUT: {"results": [{"file", "predict", "steps", "feed", "snapshot"}, ...]}, one per model, in
// the manifest's order, every number a float32 value written as a JSON number:
// - predict: the answers (class probabilities, or values) of the sequence graph on all N rows at
//   once from the initial state (Model.sequenceLogits with the lengths, then `answers`): (N, C),
//   or (N, T, C) for a model that answers every step;
// - steps: for each row n, a new batch-1 stream stepped through its first lengths[n] (or T)
//   steps, the answers after every step: (N, T_n, C), ragged;
// - feed: for each row n, a new stream that reads those steps in one Stream.feed: the answers
//   after it, (N, C);
// - snapshot: row 0 stepped for its first floor(T_0 / 2) steps, the stream's snapshot bytes
//   restored into a new stream, which steps through the rest: the final answers, (C).
//
// Exit status 0 on success; on any error one line on stderr and exit status 1. Run with no
// arguments by `node --test test/` (which runs every file under test/), it does nothing.

import { readFileSync, writeFileSync } from "node:fs";

import { answers, load, readsTokens } from "../../src/index.js";

/**
 * @typedef {{file: string, inputs: unknown, lengths: unknown}} Entry
 * @typedef {{file: string, predict: unknown, steps: number[][][], feed: number[][], snapshot: number[]}} Result
 */

/** @param {string} message @returns {never} */
function fail(message) {
  throw new Error(message);
}

/**
 * A nested array's values flattened, checked to be of the shape `depth` levels deep and rectangular.
 * @param {unknown} nested @param {number} depth @param {(v: unknown) => boolean} ok @param {string} what
 * @returns {{values: unknown[], dims: number[]}}
 */
function flatten(nested, depth, ok, what) {
  /** @type {number[]} */
  const dims = [];
  let level = nested;
  for (let d = 0; d < depth; d++) {
    if (!Array.isArray(level) || !level.length) fail(`${what} must be a non-empty nested array of ${depth} levels`);
    dims.push(level.length);
    level = level[0];
  }
  /** @type {unknown[]} */
  const values = [];
  /** @param {unknown} node @param {number} d */
  const walk = (node, d) => {
    if (d === depth) {
      if (!ok(node)) fail(`${what} holds ${JSON.stringify(node)}; expected ${depth === 3 ? "numbers" : "whole numbers"}`);
      values.push(node);
      return;
    }
    if (!Array.isArray(node) || node.length !== dims[d]) fail(`${what} is not rectangular: expected ${dims.join(" x ")}`);
    for (const child of node) walk(child, d + 1);
  };
  walk(nested, 0);
  return { values, dims };
}

/** Rows of C values as nested arrays. @param {Float32Array} data @param {number} c @returns {number[][]} */
function rows(data, c) {
  const out = [];
  for (let i = 0; i < data.length; i += c) out.push(Array.from(data.subarray(i, i + c)));
  return out;
}

/** @param {Entry} entry @returns {Promise<Result>} */
async function run(entry) {
  if (entry === null || typeof entry !== "object" || typeof entry.file !== "string") {
    fail("each manifest model needs a \"file\" (a path)");
  }
  const model = await load(entry.file, { numThreads: 1 });
  const spec = model.spec, c = model.classes, tokens = readsTokens(spec);
  const { values, dims } = tokens
    ? flatten(entry.inputs, 2, (v) => Number.isInteger(v), `${entry.file}: inputs`)
    : flatten(entry.inputs, 3, (v) => typeof v === "number", `${entry.file}: inputs`);
  const [n, t] = dims, f = tokens ? 1 : dims[2];
  const data = tokens ? Int32Array.from(/** @type {number[]} */ (values)) : Float32Array.from(/** @type {number[]} */ (values));
  const lengths = entry.lengths ?? null;
  if (lengths !== null && !(Array.isArray(lengths) && lengths.length === n
    && lengths.every((v) => Number.isInteger(v) && v >= 1 && v <= t))) {
    fail(`${entry.file}: lengths must be null or ${n} whole numbers from 1 to ${t}`);
  }
  const valid = (/** @type {number} */ r) => (lengths ? /** @type {number[]} */ (lengths)[r] : t);
  /** Row r's first `end` steps from `start`, as one step's input or a feed chunk. */
  const row = (/** @type {number} */ r, /** @type {number} */ start, /** @type {number} */ end) =>
    data.subarray((r * t + start) * f, (r * t + end) * f);
  /** @param {import("../../src/stream.js").Stream} s @param {number} r @param {number} at */
  const step = (s, r, at) => s.step(tokens ? Number(data[r * t + at]) : row(r, at, at + 1));

  const out = await model.sequenceLogits({ data, dims: tokens ? [n, t] : [n, t, f] }, lengths);
  const predicted = rows(answers(spec, out.data), c);
  const predict = out.dims.length === 3 ? Array.from({ length: n }, (_, r) => predicted.slice(r * t, (r + 1) * t)) : predicted;

  const steps = [], feed = [];
  for (let r = 0; r < n; r++) {
    const s = model.stream();
    const seen = [];
    for (let at = 0; at < valid(r); at++) seen.push(Array.from(await step(s, r, at)));
    steps.push(seen);
    const fed = model.stream();
    const chunk = tokens ? Array.from(row(r, 0, valid(r))) : { data: row(r, 0, valid(r)), dims: [valid(r), f] };
    feed.push(Array.from(await fed.feed(chunk)));
  }

  const half = Math.floor(valid(0) / 2);
  const first = model.stream();
  for (let at = 0; at < half; at++) await step(first, 0, at);
  const bytes = first.snapshot();
  const second = model.stream();
  await second.restore(bytes);
  let last = null;
  for (let at = half; at < valid(0); at++) last = await step(second, 0, at);
  await model.release();
  return { file: entry.file, predict, steps, feed, snapshot: Array.from(/** @type {Float32Array} */ (last)) };
}

async function main() {
  const args = process.argv.slice(2);
  if (!args.length && process.env.NODE_TEST_CONTEXT) return; // run as a file under test/ by `node --test`
  if (args.length !== 2) fail("usage: node web/test/user/roundtrip.mjs MANIFEST.json OUT.json");
  const manifest = JSON.parse(readFileSync(args[0], "utf8"));
  if (manifest === null || typeof manifest !== "object" || !Array.isArray(manifest.models)) {
    fail(`${args[0]}: expected {"models": [...]}`);
  }
  const results = [];
  for (const entry of manifest.models) results.push(await run(entry));
  writeFileSync(args[1], JSON.stringify({ results }));
}

main().catch((err) => {
  const what = err instanceof Error ? `${err.name === "Error" ? "" : `${err.name}: `}${err.message}` : String(err);
  process.stderr.write(`roundtrip: ${what.replace(/\s*\n\s*/g, " ")}\n`);
  process.exit(1);
});
