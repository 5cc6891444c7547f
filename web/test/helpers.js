// Shared by the runtime's tests: where the models and the Python references are, array
// comparisons, and a small protobuf writer to build damaged model files.
//
// The parity tests need reference data from the Python runtime: run them through
// tests/web/test_web_node.py (pytest), or by hand from the repository root:
//   .venv/bin/python -m tests.web.references /tmp/webrefs
//   cd web && EDGEINFER_WEB_REFS=/tmp/webrefs EDGEINFER_WEB_OUT=/tmp/webrefs/js npm test

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { checksums, protoFields, readMetadata } from "../src/fileformat.js";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const MODELS = join(REPO, "edgeinfer", "models");
export const FIXTURES = join(REPO, "tests", "fixtures");
export const REFS = process.env.EDGEINFER_WEB_REFS || "";
export const OUT = process.env.EDGEINFER_WEB_OUT || "";
/** Test options: skipped (with the reason) when no references were generated. */
export const NEED_REFS = { skip: !REFS && "EDGEINFER_WEB_REFS not set: run through tests/web/test_web_node.py" };

/** The bytes of a built-in model. @param {string} name */
export function modelBytes(name) {
  return new Uint8Array(readFileSync(join(MODELS, `${name}.onnx`)));
}

/** @type {any} */
let manifest = null;

/** The Python references' manifest (tests/web/references.py). @returns {any} */
export function refs() {
  manifest ??= JSON.parse(readFileSync(join(REFS, "manifest.json"), "utf8"));
  return manifest;
}

/** A reference file's bytes. @param {string} name */
export function refBytes(name) {
  return new Uint8Array(readFileSync(join(REFS, name)));
}

/**
 * A reference array ({file, dims, dtype}) as a typed array.
 * @param {{file: string, dims: number[], dtype: string}} ref
 * @returns {any}
 */
export function refArray(ref) {
  const b = readFileSync(join(REFS, ref.file));
  const buffer = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  const type = { float32: Float32Array, int32: Int32Array, uint32: Uint32Array }[ref.dtype];
  assert.ok(type, `unknown dtype ${ref.dtype}`);
  return new type(buffer);
}

/** Write a file for the pytest driver to check on the Python side. @param {string} name @param {Uint8Array | string} data */
export function writeOut(name, data) {
  if (!OUT) return;
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, name), data);
}

/**
 * Assert two arrays agree within `tol` (max absolute difference).
 * @param {ArrayLike<number>} actual @param {ArrayLike<number>} expected @param {number} tol @param {string} what
 */
