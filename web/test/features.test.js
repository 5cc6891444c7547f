// Format 7 models through real graphs: the digits-gru1 fixture given a format 7 spec of 28 raw
// features normalised by the runtime, answering class probabilities ("classes") or its logits as
// they are ("values"). Whatever a features model reads, its graphs must see the normalised rows:
// the answers equal the image model's on rows normalised beforehand, bit for bit. (A model that
// answers every step, with real (B, T, C) graphs, is checked against Python by
// tests/web through test/user/roundtrip.mjs.)

import assert from "node:assert/strict";
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import {
  InputError, ModelFileError, Snapshot, WrongTaskError, answers, load, normalizeFeatures, parseSpec, softmax, specToDict,
} from "../src/index.js";
import { FIXTURES, assertClose, editSpec } from "./helpers.js";

const SOURCE = new Uint8Array(readFileSync(join(FIXTURES, "digits-gru1.onnx")));
const F = 28;
const MEAN = Array.from({ length: F }, (_, i) => -1 + (2 * i) / (F - 1));
const STD = Array.from({ length: F }, (_, i) => 0.5 + (1.5 * i) / (F - 1));

/**
 * The fixture with a format 7 features spec.
 * @param {"classes" | "values"} kind @param {"sequence" | "step"} [per]
 */
function featuresModel(kind, per = "sequence") {
  return editSpec(SOURCE, (raw) => {
    const spec = specToDict(parseSpec(JSON.stringify(raw)));
    spec.input = { kind: "features", size: F, mean: MEAN, std: STD, names: MEAN.map((_, i) => `f${i}`) };
    spec.output = { ...spec.output, kind, per };
    if (kind === "values") spec.io.step_probabilities = "";
    for (const key of Object.keys(raw)) delete raw[key];
    Object.assign(raw, spec);
  });
}

/** Seeded float32 rows, raw (far from what the graphs were trained on: normalisation matters). @param {number} n */
function rows(n) {
  let seed = 5;
  return Float32Array.from({ length: n }, () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 8);
}

/** Row t of each sequence of x (B, T, F). @param {Float32Array} x @param {number} batch @param {number} steps @param {number} t */
function column(x, batch, steps, t) {
  const out = new Float32Array(batch * F);
  for (let b = 0; b < batch; b++) out.set(x.subarray((b * steps + t) * F, (b * steps + t + 1) * F), b * F);
  return out;
}

