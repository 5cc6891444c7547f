// Stream snapshots (docs/format.md section 7): a stream's state at one point, to resume it here
// or in the Python runtime. The bytes are a ZIP of .npy files as numpy's `savez` writes them;
// written here they are byte for byte what Python's `Snapshot.to_bytes` writes for the same state.
// Reading checks the archive's declared sizes and every .npy header before building any array.

import { InputError } from "./errors.js";
import { JsonDepthError, JsonSyntaxError, PyFloat, parseJson } from "./json.js";
import { commas, pyFormatG, pyRepr, readout, readoutActive, readsTokens, vocabSize } from "./spec.js";
import { ZipError, listZip, readMember, writeZip } from "./zip.js";

export const SNAPSHOT_MAGIC = "edgeinfer-snapshot-1";
export const MAX_SNAPSHOT_BYTES = 256 << 20; // the most a snapshot may unpack to when no model bounds it
export const MEMBER_OVERHEAD = 4096; // a .npy header, and the JSON meta, take at most this
const NAME = /^(?:state\.[A-Za-z0-9_.-]{1,256}\.npy|logits\.npy|meta\.npy)$/;
const SHA256 = /^[0-9a-f]{64}$/;
const DAMAGED = "not an edgeinfer stream snapshot (damaged or of another kind)";

/** @typedef {{data: Float32Array, dims: number[]}} Float32Tensor */

/** A stream's state at one point: enough to resume it, here or in another runtime. */
export class Snapshot {
  /**
   * @param {string} model sha256 of the model file it was taken from
   * @param {Record<string, Float32Tensor>} state each (layers, batch, hidden), in the spec's order
   * @param {Float32Tensor | null} logits (batch, classes) after the latest step; null before the first
   * @param {number} steps
   */
  constructor(model, state, logits, steps) {
    this.model = model;
    this.state = state;
    this.logits = logits;
    this.steps = steps;
  }

  /** Serialise: the bytes numpy's savez writes (Python's `Snapshot.to_bytes`). */
  toBytes() {
    const meta = `{"magic": "${SNAPSHOT_MAGIC}", "model": "${this.model}", "steps": ${this.steps}}`;
    const members = [{ name: "meta.npy", data: npyUnicode(meta) }];
    for (const [name, t] of Object.entries(this.state)) members.push({ name: `state.${name}.npy`, data: npyFloat32(t) });
    if (this.logits) members.push({ name: "logits.npy", data: npyFloat32(this.logits) });
    return writeZip(members);
  }

  /**
   * Parse snapshot bytes (Python's, or `toBytes`'); InputError for anything else. The archive's
   * declared sizes are checked before anything is unpacked: a snapshot that would unpack to more
   * than `maxBytes` is refused unread.
   * @param {Uint8Array | ArrayBuffer} bytes
   * @param {number} [maxBytes]
   * @returns {Promise<Snapshot>}
   */
  static async fromBytes(bytes, maxBytes = MAX_SNAPSHOT_BYTES) {
    const data = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
    if (!(data instanceof Uint8Array)) {
      throw new InputError(`a snapshot is bytes (a Uint8Array) or a Snapshot, got ${describe(bytes)}`);
    }
    /** @type {any} */
    let meta;
    /** @type {Record<string, Float32Tensor>} */
    const state = {};
    /** @type {Float32Tensor | null} */
    let logits = null;
    /** @type {string[]} */
    const notFloat = [];
    try {
      const members = listZip(data);
      const names = new Set(members.map((m) => m.name));
      if (members.length > 64 || names.size !== members.length || !members.every((m) => NAME.test(m.name))) {
        throw new ZipError("unexpected members");
      }
      if (members.reduce((n, m) => n + m.size, 0) > maxBytes) {
        throw new InputError(`snapshot would unpack to more than ${commas(maxBytes)} bytes; expected a snapshot of `
          + "this model's stream");
      }
      if (!names.has("meta.npy")) throw new ZipError("no meta");
      for (const member of members) {
        const array = readNpy(await readMember(data, member));
        if (member.name === "meta.npy") {
          if (array.kind !== "U" || array.shape.length) throw new ZipError("meta is not a string");
          meta = parseJson(array.text);
        } else if (array.kind !== "f4") {
          notFloat.push(member.name);
        } else if (member.name === "logits.npy") {
          logits = { data: array.values, dims: array.shape };
        } else {
          state[member.name.slice("state.".length, -".npy".length)] = { data: array.values, dims: array.shape };
        }
      }
    } catch (err) {
      if (err instanceof InputError) throw err;
      if (err instanceof ZipError || err instanceof JsonSyntaxError || err instanceof JsonDepthError || err instanceof RangeError) {
        throw new InputError(DAMAGED);
      }
      throw err;
    }
    return checkedParts(meta, state, logits, notFloat);
  }
}