export function assertClose(actual, expected, tol, what) {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} values, expected ${expected.length}`);
  let worst = 0, at = -1;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(worst <= tol, `${what}: max |difference| ${worst} at ${at} (${actual[at]} vs ${expected[at]}) > ${tol}`);
  return worst;
}

/** The argmax of each row. @param {ArrayLike<number>} data @param {number} classes */
export function argmaxRows(data, classes) {
  const out = [];
  for (let r = 0; r < data.length; r += classes) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (data[r + c] > data[r + best]) best = c;
    out.push(best);
  }
  return out;
}

// --- a protobuf writer, to build damaged files --------------------------------------------------

/** @param {number} n */
export function varint(n) {
  const out = [];
  let v = BigInt.asUintN(64, BigInt(n));
  do {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v ? byte | 0x80 : byte);
  } while (v);
  return Uint8Array.from(out);
}

/** @param {...Uint8Array} parts */
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A length-delimited field. @param {number} number @param {Uint8Array | string} payload */
export function lenField(number, payload) {
  const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  return concat(varint(number * 8 + 2), varint(bytes.length), bytes);
}

/** A varint field. @param {number} number @param {number} value */
export function intField(number, value) {
  return concat(varint(number * 8), varint(value));
}

/** A field's raw bytes in its message. @param {Uint8Array} msg @param {{start: number, end: number}} f */
export const raw = (msg, f) => msg.subarray(f.start, f.end);

/**
 * `data` with its metadata replaced by `meta` (written where the first entry was, else at the end).
 * @param {Uint8Array} data @param {Map<string, string> | Record<string, string>} meta
 */
export function withMetadata(data, meta) {
  const entries = concat(...[...(meta instanceof Map ? meta : Object.entries(meta))]
    .map(([k, v]) => lenField(14, concat(lenField(1, k), lenField(2, v)))));
  const parts = [];
  let placed = false;
  for (const f of protoFields(data)) {
    if (f.number === 14 && f.wire === 2) {
      if (!placed) parts.push(entries);
      placed = true;
    } else {
      parts.push(raw(data, f));
    }
  }
  if (!placed) parts.push(entries);
  return concat(...parts);
}

/**
 * A model file with its spec JSON edited by `edit(raw)`; the checksums' sha256 of the spec
 * (format 8) follows the edit unless `fix` is false (so the check under test is the one that fails).
 * @param {Uint8Array} data @param {(spec: any) => void} edit @param {boolean} [fix]
 */
export function editSpec(data, edit, fix = true) {
  const meta = readMetadata(data, "test");
  const spec = JSON.parse(/** @type {string} */ (meta.get("edgeinfer.spec")));
  edit(spec);
  const text = JSON.stringify(spec);
  meta.set("edgeinfer.spec", text);
  const sums = JSON.parse(meta.get("edgeinfer.checksums") ?? "{}");
  if (fix && sums && typeof sums === "object" && "spec" in sums) {
    sums.spec = createHash("sha256").update(text, "utf8").digest("hex");
    meta.set("edgeinfer.checksums", JSON.stringify(sums));
  }
  return withMetadata(data, meta);
}

/**
 * Rewrite the fields of a message: `edit(field, bytes)` returns new bytes for a field (or null to keep it).
 * @param {Uint8Array} msg @param {(f: import("../src/fileformat.js").ProtoField, bytes: Uint8Array) => Uint8Array | null} edit
 */
export function rewrite(msg, edit) {
  return concat(...protoFields(msg).map((f) => edit(f, raw(msg, f)) ?? raw(msg, f)));
}

/**
 * Edit the initializer named `name` of a model's main graph.
 * @param {Uint8Array} model @param {string} name @param {(tensor: Uint8Array) => Uint8Array} edit
 */
export function editInitializer(model, name, edit) {
  let found = false;
  const out = rewrite(model, (g) => g.number !== 7 ? null : lenField(7, rewrite(/** @type {Uint8Array} */ (g.value), (i) => {
    if (i.number !== 5) return null;
    const tensor = /** @type {Uint8Array} */ (i.value);
    const n = protoFields(tensor).find((t) => t.number === 8);
    if (!n || new TextDecoder().decode(/** @type {Uint8Array} */ (n.value)) !== name) return null;
    found = true;
    return lenField(5, edit(tensor));
  })));
  assert.ok(found, `no initializer ${name}`);
  return out;
}

/** The names of a model's main-graph initializers that refer to external data. @param {Uint8Array} model */
export function externalInitializers(model) {
  const names = [];
  for (const g of protoFields(model)) {
    if (g.number !== 7) continue;
    for (const i of protoFields(/** @type {Uint8Array} */ (g.value))) {
      if (i.number !== 5) continue;
      const fields = protoFields(/** @type {Uint8Array} */ (i.value));
      if (fields.some((t) => t.number === 13)) {
        names.push(new TextDecoder().decode(/** @type {Uint8Array} */ (fields.find((t) => t.number === 8)?.value)));
      }
    }
  }
  return names;
}

/**
 * A model file whose step graph is `step` (base64 in the metadata), with checksums recomputed
 * when `fix` (so the check under test is the one that fails).
 * @param {Uint8Array} data @param {Uint8Array} step @param {boolean} [fix]
 */
export async function withStepGraph(data, step, fix = true) {
  const meta = readMetadata(data, "test");
  meta.set("edgeinfer.step_graph", Buffer.from(step).toString("base64"));
  const covered = "spec" in JSON.parse(meta.get("edgeinfer.checksums") ?? "{}");
  if (fix) meta.set("edgeinfer.checksums", JSON.stringify(await checksums(data, step, covered ? meta.get("edgeinfer.spec") : null)));
  return withMetadata(data, meta);
}

/** The step graph of a model file. @param {Uint8Array} data */
export function stepGraph(data) {
  return new Uint8Array(Buffer.from(/** @type {string} */ (readMetadata(data, "test").get("edgeinfer.step_graph")), "base64"));
}
