// The edgeinfer file format (docs/format.md), read with a minimal protobuf walk: no protobuf
// library, no onnx package. A port of the Python runtime's edgeinfer/fileformat.py: fields are
// read wherever they stand; a file that is not a protobuf, or whose fields run past its end, is
// reported here, before onnxruntime sees it; every tensor that refers to external data is checked
// (format 4 allows only the step graph's byte ranges of the file itself).

import { ModelFileError, SpecError } from "./errors.js";
import { sha256Hex } from "./sha256.js";
import { parseJson, JsonDepthError, JsonSyntaxError } from "./json.js";
import {
  CHECKSUMS_KEY, FORMAT_VERSION, RELAYOUT_COMMAND, SELF_LOCATION, SELF_RANGES_FORMAT, SPEC_CHECKSUM_FORMAT, SPEC_KEY,
  STEP_GRAPH_KEY, parseSpec, pyRepr,
} from "./spec.js";

const IR_VERSION_FIELD = 1;
const GRAPH_FIELD = 7;
const METADATA_FIELD = 14;
const INITIALIZER_FIELD = 5; // GraphProto.initializer
// TensorProto fields
const DIMS = 1, DATA_TYPE = 2, NAME = 8, RAW_DATA = 9, EXTERNAL_DATA = 13, DATA_LOCATION = 14;
/** TensorProto data_type -> bytes per element, for the types exporters and quantizers write */
const ITEMSIZE = new Map([[1, 4], [2, 1], [3, 1], [5, 2], [6, 4], [7, 8], [10, 2], [11, 8]]);
export const MAX_GRAPH_DEPTH = 16; // subgraphs (If, Loop, Scan bodies) nested deeper than this are refused

/** A message ends before one of its fields does (Python's EOFError). */
class Truncated extends Error {}
/** Bytes that cannot be a protobuf message (Python's ValueError). */
class Corrupt extends Error {}
/** More fields than any model needs (Python's _TooManyFields). */
class TooManyFields extends Corrupt {}

export const MAX_FIELDS_PER_MESSAGE = 100_000; // the built-ins' largest message has 527 fields
export const MAX_FIELDS_TOTAL = 1_000_000; // fields walked in a whole file (the built-ins: at most 4,420)
const TOO_MANY_FIELDS = `more protobuf fields than any model needs (over ${MAX_FIELDS_PER_MESSAGE.toLocaleString("en-US")} `
  + `in one message or ${MAX_FIELDS_TOTAL.toLocaleString("en-US")} in the file); not an edgeinfer model, refusing the file`;

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Lenient = new TextDecoder("utf-8");

/**
 * @typedef {{number: number, wire: number, value: number | Uint8Array, start: number, end: number}} ProtoField
 * start: where the field's key begins, end: where its value ends (offsets in the message).
 */

/** @param {Uint8Array} data @param {number} pos @returns {[number, number]} */
function varint(data, pos) {
  let value = 0;
  let scale = 1;
  for (let shift = 0; ; shift += 7) {
    if (shift > 63) throw new Corrupt("varint too long");
    if (pos >= data.length) throw new Truncated("truncated");
    const byte = data[pos++];
    value += (byte & 0x7f) * scale;
    if (!(byte & 0x80)) return [value, pos];
    scale *= 128;
  }
}

/**
 * A message's fields, in order. Truncated when a field runs past the end, Corrupt for bytes
 * that cannot be a message.
 * @param {Uint8Array} data
 * @returns {ProtoField[]}
 */
export function protoFields(data) {
  /** @type {ProtoField[]} */
  const out = [];
  let pos = 0;
  while (pos < data.length) {
    if (out.length >= MAX_FIELDS_PER_MESSAGE) throw new TooManyFields(TOO_MANY_FIELDS);
    const start = pos;
    let key;
    [key, pos] = varint(data, pos);
    const number = Math.floor(key / 8), wire = key % 8;
    if (number === 0) throw new Corrupt("field number 0");
    if (wire === 0) {
      let value;
      [value, pos] = varint(data, pos);
      out.push({ number, wire, value, start, end: pos });
    } else if (wire === 2) {
      let size;
      [size, pos] = varint(data, pos);
      if (pos + size > data.length) throw new Truncated("truncated");
      out.push({ number, wire, value: data.subarray(pos, pos + size), start, end: pos + size });
      pos += size;
    } else if (wire === 1 || wire === 5) {
      const width = wire === 1 ? 8 : 4;
      if (pos + width > data.length) throw new Truncated("truncated");
      let value = 0;
      for (let i = width - 1; i >= 0; i--) value = value * 256 + data[pos + i];
      out.push({ number, wire, value, start, end: pos + width });
      pos += width;
    } else {
      throw new Corrupt(`wire type ${wire}`);
    }
  }
  return out;
}

