// The fp32 route for int8 LSTMs (src/dequantize.js): which nodes are rewritten, what is kept byte
// for byte, and that the rewritten graph runs and answers as the int8 one does (within the
// tolerance models.test.js states against Python's numbers).

import assert from "node:assert/strict";
import { test } from "node:test";

import { load, parseModelFile } from "../src/index.js";
import { dequantizeGraph } from "../src/dequantize.js";
import { protoFields } from "../src/fileformat.js";
import { modelBytes } from "./helpers.js";

const utf8 = new TextDecoder();

/** The main graph's nodes (op type, domain) and initializer names of a serialized model. @param {Uint8Array} model */
function graphOf(model) {
  const graph = protoFields(model).find((f) => f.number === 7);
  assert.ok(graph && graph.value instanceof Uint8Array);
  const fields = protoFields(graph.value);
  const text = (/** @type {any[]} */ fs, /** @type {number} */ n) => {
    const f = fs.find((x) => x.number === n);
    return f ? utf8.decode(f.value) : "";
  };
  const nodes = fields.filter((f) => f.number === 1).map((f) => {
    const fs = protoFields(/** @type {Uint8Array} */ (f.value));
    return { op: text(fs, 4), domain: text(fs, 7), inputs: fs.filter((x) => x.number === 1).map((x) => utf8.decode(/** @type {Uint8Array} */ (x.value))) };
  });
  const initializers = fields.filter((f) => f.number === 5).map((f) => Buffer.from(/** @type {Uint8Array} */ (f.value)).toString("base64"));
  return { nodes, initializers, other: fields.filter((f) => ![1, 5].includes(f.number)).map((f) => f.number) };
}

test("DynamicQuantizeLSTM becomes LSTM over dequantized initializers; everything else is kept byte for byte", async () => {
  const file = await parseModelFile(modelBytes("characters"), "characters.onnx");
  for (const [what, bytes] of /** @type {const} */ ([["sequence", file.data], ["step", file.stepGraph]])) {
    const before = graphOf(bytes);
    const rewritten = dequantizeGraph(bytes);
    assert.ok(rewritten, what);
    const after = graphOf(rewritten);
    assert.equal(before.nodes.filter((n) => n.op === "DynamicQuantizeLSTM").length, 2, what);
    assert.equal(after.nodes.filter((n) => n.op === "DynamicQuantizeLSTM").length, 0, what);
    const lstms = after.nodes.filter((n) => n.op === "LSTM");
    assert.equal(lstms.length, 2, what);
    for (const l of lstms) assert.equal(l.domain, "", what);
    // ten folding nodes per LSTM (Cast, Cast, Sub, Mul, Transpose for W and for R), nothing else added
    assert.equal(after.nodes.length, before.nodes.length + 2 * 10, what);
    const ops = after.nodes.map((n) => n.op).filter((op) => !before.nodes.some((b) => b.op === op));
    assert.ok(ops.every((op) => ["LSTM", "Sub", "Mul", "Transpose", "Cast"].includes(op)), `${what}: ${ops}`);
    assert.deepEqual(after.initializers, before.initializers, `${what}: the int8 weights, untouched`);
    assert.deepEqual(after.other, before.other, what);
    // the rest of the model (metadata, opsets, the step graph in the metadata) byte for byte
    const rest = (/** @type {Uint8Array} */ m) => protoFields(m).filter((f) => f.number !== 7)
      .map((f) => Buffer.from(m.subarray(f.start, f.end)).toString("base64"));
    assert.deepEqual(rest(rewritten), rest(bytes), what);
  }
  // the sentiment file: its step graph (a GRU reading its int8 weights through Cast and Mul) has
  // nothing to rewrite; its decomposed sequence graph's MatMulIntegerToFloat nodes, in the Scan's
  // body too, become MatMul
  const sentiment = await parseModelFile(modelBytes("sentiment"), "sentiment.onnx");
  assert.equal(dequantizeGraph(sentiment.stepGraph), null);
  const before = allOps(sentiment.data), after = allOps(/** @type {Uint8Array} */ (dequantizeGraph(sentiment.data)));
  assert.equal(before.filter((op) => op === "MatMulIntegerToFloat").length, 12);
  assert.equal(after.filter((op) => op === "MatMulIntegerToFloat").length, 0);
  assert.equal(after.filter((op) => op === "MatMul").length, before.filter((op) => op === "MatMul").length + 12);
  assert.equal(after.filter((op) => op === "Scan").length, 2);
});

/** Every node's op type in a model, nested graphs included. @param {Uint8Array} model */
function allOps(model) {
  /** @type {string[]} */
  const found = [];
  /** @param {Uint8Array} graph */
  const walk = (graph) => {
    for (const f of protoFields(graph)) {
      if (f.number !== 1 || !(f.value instanceof Uint8Array)) continue;
      for (const n of protoFields(f.value)) {
        if (n.number === 4 && n.value instanceof Uint8Array) found.push(utf8.decode(n.value));
        if (n.number === 5 && n.value instanceof Uint8Array) {
          for (const a of protoFields(n.value)) if (a.number === 6 && a.value instanceof Uint8Array) walk(a.value);
        }
      }
    }
  };
  const graph = protoFields(model).find((f) => f.number === 7);
  if (graph && graph.value instanceof Uint8Array) walk(graph.value);
  return found;
}

test("the dequantized graphs run on the wasm backend, as the option says", async () => {
  const m = await load(modelBytes("digits"), { backend: "wasm", dequantize: true, name: "d.onnx" });
  const n = await load(modelBytes("digits"), { backend: "wasm", dequantize: false, name: "d.onnx" });
  assert.equal(m.dequantized, true);
  assert.equal(n.dequantized, false);
  const x = Float32Array.from({ length: 28 * 28 }, (_, i) => ((i * 37) % 256) / 255);
  const a = await m.predict({ data: x, dims: [28, 28] }), b = await n.predict({ data: x, dims: [28, 28] });
  let diff = 0;
  for (let i = 0; i < 10; i++) diff = Math.max(diff, Math.abs(a.data[i] - b.data[i]));
  assert.ok(diff < 0.05 && diff > 0, `|dequantized - int8| = ${diff}`); // close, and really another graph
});