/** @param {unknown} v */
function describe(v) {
  if (v === null) return "null";
  return typeof v === "object" ? /** @type {object} */ (v).constructor?.name ?? "object" : typeof v;
}

/** @param {Float32Tensor} t @param {number} ndim */
function finiteFloat32(t, ndim) {
  if (t.dims.length !== ndim) return false;
  for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) return false;
  return true;
}

/**
 * A Snapshot from parsed parts, every part checked (Python's `_checked_parts`).
 * @param {any} meta @param {Record<string, Float32Tensor>} state @param {Float32Tensor | null} logits
 * @param {string[]} notFloat members that hold something other than float32
 */
export function checkedParts(meta, state, logits, notFloat) {
  if (meta === null || typeof meta !== "object" || Array.isArray(meta) || meta.magic !== SNAPSHOT_MAGIC) {
    throw new InputError("not an edgeinfer stream snapshot");
  }
  const { model, steps } = meta;
  if (typeof model !== "string" || !SHA256.test(model)) throw new InputError("snapshot names no model (sha256); it is damaged");
  if (typeof steps !== "number" || !Number.isInteger(steps) || steps < 0 || steps >= 2 ** 53) {
    const shown = steps instanceof PyFloat ? String(steps.value) : JSON.stringify(steps);
    throw new InputError(`snapshot step count ${shown} is not a whole number >= 0; it is damaged`);
  }
  const stateNotFloat = notFloat.some((n) => n.startsWith("state."));
  if (stateNotFloat || !Object.keys(state).length || !Object.values(state).every((t) => finiteFloat32(t, 3))) {
    throw new InputError("snapshot state must be finite float32 (layers, batch, hidden) arrays; it is damaged");
  }
  if (notFloat.includes("logits.npy") || (logits !== null && !finiteFloat32(logits, 2))) {
    throw new InputError("snapshot logits must be a finite float32 (batch, classes) array; it is damaged");
  }
  if (logits === null && steps) { // a stream has logits from its first step on
    throw new InputError(`snapshot counts ${steps} steps but holds no logits; it is damaged`);
  }
  return new Snapshot(model, state, logits, steps);
}

/**
 * InputError for a state no stream of this model can reach after `snap.steps` steps (finite,
 * but impossible: it would give NaN or nonsense), Python's `_check_reachable` rule for rule and
 * message for message: a GRU's or LSTM's hidden state is a tanh within [-1, 1], and so is the
 * running maximum a pooled readout keeps (its sum moves by at most 1 a step); an LSTM's cell state
 * moves by at most 1 a step; a readout's step count is a whole number from 0 to the steps read,
 * and the n-gram readout's previous words are token ids of the model's vocabulary. A model
 * exported under the protocol contract keeps the user's own state: only they know its range.
 * @param {import("./spec.js").ModelSpec} spec
 * @param {Snapshot} snap
 */