/** @param {ProtoField} f @returns {f is ProtoField & {value: Uint8Array}} */
const isBytes = (f) => f.value instanceof Uint8Array;

/**
 * The ModelProto's fields, checked to hold an IR version and a graph.
 * @param {Uint8Array} data @param {string} source
 */
export function topFields(data, source) {
  if (!data.length) throw new ModelFileError(`${source}: empty file; expected an ONNX model`);
  let top;
  try {
    top = protoFields(data);
  } catch (err) {
    if (err instanceof Truncated && data[0] === 0x08) {
      // serializers write ir_version (field 1) first: an ONNX file cut short
      throw new ModelFileError(`${source}: truncated ONNX file; copy or export it again`);
    }
    if (err instanceof TooManyFields) throw new ModelFileError(`${source}: ${TOO_MANY_FIELDS}`);
    if (err instanceof Truncated || err instanceof Corrupt) throw new ModelFileError(`${source}: not an ONNX model file`);
    throw err;
  }
  if (!top.some((f) => f.number === IR_VERSION_FIELD && f.wire === 0)) {
    throw new ModelFileError(`${source}: not an ONNX model file (no IR version)`);
  }
  if (!top.some((f) => f.number === GRAPH_FIELD && f.wire === 2)) {
    throw new ModelFileError(`${source}: not an ONNX model file (no graph)`);
  }
  return top;
}

/**
 * The `metadata_props` of a serialized ModelProto (ONNX custom metadata, which onnxruntime-web
 * does not expose), as a Map.
 * @param {Uint8Array} data @param {string} source
 * @returns {Map<string, string>}
 */
export function readMetadata(data, source) {
  const meta = new Map();
  for (const f of topFields(data, source)) {
    if (f.number !== METADATA_FIELD || !isBytes(f)) continue;
    try {
      /** @type {Map<number, Uint8Array>} */
      const entry = new Map();
      for (const e of protoFields(f.value)) if (isBytes(e)) entry.set(e.number, e.value);
      meta.set(utf8.decode(entry.get(1) ?? new Uint8Array()), utf8.decode(entry.get(2) ?? new Uint8Array()));
    } catch (err) {
      if (err instanceof Truncated || err instanceof Corrupt || err instanceof TypeError) {
        throw new ModelFileError(`${source}: corrupt metadata in ONNX file`);
      }
      throw err;
    }
  }
  return meta;
}