test("a features model reads raw features, normalised by its spec, and answers probabilities or values", async () => {
  const image = await load(SOURCE, { name: "image.onnx" });
  const classes = await load(featuresModel("classes"), { name: "classes.onnx" });
  const values = await load(featuresModel("values"), { name: "values.onnx" });
  assert.equal(values.spec.format_version, 8);
  assert.equal(values.spec.input.kind, "features");
  assert.deepEqual(values.labels, [..."0123456789"]);
  const [B, T] = [3, 6];
  const x = rows(B * T * F), before = x.slice();
  const seen = normalizeFeatures(values.spec, x); // what the graphs must read
  const dims = [B, T, F];
  const logits = await image.predictLogits({ data: seen, dims });
  assert.deepEqual(await values.predict({ data: x, dims }), logits); // values: the logits as they are
  assert.deepEqual(await values.predictLogits({ data: x, dims }), logits);
  assert.deepEqual(await classes.predict({ data: x, dims }), await image.predict({ data: seen, dims }));
  assert.deepEqual(await values.sequenceLogits({ data: x, dims }), logits);
  const raw = await image.predictLogits({ data: x, dims });
  assert.ok(raw.data.some((v, i) => Math.abs(v - logits.data[i]) > 1e-3)); // raw rows are not what it reads
  const one = await values.predict({ data: x.subarray(0, T * F), dims: [T, F] });
  assert.deepEqual(one, { data: logits.data.subarray(0, 10), dims: [10] });

  const ref = image.stream(B), got = values.stream(B), probs = classes.stream(B);
  for (let t = 0; t < T; t++) {
    const answer = await got.step(column(x, B, T, t));
    const p = await probs.step(column(x, B, T, t));
    await ref.step(column(seen, B, T, t));
    assert.deepEqual(answer, ref.logits);
    assert.deepEqual(got.logits, ref.logits);
    assertClose(p, ref.probabilities, 1e-6, `step ${t} probabilities`);
    if (t === 0) assert.notEqual(answer, got.logits); // a copy: the next step cannot change it
  }
  assert.deepEqual(got.probabilities, ref.logits); // values: the latest output as it is
  assertClose(probs.probabilities, softmax(/** @type {Float32Array} */ (ref.logits), 10), 1e-6, "probabilities");
  const traced = await values.stream(B).trace({ data: x, dims });
  assert.deepEqual(traced.data.subarray((T - 1) * 10, T * 10), /** @type {Float32Array} */ (ref.logits).subarray(0, 10));
  const fed = values.stream(B);
  const half = (/** @type {number} */ a, /** @type {number} */ b) => {
    const out = new Float32Array(B * (b - a) * F);
    for (let r = 0; r < B; r++) out.set(x.subarray((r * T + a) * F, (r * T + b) * F), r * (b - a) * F);
    return { data: out, dims: [B, b - a, F] };
  };
  const firstPart = await fed.feed(half(0, 2));
  assertClose(firstPart, (await values.predict(half(0, 2))).data, 1e-6, "feed of the first two steps");
  assertClose(await fed.feed(half(2, T)), /** @type {Float32Array} */ (ref.logits), 1e-6, "feed, the state carried");
  assert.deepEqual(x, before); // the caller's raw features are never normalised in place

  // snapshots carry the values model's output as its logits
  const s = values.stream();
  await s.step(x.subarray(0, F));
  const restored = values.stream();
  await restored.restore(s.snapshot());
  assert.deepEqual(restored.probabilities, s.logits);
  assert.deepEqual(await restored.step(x.subarray(F, 2 * F)), await s.step(x.subarray(F, 2 * F)));
  await assert.rejects(restored.restore(/** @type {any} */ (new Snapshot("0".repeat(64), {}, null, 0))), InputError);

  // tasks are chosen by input kind
  assert.equal(values.requireInput("features"), values.spec.input);
  assert.throws(() => values.requireInput("image"), (err) => err instanceof WrongTaskError
    && err.message === "values.onnx: a model that reads features; expected a model that reads image");
  assert.throws(() => values.textStream(), /values\.onnx: a model that reads features does not read text$/);
  await assert.rejects(values.predict({ data: new Float32Array(27), dims: [1, 27] }),
    /values\.onnx: input has shape \(1, 27\); expected \(B, T, 28\) or \(T, 28\), T >= 1/);
  await assert.rejects(values.sequenceLogits({ data: x, dims }, [6, 6, 5]),
    /values\.onnx: this model reads whole rows only \(no lengths input\)/);
  for (const m of [image, classes, values]) await m.release();
});

