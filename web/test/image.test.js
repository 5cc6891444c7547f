// The image preprocessing port (src/image.js) against Python's edgeinfer.preprocess.image.
//
// The unit tests run anywhere. The parity test needs reference data from Python: run through
// tests/web/test_web_image.py (pytest), or by hand:
//   .venv/bin/python -m tests.web.image_refs /tmp/refs
//   EDGEINFER_IMAGE_REFS=/tmp/refs node --test web/test/image.test.js
// It computes every image's input here, writes them to js.bin beside the references (pytest
// then compares the digits model's labels) and checks each image's mean absolute difference.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { ImageError, InputError, SpecError, WrongTaskError } from "../src/errors.js";
import {
  median32, pairwiseSum32, preprocessImage, resizeLanczos, roundHalfEven,
} from "../src/image.js";

const SPEC = { input: { kind: "image", rows: 28, cols: 28, scale: 1 / 255, mean: 0.1307, std: 0.3081, fit_px: 20 } };
const MAX_MEAN_ABS = 0.01; // the bound per image (the port aims at float32 rounding)

/** A dark-on-light bar on paper, as RGBA (like test_image.py's digit_canvas). */
function canvas(h = 120, w = 90, alpha = 255) {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = y >= 20 && y < 100 && x >= 10 && x < 30 ? 20 : 240;
      data.set([v, v, v, alpha], 4 * (y * w + x));
    }
  }
  return { data, width: w, height: h };
}

test("Python's round: halves to even", () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, 2.5001, 3].map(roundHalfEven), [0, 2, 2, 0, -2, 2, 3, 3]);
});

test("numpy's median: mean of the two middle values for even counts, in float32", () => {
  assert.equal(median32(Float32Array.of(3, 1, 2)), 2);
  assert.equal(median32(Float32Array.of(4, 1, 3, 2)), 2.5);
  assert.equal(median32(Float32Array.of(0.1, 0.2)), Math.fround(Math.fround(Math.fround(0.1) + Math.fround(0.2)) / 2));
});

test("pairwise float32 sum follows numpy's blocking", () => {
  const a = Float32Array.from({ length: 300 }, (_, i) => Math.fround(1 + i * 1e-3));
  let naive = 0;
  for (const v of a) naive = Math.fround(naive + v);
  const s = pairwiseSum32(a, 0, a.length);
  assert.ok(Math.abs(s - 344.85) < 1e-3, String(s));
  assert.equal(pairwiseSum32(a, 0, 5), Math.fround(Math.fround(Math.fround(Math.fround(a[0] + a[1]) + a[2]) + a[3]) + a[4]));
});

test("Lanczos resize keeps constants and copies an unchanged size", () => {
  const ones = new Float32Array(30 * 17).fill(1);
  for (const [w, h] of [[20, 11], [7, 30], [45, 17], [1, 1]]) {
    const out = resizeLanczos(ones, 30, 17, w, h);
    assert.equal(out.length, w * h);
    for (const v of out) assert.ok(Math.abs(v - 1) < 1e-6, `${w}x${h}: ${v}`);
  }
  const same = resizeLanczos(ones, 30, 17, 30, 17);
  assert.notEqual(same, ones);
  assert.deepEqual(same, ones);
});

test("a dark-on-light digit is cropped, scaled to fit_px and centred", () => {
  const { data, dims } = preprocessImage(SPEC, canvas());
  assert.deepEqual(dims, [28, 28]);
  assert.equal(data.length, 28 * 28);
  const bg = (0 - 0.1307) / 0.3081;
  let rows = 0, minX = 28, maxX = -1;
  for (let y = 0; y < 28; y++) {
    let ink = false;
    for (let x = 0; x < 28; x++) {
      if (data[y * 28 + x] * 0.3081 + 0.1307 > 0.2) { ink = true; minX = Math.min(minX, x); maxX = Math.max(maxX, x); }
    }
    rows += ink ? 1 : 0;
  }
  assert.equal(rows, 20);
  assert.ok(maxX - minX + 1 >= 4 && maxX - minX + 1 <= 6);
  assert.ok(Math.abs(data[0] - bg) < 1e-6);
});

test("transparency is composited over the background the ink is not", () => {
  // black ink drawn on a transparent canvas: ink in the alpha channel only
  const w = 40, h = 40, data = new Uint8ClampedArray(w * h * 4);
  for (let y = 10; y < 30; y++) for (let x = 18; x < 22; x++) data[4 * (y * w + x) + 3] = 255;
  const out = preprocessImage(SPEC, { data, width: w, height: h }).data;
  const max = Math.max(...out), min = Math.min(...out);
  assert.ok(Math.abs(max - (1 - 0.1307) / 0.3081) < 1e-5 && Math.abs(min - (0 - 0.1307) / 0.3081) < 1e-5);
});

