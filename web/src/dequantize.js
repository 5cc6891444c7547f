// An fp32 LSTM for onnxruntime-web's wasm build, made at load from an int8 file's own weights.
//
// int8 files run their LSTMs as onnxruntime's `DynamicQuantizeLSTM` (com.microsoft): natively the
// faster form, but the wasm build has no 8-bit dot-product instruction, so there its int8 kernel
// runs 2.4-3.3x slower than the same LSTM in fp32 (docs/speed.md). This module rewrites a graph's
// `DynamicQuantizeLSTM` nodes into the standard `LSTM` reading its weights through
// `(Cast(W) - Cast(zero point)) * scale`, transposed to LSTM's layout. Those nodes read only
// initializers, so onnxruntime folds them once when it creates the session: the file (and the
// download) keeps its int8 weights, the session holds fp32 ones, and each step runs the fp32
// kernel. The answers are the int8 weights' without quantizing the activations: they differ from
// the native int8 kernel's by less than the int8 tolerance (tests/web checks it in Chromium).
//
// Only what is rewritten is touched: every other field of the model, graph and node is copied
// byte for byte. A node this cannot rewrite for certain (weights not initializers, two
// directions, an unknown weight type) is left as it is.

import { protoFields } from "./fileformat.js";

const GRAPH_FIELD = 7; // ModelProto.graph
const NODE_FIELD = 1, INITIALIZER_FIELD = 5; // GraphProto
const N_INPUT = 1, N_OUTPUT = 2, N_NAME = 3, N_OP_TYPE = 4, N_ATTRIBUTE = 5, N_DOMAIN = 7; // NodeProto
const T_DIMS = 1, T_DATA_TYPE = 2, T_NAME = 8; // TensorProto
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
    let name = "", type = 0;
    /** @type {number[]} */
    const dims = [];
    for (const t of protoFields(value)) {
      const v = bytesOf(t);
      if (t.number === T_NAME && v) name = utf8.decode(v);
      else if (t.number === T_DATA_TYPE && typeof t.value === "number") type = t.value;
      else if (t.number === T_DIMS && typeof t.value === "number") dims.push(t.value);
      else if (t.number === T_DIMS && v) { // packed dims
        let pos = 0;
        while (pos < v.length) {
          let value = 0, scale = 1, byte;
          do {
            byte = v[pos++];
            value += (byte & 0x7f) * scale;
            scale *= 128;
          } while (byte & 0x80 && pos < v.length);
          dims.push(value);
        }
      }
    }
    found.set(name, { dims, type });
  }
  return found;
}

/**
 * The nodes that replace one DynamicQuantizeLSTM node, or null when it cannot be rewritten.
 * @param {import("./fileformat.js").ProtoField[]} fields the node's fields
 * @param {Map<string, {dims: number[], type: number}>} inits
 * @param {number} index for unique names
 * @returns {Uint8Array[] | null}
 */
