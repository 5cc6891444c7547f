// Snapshots (src/snapshot.js, src/zip.js): the bytes Python writes are read, and written back byte
// for byte; deflated members and zip64 records are read; declared sizes and .npy headers are
// checked before anything is built; every field is checked as Python checks it.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { InputError, Snapshot, load } from "../src/index.js";
import { crc32, listZip, writeZip } from "../src/zip.js";
import { FIXTURES, NEED_REFS, concat, modelBytes, refArray, refBytes, refs } from "./helpers.js";

const SHA = "ab".repeat(32);

/** A .npy file's bytes with a hand-written header. @param {string} header @param {Uint8Array} body */
function npy(header, body) {
  const text = `${header}${" ".repeat(64 - ((header.length + 11) % 64))}\n`;
  return concat(Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, text.length & 0xff, text.length >> 8),
    new TextEncoder().encode(text), body);
}

/** @param {string} json */
function metaNpy(json) {
  const points = [...json].map((c) => /** @type {number} */ (c.codePointAt(0)));
  const body = new Uint8Array(points.length * 4);
  points.forEach((p, i) => new DataView(body.buffer).setUint32(i * 4, p, true));
  return npy(`{'descr': '<U${points.length}', 'fortran_order': False, 'shape': (), }`, body);
}

/** @param {number[]} shape @param {ArrayLike<number>} values @param {string} [descr] */
function floatNpy(shape, values, descr = "<f4") {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  const body = new Uint8Array(new Float32Array(values).buffer);
  return npy(`{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`, body);
}

// a snapshot taken before the first step (no logits) unless `extra` says otherwise
const meta = (/** @type {object} */ extra = {}) => metaNpy(JSON.stringify({ magic: "edgeinfer-snapshot-1", model: SHA, steps: 0, ...extra }));