export function checkReachable(spec, snap) {
  if (spec.provenance.contract === "protocol") return;
  const active = Boolean(readoutActive(readout(spec)));
  /** @type {Array<[string, number]>} */
  const bounds = [];
  if (spec.cell === "gru" || spec.cell === "lstm") {
    bounds.push(["h", 1]);
    if (active) bounds.push(["pool_max", 1], ["pool_sum", snap.steps]);
  }
  if (spec.cell === "lstm") bounds.push(["c", snap.steps + 1]);
  for (const [name, limit] of bounds) {
    const value = snap.state[name];
    if (!value || !value.data.length) continue;
    let most = 0;
    for (const v of value.data) most = Math.max(most, Math.abs(v));
    if (most > limit) {
      throw new InputError(`snapshot state ${pyRepr(name)} holds ${pyFormatG(most, 3)}, beyond the ${pyFormatG(limit)} `
        + `a stream of this model can reach after ${snap.steps} steps; it is damaged`);
    }
  }
  const count = active ? snap.state.count : undefined;
  if (count && count.data.some((v) => v < 0 || v > snap.steps || !Number.isInteger(v))) {
    throw new InputError(`snapshot state 'count' must count the steps read (whole numbers from 0 to ${snap.steps}); it is damaged`);
  }
  const prev = active ? snap.state.prev : undefined;
  if (prev && readsTokens(spec)) {
    const size = vocabSize(/** @type {import("./spec.js").TextInput} */ (spec.input));
    if (prev.data.some((v) => v < 0 || v >= size || !Number.isInteger(v))) {
      throw new InputError("snapshot state 'prev' must hold the latest words' token ids (whole numbers from 0 to "
        + `${size - 1}); it is damaged`);
    }
  }
}

// --- .npy ------------------------------------------------------------------------------------------

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const GROWTH_AXIS_MAX_DIGITS = 21; // numpy pads headers so the first axis can grow in place
const ARRAY_ALIGN = 64;

/** @param {number[]} shape */
function shapeRepr(shape) {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}