function rewriteNode(fields, inits, index) {
  /** @type {string[]} */
  const inputs = [];
  for (const f of fields) {
    const v = bytesOf(f);
    if (f.number === N_INPUT && v) inputs.push(utf8.decode(v));
  }
  // X, W, R, B, sequence_lens, initial_h, initial_c, P, W_scale, W_zero_point, R_scale, R_zero_point
  if (inputs.length !== 12) return null;
  const [x, w, r, b, lens, h0, c0, p, wScale, wZero, rScale, rZero] = inputs;
  for (const [weight, scale, zero] of [[w, wScale, wZero], [r, rScale, rZero]]) {
    const wi = inits.get(weight), si = inits.get(scale), zi = inits.get(zero);
    if (!wi || !si || !zi) return null;
    if (wi.dims.length !== 3 || wi.dims[0] !== 1) return null; // one direction: (1, input, 4H)
    if (![INT8, UINT8].includes(wi.type) || zi.type !== wi.type || si.type !== FLOAT) return null;
    // a scale (and zero point) per tensor, (1), or per gate unit, (1, 4H): both broadcast as they are
    const perTensor = si.dims.length === 1 && si.dims[0] === 1;
    const perUnit = si.dims.length === 2 && si.dims[0] === 1 && si.dims[1] === wi.dims[2];
    if (!(perTensor || perUnit) || zi.dims.join(",") !== si.dims.join(",")) return null;
  }
  const prefix = `edgeinfer.fp32.${index}.`;
  /** @type {Uint8Array[]} */
  const out = [];
  /** @param {string} weight @param {string} scale @param {string} zero @param {string} tag */
  const dequantized = (weight, scale, zero, tag) => {
    const name = (/** @type {string} */ step) => `${prefix}${tag}.${step}`;
    out.push(node("Cast", [weight], [name("float")], [intAttribute("to", FLOAT)]));
    out.push(node("Cast", [zero], [name("zero")], [intAttribute("to", FLOAT)]));
    out.push(node("Sub", [name("float"), name("zero")], [name("centred")]));
    out.push(node("Mul", [name("centred"), scale], [name("scaled")]));
    out.push(node("Transpose", [name("scaled")], [name("weight")], [intsAttribute("perm", [0, 2, 1])]));
    return name("weight");
  };
  const wFloat = dequantized(w, wScale, wZero, "W"), rFloat = dequantized(r, rScale, rZero, "R");
  const lstmInputs = [x, wFloat, rFloat, b, lens, h0, c0, p];
  while (lstmInputs.length && lstmInputs[lstmInputs.length - 1] === "") lstmInputs.pop();
  // the LSTM node: the new inputs, then the node's own outputs, name and attributes (the same as
  // LSTM's: hidden_size, activations, clip, direction, input_forget) byte for byte
  const kept = fields.filter((f) => [N_OUTPUT, N_NAME, N_ATTRIBUTE].includes(f.number) && bytesOf(f))
    .map((f) => lengthField(f.number, /** @type {Uint8Array} */ (bytesOf(f))));
  out.push(concat([...lstmInputs.map((i) => stringField(N_INPUT, i)), ...kept, stringField(N_OP_TYPE, "LSTM")]));
  return out;
}

/**
 * A serialized model with its main graph's DynamicQuantizeLSTM nodes rewritten as fp32 LSTMs
 * reading the same int8 initializers (dequantized by nodes onnxruntime folds at session
 * creation), or null when the graph has none that can be rewritten. The model was validated
 * before (a file's checksums and layout): this only reads it.
 * @param {Uint8Array} model
 * @returns {Uint8Array | null}
 */
export function dequantizeLstm(model) {
  const top = protoFields(model);
  let changed = 0;
  const parts = top.map((g) => {
    const graphBytes = bytesOf(g);
    const whole = model.subarray(g.start, g.end);
    if (g.number !== GRAPH_FIELD || !graphBytes) return whole;
    const graph = protoFields(graphBytes);
    const inits = initializers(graph);
    const fields = graph.map((f) => {
      const nodeBytes = bytesOf(f);
      const original = graphBytes.subarray(f.start, f.end);
      if (f.number !== NODE_FIELD || !nodeBytes) return original;
      const nodeFields = protoFields(nodeBytes);
      const text = (/** @type {number} */ number) => {
        const field = nodeFields.find((n) => n.number === number);
        const v = field && bytesOf(field);
        return v ? utf8.decode(v) : "";
      };
      if (text(N_OP_TYPE) !== "DynamicQuantizeLSTM" || text(N_DOMAIN) !== "com.microsoft") return original;
      const nodes = rewriteNode(nodeFields, inits, changed);
      if (!nodes) return original;
      changed += 1;
      return concat(nodes.map((n) => lengthField(NODE_FIELD, n)));
    });
    return lengthField(GRAPH_FIELD, concat(fields));
  });
  return changed ? concat(parts) : null;
}
