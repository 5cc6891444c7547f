// int8 graphs rewritten into standard fp32 operators at load, the file's int8 weights kept: a port
// of edgeinfer/dequantize.py.
//
// int8 files run onnxruntime's own int8 operators (com.microsoft): `DynamicQuantizeLSTM` for
// LSTMs, `MatMulIntegerToFloat` in a decomposed sequence graph. Natively they are the faster form,
// but onnxruntime-web's wasm build has no 8-bit dot-product instruction: there its int8 LSTM runs
// 2.4-3.3x slower than the same LSTM in fp32 (docs/speed.md). `dequantizeGraph` rewrites
//
// - `DynamicQuantizeLSTM(X, W, R, B, ..., W_scale, W_zero_point, R_scale, R_zero_point)` into
//   `LSTM(X, Transpose((Cast(W) - Cast(W_zero_point)) * W_scale), ...)`, the same for R;
// - `MatMulIntegerToFloat(A, B, a_scale, b_scale, a_zero, b_zero, bias)` into
//   `MatMul((Cast(A) - Cast(a_zero)) * a_scale, (Cast(B) - Cast(b_zero)) * b_scale) + bias`.
//
// The weights' chains read only initializers, so onnxruntime folds them once when it creates the
// session: the file (and its download) keeps the int8 weights, the session holds fp32 ones. An
// LSTM's activations are then no longer quantized (its answers move by less than the int8
// tolerance: tests/web checks it against Python in Node and Chromium); a decomposed graph
// quantizes its activations with its own nodes, so only float rounding differs.
//
// Every other field is copied byte for byte; a node this cannot rewrite for certain (two
// directions, an unknown weight type) is left as it is. Nested graphs (a Scan's body) too.

import { protoFields, tensorHeader } from "./fileformat.js";

const GRAPH_FIELD = 7; // ModelProto.graph
const NODE_FIELD = 1, INITIALIZER_FIELD = 5; // GraphProto
const N_INPUT = 1, N_OUTPUT = 2, N_NAME = 3, N_OP_TYPE = 4, N_ATTRIBUTE = 5, N_DOMAIN = 7; // NodeProto
const A_G = 6, A_GRAPHS = 11; // AttributeProto: a graph, graphs
const INT8 = 3, UINT8 = 2, FLOAT = 1;
const utf8 = new TextDecoder("utf-8");
const encoder = new TextEncoder();