test("errors name the image and say what is wrong, as Python's", () => {
  const blank = { data: new Uint8ClampedArray(20 * 10 * 4).fill(255), width: 20, height: 10 };
  assert.throws(() => preprocessImage(SPEC, blank, { name: "pad.png" }), (e) => e instanceof ImageError
    && e instanceof InputError && e.message === "pad.png: no digit found (the image is blank or has no contrast)");
  assert.throws(() => preprocessImage(SPEC, { data: new Uint8Array(10), width: 2, height: 2 }),
    (e) => e instanceof ImageError && /^image: 10 pixel values for 2x2 RGBA pixels; expected 16/.test(e.message));
  for (const [width, height] of [[0, 3], [2.5, 2], [-1, 4], [undefined, 2]]) {
    assert.throws(() => preprocessImage(SPEC, { data: new Uint8Array(0), width, height }),
      (e) => e instanceof ImageError && /invalid size/.test(e.message));
  }
  assert.throws(() => preprocessImage(SPEC, { data: [0, 0, 0, NaN], width: 1, height: 1 }),
    (e) => e instanceof ImageError && e.message === "image: the image holds NaN or infinite pixel values; expected finite pixels");
  assert.throws(() => preprocessImage(SPEC, { data: [0, 0, 0, 256], width: 1, height: 1 }), ImageError);
  assert.throws(() => preprocessImage(SPEC, { data: new Uint8Array(4), width: 8000, height: 6000 }),
    (e) => e instanceof ImageError && /8000x6000 pixels is over the limit of 40,000,000; resize the image first/.test(e.message));
  assert.throws(() => preprocessImage(SPEC, null), ImageError);
  assert.throws(() => preprocessImage({ input: { kind: "words" } }, canvas()), WrongTaskError);
  assert.throws(() => preprocessImage({ input: { ...SPEC.input, fit_px: 29 } }, canvas()), SpecError);
});

test("plain arrays of bytes are accepted and agree with typed arrays", () => {
  const img = canvas(50, 40);
  const a = preprocessImage(SPEC, img).data;
  const b = preprocessImage(SPEC, { ...img, data: Array.from(img.data) }).data;
  assert.deepEqual(a, b);
});

const REFS = process.env.EDGEINFER_IMAGE_REFS;

test("parity with Python's load_digit on the reference images", { skip: !REFS && "EDGEINFER_IMAGE_REFS not set" }, () => {
  const dir = /** @type {string} */ (REFS);
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  const rgba = readFileSync(join(dir, "rgba.bin"));
  const pyBytes = readFileSync(join(dir, "python.bin"));
  const { rows, cols } = manifest.spec.input;
  const size = rows * cols;
  const python = new Float32Array(pyBytes.buffer, pyBytes.byteOffset, pyBytes.length / 4);
  const js = new Float32Array(manifest.images.length * size);
  const failures = [];
  let worst = 0, worstName = "", sum = 0, compared = 0, exact = 0;
  const t0 = performance.now();
  manifest.images.forEach((/** @type {any} */ entry, /** @type {number} */ i) => {
    const { name, width, height, offset } = entry;
    const data = new Uint8Array(rgba.buffer, rgba.byteOffset + offset, width * height * 4);
    let out;
    try {
      const got = preprocessImage(manifest.spec, { data, width, height }, { name });
      out = got.data;
      if (got.unclear !== entry.unclear) failures.push(`${name}: JS unclear ${got.unclear}, Python ${entry.unclear}`);
    } catch (e) {
      if (!(e instanceof ImageError)) throw e;
      if (e.message !== entry.error) failures.push(`${name}: JS refused it: ${e.message}; Python: ${entry.error ?? "accepted"}`);
      return;
    }
    if (entry.error) {
      failures.push(`${name}: Python refused it (${entry.error}), JS did not`);
      return;
    }
    js.set(out, i * size);
    let diff = 0;
    for (let j = 0; j < size; j++) diff += Math.abs(out[j] - python[i * size + j]);
    diff /= size;
    if (diff > MAX_MEAN_ABS) failures.push(`${name}: mean |JS - Python| = ${diff}`);
    // the photos are RGB without alpha: every step of their path is exact, so the bits must agree
    if (name.endsWith("-photo.png") && diff !== 0) failures.push(`${name}: a photo, not bit-identical (${diff})`);
    if (diff > worst) { worst = diff; worstName = name; }
    if (diff === 0) exact++;
    sum += diff;
    compared++;
  });
  const ms = performance.now() - t0;
  writeFileSync(join(dir, "js.bin"), new Uint8Array(js.buffer));
  const report = { compared, exact, worst, worstName, mean: sum / compared, ms };
  writeFileSync(join(dir, "js.json"), JSON.stringify(report));
  console.log(`# ${compared} images: ${exact} identical, mean |diff| ${report.mean.toExponential(2)}, `
    + `worst ${worst.toExponential(2)} (${worstName}); ${ms.toFixed(0)} ms`);
  assert.ok(compared > 0, "no images compared");
  assert.deepEqual(failures, []);
});