// Where TensorProtos can stand in an ONNX model: message kind -> {field number: kind of its value}.
/** @type {Record<string, Record<number, string>>} */
const SCHEMA = {
  model: { 7: "graph", 20: "training", 25: "function" },
  training: { 1: "graph", 2: "graph" }, // TrainingInfoProto: initialization, algorithm
  graph: { 1: "node", 5: "tensor", 15: "sparse" }, // nodes, initializers, sparse initializers
  function: { 7: "node" },
  node: { 5: "attribute" },
  attribute: { 5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse" },
  sparse: { 1: "tensor", 2: "tensor" }, // values, indices
};

/**
 * A tensor that refers to external data: where it says its bytes are, and how many it needs.
 * @typedef {{name: string, initializer: boolean, location: string, offset: number, length: number, nbytes: number}} ExternalRef
 * initializer: a main-graph initializer (not inside a node, subgraph or function); length: -1 when
 * the reference gives none; nbytes: what its dims and data type need, -1 when they cannot be read.
 */

/**
 * A TensorProto's name, dims (packed or not) and data type, from its fields.
 * @param {ProtoField[]} fields
 * @returns {{name: string, dims: number[], dtype: number}}
 */
export function tensorHeader(fields) {
  let name = "", dtype = 0;
  /** @type {number[]} */
  const dims = [];
  for (const f of fields) {
    if (f.number === NAME && isBytes(f)) name = utf8Lenient.decode(f.value);
    else if (f.number === DIMS && !isBytes(f)) dims.push(/** @type {number} */ (f.value));
    else if (f.number === DIMS && isBytes(f)) { // packed dims
      for (let pos = 0, d; pos < f.value.length;) {
        [d, pos] = varint(f.value, pos);
        dims.push(d);
      }
    } else if (f.number === DATA_TYPE && !isBytes(f)) dtype = /** @type {number} */ (f.value);
  }
  return { name, dims, dtype };
}

/** @param {ProtoField[]} fields @param {boolean} top @returns {ExternalRef} */
function externalRef(fields, top) {
  const nameField = fields.find((f) => f.number === NAME && isBytes(f));
  const name = nameField ? utf8Lenient.decode(/** @type {Uint8Array} */ (nameField.value)) : "";
  /** @type {Map<string, string>} */
  const info = new Map();
  for (const f of fields) {
    if (f.number !== EXTERNAL_DATA || !isBytes(f)) continue;
    /** @type {Map<number, Uint8Array>} */
    const entry = new Map();
    for (const e of protoFields(f.value)) if (isBytes(e)) entry.set(e.number, e.value);
    info.set(utf8Lenient.decode(entry.get(1) ?? new Uint8Array()), utf8Lenient.decode(entry.get(2) ?? new Uint8Array()));
  }
  const dims = fields.filter((f) => f.number === DIMS && !isBytes(f)).map((f) => /** @type {number} */ (f.value));
  const dtypeField = fields.find((f) => f.number === DATA_TYPE && !isBytes(f));
  const dtype = dtypeField ? /** @type {number} */ (dtypeField.value) : 0;
  const packed = fields.some((f) => f.number === DIMS && isBytes(f));
  let nbytes = -1;
  if (ITEMSIZE.has(dtype) && !packed && dims.every((d) => d < 2 ** 40)) {
    nbytes = dims.reduce((a, d) => a * d, 1) * /** @type {number} */ (ITEMSIZE.get(dtype));
  }
  /** @param {string} key */
  const number = (key) => {
    const text = info.get(key) ?? "";
    return /^[0-9]+$/.test(text) && text.length < 20 ? Number(text) : -1;
  };
  const offset = info.has("offset") ? number("offset") : 0; // ONNX's default offset
  return { name, initializer: top, location: info.get("location") ?? "", offset, length: number("length"), nbytes };
}

/**
 * Every tensor of a serialized model that refers to external data, anywhere in it (initializers,
 * node attributes, subgraphs, functions, sparse tensors, training info).
 * @param {Uint8Array} data @param {string} source
 * @returns {ExternalRef[]}
 */
export function externalTensors(data, source) {
  /** @type {ExternalRef[]} */
  const found = [];
  let walked = 0;
  /** @param {Uint8Array} message @param {string} kind @param {number} depth @param {boolean} top */
  const walk = (message, kind, depth, top) => {
    if (depth > MAX_GRAPH_DEPTH) {
      throw new ModelFileError(`${source}: graphs nested deeper than ${MAX_GRAPH_DEPTH} levels; refusing the file`);
    }
    const fields = protoFields(message);
    walked += fields.length;
    if (walked > MAX_FIELDS_TOTAL) throw new TooManyFields(TOO_MANY_FIELDS);
    if (kind === "tensor") {
      if (fields.some((f) => f.number === EXTERNAL_DATA || (f.number === DATA_LOCATION && f.value === 1))) {
        found.push(externalRef(fields, top));
      }
      return;
    }
    for (const f of fields) {
      const child = SCHEMA[kind][f.number];
      if (child !== undefined && f.wire === 2 && isBytes(f)) {
        const initializer = kind === "graph" && f.number === INITIALIZER_FIELD && depth === 1;
        walk(f.value, child, depth + (child === "graph" ? 1 : 0), initializer);
      }
    }
  };
  try {
    walk(data, "model", 0, false);
  } catch (err) {
    if (err instanceof TooManyFields) throw new ModelFileError(`${source}: ${TOO_MANY_FIELDS}`);
    if (err instanceof Truncated || err instanceof Corrupt) throw new ModelFileError(`${source}: corrupt ONNX file; export it again`);
    throw err;
  }
  return found;
}

/** @param {string} source @param {string} name @param {string} why */
function refuse(source, name, why) {
  return new ModelFileError(`${source}: tensor ${pyRepr(name.slice(0, 80))} refers to external data ${why}; an edgeinfer `
    + "file carries every weight inside it, so this file is refused; export it again");
}

/**
 * Refuse a model that would make onnxruntime read a file: no tensor may refer to external data
 * (the sequence graph carries every weight itself).
 * @param {Uint8Array} data @param {string} source
 */
export function checkNoExternalData(data, source) {
  const [ref] = externalTensors(data, source);
  if (ref) throw refuse(source, ref.name, "(a file onnxruntime would read)");
}

/**
 * Where each main-graph initializer's raw_data lies in a serialized model: name -> [offset, length].
 * @param {Uint8Array} data
 * @returns {Map<string, [number, number]>}
 */
export function initializerRanges(data) {
  /** @type {Map<string, [number, number]>} */
  const ranges = new Map();
  for (const g of protoFields(data)) {
    if (g.number !== GRAPH_FIELD || !isBytes(g)) continue;
    const graphStart = g.end - g.value.length;
    for (const i of protoFields(g.value)) {
      if (i.number !== INITIALIZER_FIELD || !isBytes(i)) continue;
      const tensorStart = graphStart + i.end - i.value.length;
      let name = "";
      /** @type {[number, number]} */
      let raw = [0, 0];
      for (const t of protoFields(i.value)) {
        if (!isBytes(t)) continue;
        if (t.number === NAME) name = utf8Lenient.decode(t.value);
        else if (t.number === RAW_DATA) raw = [tensorStart + t.end - t.value.length, t.value.length];
      }
      if (raw[1]) ranges.set(name, raw);
    }
  }
  return ranges;
}

/**
 * Format 4: every external tensor of the step graph must be a main-graph initializer whose bytes
 * are a range of the model file itself (location `edgeinfer-self`): exactly the raw bytes of one of
 * the sequence graph's initializers, of the size its dims and data type need.
 * @param {Uint8Array} step @param {Uint8Array} data @param {string} source
 */
export function checkSelfRanges(step, data, source) {
  const size = data.length;
  let spans;
  try {
    spans = new Set([...initializerRanges(data).values()].map(([o, n]) => `${o}+${n}`));
  } catch (err) {
    if (err instanceof Truncated || err instanceof Corrupt) throw new ModelFileError(`${source}: corrupt ONNX file; export it again`);
    throw err;
  }
  for (const ref of externalTensors(step, source)) {
    if (!ref.initializer || ref.location !== SELF_LOCATION) {
      throw refuse(source, ref.name, `at ${pyRepr(ref.location.slice(0, 60))} (only '${SELF_LOCATION}', the file itself, is allowed)`);
    }
    if (ref.offset < 0 || ref.length < 0 || ref.offset + ref.length > size) {
      throw refuse(source, ref.name, `outside the file (bytes ${ref.offset} + ${ref.length} of ${size})`);
    }
    if (ref.nbytes !== ref.length) throw refuse(source, ref.name, `of ${ref.length} bytes where its shape needs ${ref.nbytes}`);
    if (!spans.has(`${ref.offset}+${ref.length}`)) {
      throw refuse(source, ref.name, `at bytes ${ref.offset} + ${ref.length}, which are not a weight of the sequence graph`);
    }
  }
}

/**
 * The checksums export writes under `edgeinfer.checksums`: the sha256 of the file's top-level
 * fields other than its metadata (the sequence graph and every weight), of the step graph and
 * (format 8 on) of the spec's JSON as stored, in UTF-8.
 * @param {Uint8Array} data @param {Uint8Array} step @param {string | null} [specJson]
 * @returns {Promise<Record<string, string>>}
 */
export async function checksums(data, step, specJson = null) {
  const parts = protoFields(data).filter((f) => f.number !== METADATA_FIELD);
  let body;
  const contiguous = parts.every((f, i) => i === 0 ? f.start === 0 : f.start === parts[i - 1].end);
  if (contiguous) {
    body = data.subarray(0, parts.length ? parts[parts.length - 1].end : 0); // the usual layout: metadata last
  } else {
    body = new Uint8Array(parts.reduce((n, f) => n + f.end - f.start, 0));
    let at = 0;
    for (const f of parts) {
      body.set(data.subarray(f.start, f.end), at);
      at += f.end - f.start;
    }
  }
  const [graph, stepGraph] = await Promise.all([sha256Hex(body), sha256Hex(step)]);
  /** @type {Record<string, string>} */
  const sums = { graph, step_graph: stepGraph };
  if (specJson !== null) sums.spec = await sha256Hex(new TextEncoder().encode(specJson));
  return sums;
}

/**
 * @param {Map<string, string>} meta @param {Uint8Array} data @param {Uint8Array} step @param {string} source
 * @param {number} version the spec's format version
 */
async function checkChecksums(meta, data, step, source, version) {
  let want;
  try {
    want = parseJson(meta.get(CHECKSUMS_KEY) ?? "");
  } catch (err) {
    if (!(err instanceof JsonSyntaxError || err instanceof JsonDepthError)) throw err;
  }
  if (want === null || typeof want !== "object" || Array.isArray(want)) {
    throw new ModelFileError(`${source}: no valid ${CHECKSUMS_KEY} in the file; export it again`);
  }
  // the spec decides what the answers mean: from format 8 a damaged spec is refused like a damaged graph
  const covered = version >= SPEC_CHECKSUM_FORMAT || Object.hasOwn(want, "spec");
  const got = await checksums(data, step, covered ? meta.get(SPEC_KEY) ?? "" : null);
  for (const [part, digest] of Object.entries(got)) {
    if (/** @type {Record<string, unknown>} */ (want)[part] !== digest) {
      throw new ModelFileError(`${source}: the ${part.replace("_", " ")} is damaged (its sha256 does not match the one `
        + "written at export); copy or export the file again");
    }
  }
}

const B64 = new Int16Array(128).fill(-1);
for (const [i, c] of [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"].entries()) B64[c.charCodeAt(0)] = i;

/**
 * Strict base64 (standard alphabet, canonical padding, nothing else); null when invalid.
 * @param {string} text
 * @returns {Uint8Array | null}
 */
export function decodeBase64(text) {
  if (text.length % 4) return null;
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const n = text.length - pad;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let acc = 0, bits = 0, o = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? B64[c] : -1;
    if (v < 0) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return o === out.length ? out : null;
}

/**
 * A parsed edgeinfer file.
 * @typedef {{source: string, data: Uint8Array, spec: import("./spec.js").ModelSpec, stepGraph: Uint8Array}} ModelFile
 */

/**
 * The refusal of a file of formats 1-3, whose step graph names its shared weights by tensor name
 * (Python's `older_layout`): the command that rewrites it is the fix.
 * @param {string} source @param {number} version
 */
export function olderLayout(source, version) {
  return new ModelFileError(`${source}: a format ${version} file, whose step graph names its shared weights by tensor `
    + `name (formats 1-${SELF_RANGES_FORMAT - 1}), which edgeinfer no longer reads; rewrite it in format ${FORMAT_VERSION} `
    + `with \`${RELAYOUT_COMMAND}\` (weights untouched)`);
}

/**
 * Read an edgeinfer file's metadata: spec and step graph, everything validated (the checksums,
 * and every external-data reference in either graph). Files of formats 1-3 are refused (`olderLayout`).
 * @param {Uint8Array} data the whole file
 * @param {string} source how to name the file in messages
 * @returns {Promise<ModelFile>}
 */
export async function parseModelFile(data, source) {
  const meta = readMetadata(data, source);
  if (!meta.has(SPEC_KEY)) {
    throw new SpecError(`${source}: ONNX file without an edgeinfer spec; export it with \`python -m export\``);
  }
  let spec;
  try {
    spec = parseSpec(/** @type {string} */ (meta.get(SPEC_KEY)));
  } catch (err) {
    if (err instanceof SpecError) throw new SpecError(`${source}: ${err.message}`);
    throw err;
  }
  if (spec.format_version < SELF_RANGES_FORMAT) throw olderLayout(source, spec.format_version);
  const step = decodeBase64(meta.get(STEP_GRAPH_KEY) ?? "");
  if (step === null) throw new SpecError(`${source}: the embedded step graph is corrupt; export the model again`);
  if (!step.length) throw new SpecError(`${source}: no step graph in the file; export it with \`python -m export\``);
  checkNoExternalData(data, source);
  const stepSource = `${source} (step graph)`;
  topFields(step, stepSource);
  await checkChecksums(meta, data, step, source, spec.format_version);
  checkSelfRanges(step, data, stepSource);
  return { source, data, spec, stepGraph: step };
}