test("a model that answers every step: the sequence graph must give (B, T, C); a step answers the step", async () => {
  // the fixture's sequence graph answers once per sequence: a spec that says per step is caught at its first run
  const perStep = await load(featuresModel("values", "step"), { name: "per-step.onnx" });
  const x = rows(2 * 4 * F);
  await assert.rejects(perStep.predict({ data: x, dims: [2, 4, F] }), (err) => err instanceof ModelFileError
    && err.message === "per-step.onnx: the sequence graph gave float32 (2, 10) for 'y' where 80 float32 values were "
      + "expected; export it again");
  // its step graph still answers one step: (B, C)
  const s = perStep.stream(2);
  assert.equal((await s.step(x.subarray(0, 2 * F))).length, 20);
  // lastStep takes each row's last valid step of (B, T, C)
  const out = Float32Array.from({ length: 2 * 4 * 10 }, (_, i) => i);
  assert.deepEqual(perStep.lastStep(out, 2, 4), Float32Array.from([...out.subarray(30, 40), ...out.subarray(70, 80)]));
  assert.deepEqual(perStep.lastStep(out, 2, 4, [2, 0]), Float32Array.from([...out.subarray(10, 20), ...out.subarray(40, 50)]));
  const perSequence = await load(featuresModel("values"), { name: "v.onnx" });
  assert.equal(perSequence.lastStep(out, 2, 4), out);
  assert.deepEqual(answers(perSequence.spec, out.subarray(0, 10)), out.subarray(0, 10));
  await perStep.release();
  await perSequence.release();
});

test("a token model's sequence path takes ids and lengths; padding past a row's length is not read", async () => {
  const m = await load(join(FIXTURES, "sentiment-gru2.onnx"), { name: "s.onnx" });
  const ids = [5, 9, 2, 14, 3, 7, 11, 4, 8, 0, 0, 0];
  const got = await m.sequenceLogits({ data: Int32Array.from(ids), dims: [2, 6] }, [6, 3]);
  assert.deepEqual(got.dims, [2, 2]);
  for (const [r, n] of [[0, 6], [1, 3]]) {
    const s = m.stream();
    const p = await s.feed(ids.slice(r * 6, r * 6 + n));
    assertClose(answers(m.spec, got.data.subarray(r * 2, r * 2 + 2)), p, 1e-6, `row ${r}`);
  }
  await assert.rejects(m.sequenceLogits({ data: Int32Array.from(ids), dims: [2, 6] }, [6, 7]),
    /s\.onnx: lengths must be 2 whole numbers from 1 to 6, one per row/);
  await assert.rejects(m.sequenceLogits({ data: Float32Array.from(ids), dims: [2, 6] }), /token ids \(integers\)/);
  await assert.rejects(m.sequenceLogits({ data: Int32Array.from(ids), dims: [2, 6, 1] }),
    /s\.onnx: input has shape \(2, 6, 1\); expected \(B, T\) int64 token ids/);
  // predict takes token ids too (every row read whole), besides texts
  const whole = await m.predict({ data: Int32Array.from(ids.slice(0, 6)), dims: [1, 6] });
  assert.deepEqual(whole.dims, [1, 2]);
  assertClose(whole.data, await m.stream().feed(ids.slice(0, 6)), 1e-6, "predict of ids");
  assert.deepEqual(await m.predict(ids.slice(0, 6)), { data: whole.data, dims: [2] });
  assert.deepEqual((await m.predict([])).dims, [0, 2]); // an empty list: no texts
  const c = await load(join(FIXTURES, "characters-lstm-int8.onnx"), { name: "c.onnx" });
  const p = await c.predict({ data: Int32Array.of(5, 6, 7, 8, 5, 6, 7, 9), dims: [2, 4] });
  assert.deepEqual(p.dims, [2, c.classes]);
  assertClose(p.data.subarray(0, c.classes), await c.stream().feed([5, 6, 7, 8]), 1e-6, "characters predict");
  const input = (/** @type {unknown} */ x, /** @type {RegExp} */ re) => assert.rejects(c.predict(/** @type {any} */ (x)),
    (err) => err instanceof InputError && re.test(err.message));
  await input([], /^c\.onnx: token ids of shape \(0,\); expected \(B, T\) or \(T,\), T >= 1$/);
  await input({ data: [], dims: [1, 0] }, /^c\.onnx: token ids of shape \(1, 0\); expected \(B, T\) or \(T,\), T >= 1$/);
  await input([1.5, 2], /^stream input must be token ids \(integers\)/);
  await input([c.classes + 5], /^token id out of range; expected 0 <= id < /);
  await c.release();
  await m.release();
});