/** @param {Uint8Array} data */
async function deflate(data) {
  const stream = new Blob([data]).stream().pipeThrough(new CompressionStream(/** @type {any} */ ("deflate-raw")));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * A ZIP written by hand: deflated members, and optionally zip64 sizes and offsets in the central
 * directory and a zip64 end record (what large archives and some writers use).
 * @param {Array<{name: string, data: Uint8Array}>} members @param {{deflated?: boolean, zip64?: boolean}} how
 */
async function handZip(members, { deflated = false, zip64 = false } = {}) {
  const locals = [], centrals = [];
  let offset = 0;
  for (const m of members) {
    const body = deflated ? await deflate(m.data) : m.data;
    const name = new TextEncoder().encode(m.name);
    const local = new Uint8Array(30 + name.length + body.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true); lv.setUint16(4, 20, true); lv.setUint16(8, deflated ? 8 : 0, true);
    lv.setUint32(14, crc32(m.data), true); lv.setUint32(18, body.length, true); lv.setUint32(22, m.data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    local.set(body, 30 + name.length);
    const extra = zip64 ? new Uint8Array(28) : new Uint8Array();
    if (zip64) {
      const ev = new DataView(extra.buffer);
      ev.setUint16(0, 1, true); ev.setUint16(2, 24, true);
      ev.setBigUint64(4, BigInt(m.data.length), true); ev.setBigUint64(12, BigInt(body.length), true);
      ev.setBigUint64(20, BigInt(offset), true);
    }
    const central = new Uint8Array(46 + name.length + extra.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true); cv.setUint16(6, 20, true); cv.setUint16(10, deflated ? 8 : 0, true);
    cv.setUint32(16, crc32(m.data), true);
    cv.setUint32(20, zip64 ? 0xffffffff : body.length, true); cv.setUint32(24, zip64 ? 0xffffffff : m.data.length, true);
    cv.setUint16(28, name.length, true); cv.setUint16(30, extra.length, true);
    cv.setUint32(42, zip64 ? 0xffffffff : offset, true);
    central.set(name, 46);
    central.set(extra, 46 + name.length);
    locals.push(local);
    centrals.push(central);
    offset += local.length;
  }
  const cd = concat(...centrals);
  const tail = [];
  if (zip64) {
    const end64 = new Uint8Array(56 + 20);
    const v = new DataView(end64.buffer);
    v.setUint32(0, 0x06064b50, true); v.setBigUint64(4, 44n, true); v.setBigUint64(24, BigInt(members.length), true);
    v.setBigUint64(32, BigInt(members.length), true); v.setBigUint64(40, BigInt(cd.length), true);
    v.setBigUint64(48, BigInt(offset), true);
    v.setUint32(56, 0x07064b50, true); v.setBigUint64(64, BigInt(offset + cd.length), true); v.setUint32(72, 1, true);
    tail.push(end64);
  }
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, zip64 ? 0xffff : members.length, true); ev.setUint16(10, zip64 ? 0xffff : members.length, true);
  ev.setUint32(12, zip64 ? 0xffffffff : cd.length, true); ev.setUint32(16, zip64 ? 0xffffffff : offset, true);
  return concat(...locals, cd, ...tail, end);
}

const STATE = [{ name: "state.h.npy", data: floatNpy([1, 1, 4], [0.5, -1, 2, 3]) }];

test("a snapshot round-trips through its bytes", async () => {
  const snap = new Snapshot(SHA, { h: { data: Float32Array.of(1, 2, 3, 4), dims: [1, 1, 4] }, c: { data: Float32Array.of(-0, 5e-39, 1e30, 7), dims: [1, 1, 4] } },
    { data: Float32Array.of(0.25, -3), dims: [1, 2] }, 12);
  const again = await Snapshot.fromBytes(snap.toBytes());
  assert.deepEqual(again, snap);
  assert.deepEqual(listZip(snap.toBytes()).map((e) => e.name), ["meta.npy", "state.h.npy", "state.c.npy", "logits.npy"]);
  const none = await Snapshot.fromBytes(new Snapshot(SHA, { h: { data: new Float32Array(4), dims: [1, 1, 4] } }, null, 0).toBytes());
  assert.equal(none.logits, null);
});

test("deflated members, zip64 records and Fortran-order arrays are read", async () => {
  const members = [{ name: "meta.npy", data: meta({ steps: 3 }) }, ...STATE, { name: "logits.npy", data: floatNpy([1, 2], [0.25, -4]) }];
  for (const how of [{ deflated: true }, { zip64: true }, { deflated: true, zip64: true }]) {
    const snap = await Snapshot.fromBytes(await handZip(members, how));
    assert.deepEqual([...snap.state.h.data], [0.5, -1, 2, 3], JSON.stringify(how));
    assert.deepEqual([...(snap.logits?.data ?? [])], [0.25, -4]);
    assert.equal(snap.steps, 3);
  }
  const fortran = npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 1, 3), }", new Uint8Array(Float32Array.of(1, 4, 2, 5, 3, 6).buffer));
  const snap = await Snapshot.fromBytes(writeZip([{ name: "meta.npy", data: meta() }, { name: "state.h.npy", data: fortran }]));
  assert.deepEqual([...snap.state.h.data], [1, 2, 3, 4, 5, 6]);
});

test("a snapshot bomb is refused before unpacking", async () => {
  const bomb = await handZip([{ name: "meta.npy", data: meta() }, { name: "state.h.npy", data: new Uint8Array(64 << 20) }], { deflated: true });
  assert.ok(bomb.length < 200_000);
  await assert.rejects(Snapshot.fromBytes(bomb, 1 << 20), /snapshot would unpack to more than 1,048,576 bytes/);
  const model = await load(modelBytes("digits"));
  await assert.rejects(model.stream().restore(bomb), /would unpack to more than/);
  await model.release();
});