/** @param {number} n a non-negative integer below 2^53 @returns {number[]} */
function varint(n) {
  const out = [];
  while (n >= 128) {
    out.push((n % 128) + 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** A length-delimited field. @param {number} field @param {Uint8Array} bytes */
function lengthField(field, bytes) {
  return concat([Uint8Array.from([...varint(field * 8 + 2), ...varint(bytes.length)]), bytes]);
}

/** A varint field. @param {number} field @param {number} value */
function varintField(field, value) {
  return Uint8Array.from([...varint(field * 8), ...varint(value)]);
}

/** @param {number} field @param {string} text */
const stringField = (field, text) => lengthField(field, encoder.encode(text));

/** @param {Uint8Array[]} parts */
function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** An AttributeProto of type INT (2). @param {string} name @param {number} value */
const intAttribute = (name, value) => concat([stringField(1, name), varintField(3, value), varintField(20, 2)]);

/** An AttributeProto of type INTS (7). @param {string} name @param {number[]} values */
const intsAttribute = (name, values) => concat([stringField(1, name), ...values.map((v) => varintField(8, v)), varintField(20, 7)]);

/**
 * A NodeProto of the default domain.
 * @param {string} op @param {string[]} inputs @param {string[]} outputs @param {Uint8Array[]} [attributes]
 */
function node(op, inputs, outputs, attributes = []) {
  return concat([
    ...inputs.map((i) => stringField(N_INPUT, i)),
    ...outputs.map((o) => stringField(N_OUTPUT, o)),
    stringField(N_OP_TYPE, op),
    ...attributes.map((a) => lengthField(N_ATTRIBUTE, a)),
  ]);
}

/** @param {import("./fileformat.js").ProtoField} f @returns {Uint8Array | null} */
const bytesOf = (f) => (f.value instanceof Uint8Array ? f.value : null);

/**
 * The graph's initializers: name -> {dims, type}.
 * @param {import("./fileformat.js").ProtoField[]} graph
 */
function initializers(graph) {
  /** @type {Map<string, {dims: number[], type: number}>} */
  const found = new Map();
  for (const f of graph) {
    const value = bytesOf(f);
    if (f.number !== INITIALIZER_FIELD || !value) continue;
    const { name, dims, dtype } = tensorHeader(protoFields(value));
    found.set(name, { dims, type: dtype });
  }
  return found;
}

/** A node's string fields of one number. @param {import("./fileformat.js").ProtoField[]} fields @param {number} number */
function strings(fields, number) {
  /** @type {string[]} */
  const out = [];
  for (const f of fields) {
    const v = bytesOf(f);
    if (f.number === number && v) out.push(utf8.decode(v));
  }
  return out;
}

/** A field encoded again as it was read. @param {import("./fileformat.js").ProtoField} f @param {Uint8Array} message */
const original = (f, message) => message.subarray(f.start, f.end);

/** Rewrites the nodes of one model, naming new tensors uniquely (as edgeinfer/dequantize.py). */
class Rewriter {
  count = 0;

  /** @param {string} tag */
  name(tag) {
    return `edgeinfer.fp32.${this.count}.${tag}`;
  }

  /**
   * Nodes for (Cast(q) - Cast(zero)) * scale; the result's name.
   * @param {Uint8Array[]} out @param {string} q @param {string} scale @param {string} zero @param {string} tag
   */
  dequantized(out, q, scale, zero, tag) {
    let value = this.name(`${tag}.float`);
    out.push(node("Cast", [q], [value], [intAttribute("to", FLOAT)]));
    if (zero) {
      const zeroF = this.name(`${tag}.zero`), centred = this.name(`${tag}.centred`);
      out.push(node("Cast", [zero], [zeroF], [intAttribute("to", FLOAT)]));
      out.push(node("Sub", [value, zeroF], [centred]));
      value = centred;
    }
    const scaled = this.name(`${tag}.scaled`);
    out.push(node("Mul", [value, scale], [scaled]));
    return scaled;
  }

  /**
   * A DynamicQuantizeLSTM node as LSTM over dequantized weights, or null when it cannot be.
   * @param {import("./fileformat.js").ProtoField[]} fields @param {Map<string, {dims: number[], type: number}>} inits
   */
  lstm(fields, inits) {
    const inputs = strings(fields, N_INPUT);
    // X, W, R, B, sequence_lens, initial_h, initial_c, P, W_scale, W_zero_point, R_scale, R_zero_point
    if (inputs.length !== 12) return null;
    const [x, w, r, b, lens, h0, c0, p, wScale, wZero, rScale, rZero] = inputs;
    for (const [weight, scale, zero] of [[w, wScale, wZero], [r, rScale, rZero]]) {
      const wi = inits.get(weight), si = inits.get(scale), zi = inits.get(zero);
      if (!wi || !si || !zi) return null;
      if (wi.dims.length !== 3 || wi.dims[0] !== 1) return null; // one direction: (1, input, 4H)
      if (![INT8, UINT8].includes(wi.type) || zi.type !== wi.type || si.type !== FLOAT) return null;
      // a scale per tensor (1) or per gate unit (1, 4H): both broadcast as they are
      const perTensor = si.dims.length === 1 && si.dims[0] === 1;
      const perUnit = si.dims.length === 2 && si.dims[0] === 1 && si.dims[1] === wi.dims[2];
      if (!(perTensor || perUnit) || zi.dims.join(",") !== si.dims.join(",")) return null;
    }
    /** @type {Uint8Array[]} */
    const out = [];
    const weights = [];
    for (const [weight, scale, zero, tag] of [[w, wScale, wZero, "W"], [r, rScale, rZero, "R"]]) {
      const scaled = this.dequantized(out, weight, scale, zero, tag);
      const transposed = this.name(`${tag}.weight`);
      out.push(node("Transpose", [scaled], [transposed], [intsAttribute("perm", [0, 2, 1])]));
      weights.push(transposed);
    }
    const args = [x, ...weights, b, lens, h0, c0, p];
    while (args.length && args[args.length - 1] === "") args.pop();
    // the node's outputs, name and attributes (LSTM's own: hidden_size, activations, clip, ...) as they are
    const kept = fields.filter((f) => [N_OUTPUT, N_NAME, N_ATTRIBUTE].includes(f.number) && bytesOf(f))
      .map((f) => lengthField(f.number, /** @type {Uint8Array} */ (bytesOf(f))));
    out.push(concat([...args.map((i) => stringField(N_INPUT, i)), ...kept, stringField(N_OP_TYPE, "LSTM")]));
    this.count += 1;
    return out;
  }

  /**
   * A MatMulIntegerToFloat node as MatMul of the dequantized operands (+ bias), or null.
   * @param {import("./fileformat.js").ProtoField[]} fields
   */
  matmul(fields) {
    const [a, b, aScale, bScale, aZero, bZero, bias] = [...strings(fields, N_INPUT), "", "", "", "", "", "", ""];
    const outputs = strings(fields, N_OUTPUT);
    if (!(a && b && aScale && bScale) || outputs.length !== 1) return null;
    /** @type {Uint8Array[]} */
    const out = [];
    const aF = this.dequantized(out, a, aScale, aZero, "A"), bF = this.dequantized(out, b, bScale, bZero, "B");
    if (bias) {
      const product = this.name("product");
      out.push(node("MatMul", [aF, bF], [product]));
      out.push(node("Add", [product, bias], outputs));
    } else {
      out.push(node("MatMul", [aF, bF], outputs));
    }
    this.count += 1;
    return out;
  }

  /**
   * A GraphProto with its int8 nodes rewritten (nested graphs too), or null if unchanged.
   * @param {Uint8Array} data @param {Map<string, {dims: number[], type: number}>} outer
   * @returns {Uint8Array | null}
   */
  graph(data, outer) {
    const fields = protoFields(data);
    const inits = new Map([...outer, ...initializers(fields)]);
    let changed = false;
    const parts = fields.map((f) => {
      const value = bytesOf(f);
      if (f.number !== NODE_FIELD || !value) return original(f, data);
      const nodeFields = protoFields(value);
      const op = strings(nodeFields, N_OP_TYPE)[0] ?? "", domain = strings(nodeFields, N_DOMAIN)[0] ?? "";
      /** @type {Uint8Array[] | null} */
      let nodes = null;
      if (domain === "com.microsoft" && op === "DynamicQuantizeLSTM") nodes = this.lstm(nodeFields, inits);
      else if (domain === "com.microsoft" && op === "MatMulIntegerToFloat") nodes = this.matmul(nodeFields);
      else {
        const inner = this.subgraphs(value, nodeFields, inits);
        if (inner) nodes = [inner];
      }
      if (!nodes) return original(f, data);
      changed = true;
      return concat(nodes.map((n) => lengthField(NODE_FIELD, n)));
    });
    return changed ? concat(parts) : null;
  }

  /**
   * The node with the graphs in its attributes rewritten, or null if none changed.
   * @param {Uint8Array} data @param {import("./fileformat.js").ProtoField[]} fields
   * @param {Map<string, {dims: number[], type: number}>} inits
   */
  subgraphs(data, fields, inits) {
    let changed = false;
    const parts = fields.map((f) => {
      const value = bytesOf(f);
      if (f.number !== N_ATTRIBUTE || !value) return original(f, data);
      const attribute = protoFields(value);
      const rewritten = attribute.map((a) => {
        const g = bytesOf(a);
        const inner = g && (a.number === A_G || a.number === A_GRAPHS) ? this.graph(g, inits) : null;
        if (!inner) return original(a, value);
        changed = true;
        return lengthField(a.number, inner);
      });
      return lengthField(N_ATTRIBUTE, concat(rewritten));
    });
    return changed ? concat(parts) : null;
  }
}

/**
 * A serialized model with its onnxruntime int8 operators rewritten into standard ONNX operators
 * reading the same int8 weights (see the module), or null when it has none that can be. The model
 * was validated before (a file's checksums and layout): this only reads it.
 * @param {Uint8Array} model
 * @returns {Uint8Array | null}
 */
export function dequantizeGraph(model) {
  const rewriter = new Rewriter();
  let changed = false;
  const parts = protoFields(model).map((f) => {
    const value = bytesOf(f);
    const graph = f.number === GRAPH_FIELD && value ? rewriter.graph(value, new Map()) : null;
    if (!graph) return original(f, model);
    changed = true;
    return lengthField(GRAPH_FIELD, graph);
  });
  return changed ? concat(parts) : null;
}