/** A version 1.0 .npy header as numpy 2 writes it. @param {string} descr @param {number[]} shape */
function npyHeader(descr, shape) {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeRepr(shape)}, }`;
  if (shape.length) header += " ".repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length));
  const hlen = header.length + 1;
  const pad = ARRAY_ALIGN - ((MAGIC.length + 2 + 2 + hlen) % ARRAY_ALIGN);
  const text = `${header}${" ".repeat(pad)}\n`;
  const out = new Uint8Array(10 + text.length);
  out.set(MAGIC);
  out[6] = 1;
  out[7] = 0;
  out[8] = text.length & 0xff;
  out[9] = text.length >> 8;
  for (let i = 0; i < text.length; i++) out[10 + i] = text.charCodeAt(i);
  return out;
}

/** A float32 array as .npy bytes (little-endian, C order). @param {Float32Tensor} t */
function npyFloat32(t) {
  const header = npyHeader("<f4", t.dims);
  const out = new Uint8Array(header.length + t.data.length * 4);
  out.set(header);
  const view = new DataView(out.buffer, header.length);
  for (let i = 0; i < t.data.length; i++) view.setFloat32(i * 4, t.data[i], true);
  return out;
}

/** A 0-d numpy unicode array (`<U{n}`, UTF-32LE) as .npy bytes. @param {string} text */
function npyUnicode(text) {
  const points = [...text].map((c) => /** @type {number} */ (c.codePointAt(0)));
  const header = npyHeader(`<U${points.length}`, []);
  const out = new Uint8Array(header.length + points.length * 4);
  out.set(header);
  const view = new DataView(out.buffer, header.length);
  points.forEach((p, i) => view.setUint32(i * 4, p, true));
  return out;
}

/**
 * A Python literal of an .npy header: {'descr': str, 'fortran_order': bool, 'shape': (ints)}.
 * @param {string} text
 * @returns {{descr: string, fortran: boolean, shape: number[]}}
 */
function parseHeader(text) {
  const m = /^\{\s*((?:'[^']*'\s*:\s*(?:'[^']*'|True|False|\([0-9,\s]*\))\s*,?\s*)*)\}\s*$/.exec(text);
  if (!m) throw new ZipError("bad .npy header");
  /** @type {Record<string, string>} */
  const fields = {};
  for (const [, key, value] of m[1].matchAll(/'([^']*)'\s*:\s*('[^']*'|True|False|\([0-9,\s]*\))/g)) {
    if (key in fields) throw new ZipError("bad .npy header");
    fields[key] = value;
  }
  const keys = Object.keys(fields).sort().join(",");
  if (keys !== "descr,fortran_order,shape" || !fields.descr.startsWith("'")) throw new ZipError("bad .npy header");
  const inner = fields.shape.slice(1, -1).trim();
  if (!/^(?:[0-9]+\s*,\s*)*(?:[0-9]+\s*,?)?$/.test(inner)) throw new ZipError("bad .npy shape");
  const shape = inner ? inner.split(",").map((s) => s.trim()).filter((s) => s).map(Number) : [];
  if (shape.length === 1 && !/,/.test(inner)) throw new ZipError("bad .npy shape"); // (5) is not a tuple
  if (fields.fortran_order.startsWith("(") || fields.fortran_order.startsWith("'")) throw new ZipError("bad .npy header");
  return { descr: fields.descr.slice(1, -1), fortran: fields.fortran_order === "True", shape };
}

/**
 * An .npy file's array, its header checked against its size before anything is built.
 * float32 ('<f4') arrays and unicode strings ('<U{n}') are decoded; other plain numeric types are
 * recognised (so they can be refused by name) but not decoded.
 * @param {Uint8Array} bytes
 * @returns {{kind: "f4", shape: number[], values: Float32Array} | {kind: "U", shape: number[], text: string}
 *   | {kind: "other", shape: number[]}}
 */
function readNpy(bytes) {
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) throw new ZipError("not .npy");
  const major = bytes[6];
  if (!(major >= 1 && major <= 3) || bytes[7] !== 0) throw new ZipError("unknown .npy version");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthSize = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthSize) throw new ZipError("short .npy");
  const hlen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lengthSize + hlen;
  if (start > bytes.length) throw new ZipError("short .npy header");
  const headerBytes = bytes.subarray(8 + lengthSize, start);
  const text = new TextDecoder(major === 3 ? "utf-8" : "latin1", { fatal: major === 3 }).decode(headerBytes);
  const { descr, fortran, shape } = parseHeader(text);
  const dt = /^([<>|=])([a-zA-Z])(\d{1,9})$/.exec(descr);
  if (!dt || !"fiubcUS".includes(dt[2])) throw new ZipError("unsupported .npy dtype"); // objects, records...
  const itemsize = dt[2] === "U" ? 4 * Number(dt[3]) : Number(dt[3]);
  const count = shape.reduce((a, d) => a * d, 1);
  if (count * itemsize > bytes.length - start) throw new ZipError("header declares more than the member holds");
  const body = bytes.subarray(start, start + count * itemsize);
  if (dt[2] === "U" && dt[1] !== ">" && count === 1) {
    const points = [];
    const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
    for (let i = 0; i < itemsize; i += 4) points.push(v.getUint32(i, true));
    while (points.length && points[points.length - 1] === 0) points.pop(); // numpy strips trailing NULs
    if (points.some((p) => p > 0x10ffff)) throw new ZipError("bad unicode");
    return { kind: "U", shape, text: String.fromCodePoint(...points) };
  }
  if (!(dt[1] !== ">" && dt[2] === "f" && itemsize === 4)) return { kind: "other", shape };
  const values = new Float32Array(count);
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let i = 0; i < count; i++) values[i] = v.getFloat32(i * 4, true);
  return { kind: "f4", shape, values: fortran ? fortranToC(values, shape) : values };
}

/** Reorder a Fortran-order array's elements into C order. @param {Float32Array} values @param {number[]} shape */
function fortranToC(values, shape) {
  const out = new Float32Array(values.length);
  const n = shape.length;
  const idx = new Array(n).fill(0);
  for (let c = 0; c < values.length; c++) {
    let f = 0;
    for (let k = n - 1; k >= 0; k--) f = f * shape[k] + idx[k];
    out[c] = values[f];
    for (let k = n - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}