test("headers, dtypes, values and meta fields are checked", async () => {
  /** @param {Array<{name: string, data: Uint8Array}>} members @param {RegExp} message */
  const refuse = (members, message) => assert.rejects(Snapshot.fromBytes(writeZip(members)),
    (err) => err instanceof InputError && message.test(err.message));
  const damaged = /not an edgeinfer stream snapshot \(damaged or of another kind\)/;
  const lying = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 1000, 1000), }", new Uint8Array(16));
  await refuse([{ name: "meta.npy", data: meta() }, { name: "state.h.npy", data: lying }], damaged);
  await refuse([{ name: "meta.npy", data: meta() }, { name: "state.h.npy", data: floatNpy([1, 1, 2], [1, 2], "|O") }], damaged);
  await refuse([{ name: "meta.npy", data: meta() }, { name: "evil.npy", data: STATE[0].data }], damaged);
  await refuse([{ name: "meta.npy", data: meta() }, { name: "../state.h.npy", data: STATE[0].data }], damaged);
  await refuse(STATE, damaged); // no meta
  await refuse([{ name: "meta.npy", data: meta() }, { name: "state.h.npy", data: floatNpy([1, 1, 2], [1, 2, 3, 4], "<f8") }],
    /snapshot state must be finite float32 \(layers, batch, hidden\) arrays; it is damaged/);
  await refuse([{ name: "meta.npy", data: meta() }, { name: "state.h.npy", data: floatNpy([1, 2], [1, 2]) }], /finite float32/);
  await refuse([{ name: "meta.npy", data: meta() }, { name: "state.h.npy", data: floatNpy([1, 1, 2], [1, NaN]) }], /finite float32/);
  await refuse([{ name: "meta.npy", data: meta() }], /finite float32/); // no state at all
  await refuse([{ name: "meta.npy", data: meta({ steps: 3 }) }, ...STATE], /snapshot counts 3 steps but holds no logits; it is damaged/);
  await refuse([{ name: "meta.npy", data: meta() }, ...STATE, ...STATE], damaged); // a member twice
  await refuse([{ name: "meta.npy", data: meta() }, ...STATE, { name: "logits.npy", data: floatNpy([2], [1, 2]) }],
    /snapshot logits must be a finite float32 \(batch, classes\) array/);
  for (const [extra, message] of [[{ steps: null }, /step count null is not a whole number/], [{ steps: 1e30 }, /step count/],
    [{ steps: -5 }, /step count/], [{ steps: "3" }, /step count/], [{ model: 7 }, /names no model/],
    [{ model: "AB".repeat(32) }, /names no model/], [{ magic: "other" }, /^not an edgeinfer stream snapshot$/]]) {
    await refuse([{ name: "meta.npy", data: meta(/** @type {object} */ (extra)) }, ...STATE], /** @type {RegExp} */ (message));
  }
  await refuse([{ name: "meta.npy", data: metaNpy('{"magic": "edgeinfer-snapshot-1", "model": "' + SHA + '", "steps": 3.0}') }, ...STATE], /step count 3 is not/);
  await refuse([{ name: "meta.npy", data: metaNpy("[1, 2]") }, ...STATE], /^not an edgeinfer stream snapshot$/);
  const good = writeZip([{ name: "meta.npy", data: meta() }, ...STATE]);
  const crc = good.slice();
  crc[good.length - 60] ^= 1; // a byte of the last member's data: the CRC no longer matches
  await assert.rejects(Snapshot.fromBytes(crc), damaged);
  for (const garbage of [new Uint8Array(), new Uint8Array(100), new TextEncoder().encode("PK\x05\x06"), good.subarray(0, good.length - 5)]) {
    await assert.rejects(Snapshot.fromBytes(garbage), damaged);
  }
  await assert.rejects(Snapshot.fromBytes(/** @type {any} */ ("text")), /a snapshot is bytes/);
});

test("restore: only a snapshot of this model file and batch size", async () => {
  const digits = await load(modelBytes("digits"));
  const characters = await load(modelBytes("characters"));
  const s = digits.stream();
  await s.step(new Float32Array(28).fill(0.3));
  const bytes = s.snapshot();
  await assert.rejects(characters.stream().restore(bytes), /snapshot was taken from another model \(sha256 [0-9a-f]{12}\.\.\.\); this stream runs model bytes/);
  await assert.rejects(digits.stream(2).restore(bytes), /snapshot state does not fit a stream of batch 2/);
  await assert.rejects(digits.stream().restore(/** @type {any} */ (42)), InputError);
  const t = digits.stream();
  await t.restore(bytes);
  assert.equal(t.steps, 1);
  assert.deepEqual(t.logits, s.logits);
  await digits.release();
  await characters.release();
});

