// load()'s contract, as Python's: named errors that state the fix, reads capped at the largest
// file the format allows, downloads with a deadline, an optional expected sha256; and the text
// calls' input checks (no raw TypeError from a wrong argument).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { InputError, ModelFileError, classifyTexts, load, predictTexts, sha256Hex } from "../src/index.js";
import { MODELS } from "./helpers.js";

const MOTIONS = new Uint8Array(readFileSync(`${MODELS}/motions.onnx`));

/**
 * A local HTTP server answering every request with `handler`; its base URL.
 * @param {(req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => void} handler
 * @returns {Promise<{url: string, close: () => Promise<void>}>}
 */
async function serve(handler) {
  const server = createServer(handler);
  await new Promise((done) => server.listen(0, "127.0.0.1", () => done(undefined)));
  const address = /** @type {import("node:net").AddressInfo} */ (server.address());
  return {
    url: `http://127.0.0.1:${address.port}/m.onnx`,
    close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done(undefined)); }),
  };
}

test("a download: the file, its expected sha256, a deadline, a cut-off body", async () => {
  const digest = await sha256Hex(MOTIONS);
  const good = await serve((_, res) => { res.setHeader("content-length", MOTIONS.length); res.end(MOTIONS); });
  try {
    const m = await load(good.url, { sha256: digest.toUpperCase() });
    assert.equal(m.fingerprint, digest);
    await assert.rejects(load(good.url, { sha256: "0".repeat(64) }),
      (e) => e instanceof ModelFileError && /sha256 [0-9a-f]{64} is not the expected 0{64}; this is not the file asked for/.test(e.message));
    await assert.rejects(load(good.url, { sha256: "abc" }), (e) => e instanceof InputError && /sha256 must be 64 hexadecimal digits/.test(e.message));
    await assert.rejects(load(good.url, { timeoutMs: -1 }), (e) => e instanceof InputError && /timeoutMs must be/.test(e.message));
  } finally {
    await good.close();
  }
  // an endless body: cut off at the deadline, never an unbounded buffer
  const endless = await serve((_, res) => {
    const chunk = new Uint8Array(1 << 16);
    const timer = setInterval(() => res.write(chunk), 5);
    res.on("close", () => clearInterval(timer));
  });
  try {
    const t0 = performance.now();
    await assert.rejects(load(endless.url, { timeoutMs: 800 }),
      (e) => e instanceof ModelFileError && /m\.onnx: not finished within 800 ms; try again, or raise timeoutMs/.test(e.message));
    assert.ok(performance.now() - t0 < 5000);
  } finally {
    await endless.close();
  }
  // a body that stops half-way: the server closes the connection early
  const cut = await serve((_, res) => {
    res.setHeader("content-length", MOTIONS.length);
    res.write(MOTIONS.subarray(0, 1000), () => res.destroy());
  });
  try {
    await assert.rejects(load(cut.url), (e) => e instanceof ModelFileError && /m\.onnx: (the download failed|the download was cut short)/.test(e.message));
  } finally {
    await cut.close();
  }
  // a server that declares more than any model file can be
  const huge = await serve((_, res) => { res.setHeader("content-length", String(2 ** 32)); res.write("x"); });
  try {
    await assert.rejects(load(huge.url), (e) => e instanceof ModelFileError && /larger than any model file can be/.test(e.message));
  } finally {
    await huge.close();
  }
});

test("paths that are not files: devices, folders, FIFOs are refused at once", async () => {
  await assert.rejects(load("/dev/zero"), (e) => e instanceof ModelFileError && /\/dev\/zero: not a file; expected an \.onnx model file/.test(e.message));
  const dir = mkdtempSync(join(tmpdir(), "edgeinfer-load-"));
  try {
    execFileSync("mkfifo", [join(dir, "pipe.onnx")]);
    await assert.rejects(load(join(dir, "pipe.onnx")), (e) => e instanceof ModelFileError && /pipe\.onnx: not a file/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("text calls: a wrong argument is an InputError naming it, never a TypeError", async () => {
  const m = await load(`${MODELS}/sentiment.onnx`);
  const cases = [[undefined, /got undefined/], [null, /got null/], [[null], /text 0 is null/], [[, "good"], /text 0 is undefined/],
    [{ length: 1e9 }, /got \{"length":1000000000\}/], ["one text", /wrap it in a list/], [[1n], /text 0 is 1n/]];
  let checked = 0;
  for (const [texts, why] of cases) {
    for (const call of [classifyTexts, predictTexts]) {
      await assert.rejects(call(m, /** @type {any} */ (texts)), (e) => e instanceof InputError && why.test(e.message));
      checked++;
    }
  }
  assert.equal(checked, 14);
  const stream = m.textStream();
  await stream.feed("a good film");
  assert.throws(() => stream.probability(/** @type {any} */ (10n)), (e) => e instanceof InputError && /unknown label 10n/.test(e.message));
});

test("classify: labelled answers with Python's flags, equal to predict", async () => {
  const s = await load(`${MODELS}/sentiment.onnx`);
  const got = await s.classify(["a wonderful, moving film", "zzzq qqxv"]);
  assert.deepEqual(got.map((a) => [a.source, a.label, a.flags]),
    [["text 0", "positive", []], ["text 1", "negative", ["low_coverage"]]]); // Python: the same
  const probs = await s.predict(["a wonderful, moving film", "zzzq qqxv"]);
  assert.equal(got[0].probability, Math.max(probs.data[0], probs.data[1]));
  assert.equal(got[0].scores.positive, probs.data[1]);
  assert.equal((await s.classify("one text")).length, 1);
  const stream = s.textStream();
  await stream.feed("zzzq qqxv good ");
  assert.deepEqual([stream.words, stream.knownWords, stream.lowCoverage], [3, 1, true]);
  const m = await load(`${MODELS}/motions.onnx`);
  const seqs = [{ data: new Float32Array(40 * 6).map((_, i) => Math.sin(i)), dims: [40, 6] },
    { data: new Float32Array(25 * 6).fill(0.5), dims: [25, 6] }];
  const answers = await m.classify(seqs);
  assert.deepEqual(answers.map((a) => a.source), ["sequence 0", "sequence 1"]);
  for (let i = 0; i < 2; i++) {
    const p = (await m.predict(seqs[i])).data;
    assert.equal(answers[i].probability, Math.max(...p));
  }
  await assert.rejects(m.classify([]), (e) => e instanceof InputError && /no feature sequences given/.test(e.message));
  await assert.rejects(s.classify([3]), (e) => e instanceof InputError && /text 0 is 3; expected a string/.test(e.message));
});