/**
 * A snapshot of `stream` with one state value changed. @param {any} stream @param {string} key
 * @param {number} index @param {number} value
 */
function altered(stream, key, index, value) {
  const snap = stream.snapshotObject();
  const data = Float32Array.from(snap.state[key].data);
  data[index] = value;
  return new Snapshot(snap.model, { ...snap.state, [key]: { data, dims: snap.state[key].dims } }, snap.logits, snap.steps);
}

test("restore refuses a state no stream of this model reaches, as Python does, and the stream stays as it was", async () => {
  const digits = await load(modelBytes("digits")); // an LSTM: h within [-1, 1], c within steps + 1
  const s = digits.stream();
  for (let t = 0; t < 3; t++) await s.step(new Float32Array(28).fill(0.1 * t));
  const fresh = digits.stream();
  await assert.rejects(fresh.restore(altered(s, "h", 5, 3e38)),
    { name: "InputError", message: "snapshot state 'h' holds 3e+38, beyond the 1 a stream of this model can reach after 3 steps; it is damaged" });
  await assert.rejects(fresh.restore(altered(s, "h", 0, -1.125)), { message: /'h' holds 1.12, beyond the 1 a stream/ }); // half to even
  await assert.rejects(fresh.restore(altered(s, "c", 7, -4.5)), { message: /'c' holds 4.5, beyond the 4 a stream of this model can reach after 3 steps/ });
  assert.equal(fresh.steps, 0);
  assert.equal(fresh.logits, null);
  await fresh.restore(altered(s, "c", 7, 3.5)); // reachable: taken
  assert.equal(fresh.steps, 3);
  // the readout fixture (a GRU, pooled and n-gram): its count, running maximum, sum and previous words
  const readout = await load(new Uint8Array(readFileSync(`${FIXTURES}/sentiment-gru1-readout.onnx`)));
  const r = readout.stream();
  for (const id of [3, 5, 7, 9]) await r.step(id);
  const vocab = /** @type {any} */ (readout.spec.input).vocab.length + 2;
  const cases = [["count", 0, -5, /'count' must count the steps read \(whole numbers from 0 to 4\)/],
    ["count", 0, 2.5, /'count' must count the steps read/], ["pool_max", 3, 1.5, /'pool_max' holds 1.5, beyond the 1 a stream/],
    ["pool_sum", 1, -4.5, /'pool_sum' holds 4.5, beyond the 4 a stream of this model can reach after 4 steps/],
    ["prev", 0, -1, /'prev' must hold the latest words' token ids/], ["prev", 1, 2.5, /'prev' must hold/],
    ["prev", 0, vocab, new RegExp(`token ids \\(whole numbers from 0 to ${vocab - 1}\\); it is damaged`)]];
  for (const [key, index, value, message] of cases) {
    await assert.rejects(readout.stream().restore(altered(r, /** @type {string} */ (key), /** @type {number} */ (index),
      /** @type {number} */ (value))), { name: "InputError", message: /** @type {RegExp} */ (message) }, `${key} = ${value}`);
  }
  const back = readout.stream();
  await back.restore(r.snapshot());
  assert.equal(back.steps, 4);
  await digits.release();
  await readout.release();
});

test("Python's snapshot bytes are read, and written back byte for byte", NEED_REFS, async () => {
  for (const [name, ref] of Object.entries(refs().models)) {
    const bytes = refBytes(ref.snapshot.bytes);
    const snap = await Snapshot.fromBytes(bytes);
    assert.equal(snap.model, ref.fingerprint);
    assert.equal(snap.steps, ref.snapshot.at);
    for (const [k, arr] of Object.entries(ref.snapshot.state)) {
      assert.deepEqual(snap.state[k].data, refArray(/** @type {any} */ (arr)), `${name} ${k}`);
      assert.deepEqual(snap.state[k].dims, /** @type {any} */ (arr).dims);
    }
    assert.deepEqual(snap.logits?.data, refArray(ref.snapshot.logits));
    assert.deepEqual(snap.toBytes(), bytes, `${name}: JS writes what numpy's savez writes`);
  }
});
