// The file reader (src/fileformat.js) and `load`: metadata, and every refusal the format asks for
// (docs/format.md): truncated, not ONNX, no spec, newer format, formats 1-3, damaged weights
// (checksums), and external data anywhere but the step graph's own byte ranges.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

import {
  EdgeInferError, InputError, ModelFileError, ProviderError, SpecError, checksums, externalTensors, load,
  parseModelFile, readMetadata, readsTokens, runtimeVersions, sha256Hex, specToDict,
} from "../src/index.js";
import { protoFields } from "../src/fileformat.js";
import { nativeRuntime } from "../src/runtime.js";
import { sha256Plain } from "../src/sha256.js";
import {
  FIXTURES, MODELS, NEED_REFS, REFS, assertClose, concat, editInitializer, editSpec, externalInitializers, intField, lenField,
  modelBytes, raw, refs, rewrite, stepGraph, withMetadata, withStepGraph,
} from "./helpers.js";

const digits = modelBytes("digits");

/** @param {Uint8Array} data @param {RegExp} message @param {Function} [type] */
async function refused(data, message, type = ModelFileError) {
  await assert.rejects(parseModelFile(data, "bad.onnx"), (err) => {
    assert.ok(err instanceof type, `${err?.constructor?.name}: ${err?.message}`);
    assert.match(err.message, message);
    assert.ok(!err.message.includes("\n"), "one line");
    return true;
  });
}

test("the metadata of the built-in models: spec, step graph, checksums", async () => {
  for (const name of ["digits", "sentiment", "characters", "motions"]) {
    const data = modelBytes(name);
    const meta = readMetadata(data, name);
    assert.deepEqual([...meta.keys()].sort(), ["edgeinfer.checksums", "edgeinfer.spec", "edgeinfer.step_graph"]);
    const file = await parseModelFile(data, name);
    // formats 5-6 name a task (read as the input kind it fixed) and labels (the output's names); 7 says so itself
    const stored = JSON.parse(/** @type {string} */ (meta.get("edgeinfer.spec")));
    assert.equal(file.spec.input.kind, { digits: "image", sentiment: "words", characters: "chars", motions: "features" }[name]);
    assert.deepEqual(file.spec.output, { kind: "classes", per: "sequence", names: stored.labels ?? stored.output.names });
    assert.equal(file.spec.format_version, stored.format_version); // the file's own version, kept
    assert.ok(file.spec.format_version >= 4); // 4: relaid; 5: exported or measured since (io.batch_steps_from)
    assert.equal(specToDict(file.spec).format_version, 8); // written in the current format (7 terms, 8: the spec under the checksums)
    assert.deepEqual(JSON.parse(/** @type {string} */ (meta.get("edgeinfer.checksums"))), await checksums(data, file.stepGraph, meta.get("edgeinfer.spec")));
    // the step graph's shared weights are byte ranges of the file itself, and nothing else is external
    const refsOfStep = externalTensors(file.stepGraph, name);
    assert.ok(refsOfStep.length > 0 && refsOfStep.every((r) => r.location === "edgeinfer-self" && r.initializer));
    assert.deepEqual(externalTensors(data, name), []);
  }
});

test("empty, truncated and non-ONNX files", async () => {
  await refused(new Uint8Array(), /bad\.onnx: empty file; expected an ONNX model/);
  for (const cut of [1, 3, 100, digits.length >> 1, digits.length - 1]) {
    await refused(digits.subarray(0, cut), /truncated ONNX file; copy or export it again/);
  }
  await refused(new TextEncoder().encode("just some text, not a model"), /not an ONNX model file/);
  await refused(Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), /not an ONNX model file/);
  await refused(intField(1, 8), /not an ONNX model file \(no graph\)/);
  await refused(lenField(7, new Uint8Array()), /not an ONNX model file \(no IR version\)/);
  await refused(concat(intField(1, 8), lenField(7, new Uint8Array()), lenField(14, Uint8Array.of(0x0a, 0x05, 0x41))),
    /corrupt metadata/);
});

test("an ONNX file without a spec, with a broken spec, or of a newer format", async () => {
  await refused(withMetadata(digits, {}), /ONNX file without an edgeinfer spec; export it with `python -m export`/, SpecError);
  await refused(editSpec(digits, (s) => { s.format_version = 9; }), /format version 9 is newer .*\(8\); upgrade edgeinfer/, SpecError);
  await refused(editSpec(digits, (s) => { s.cell = "transformer"; }), /^bad\.onnx: unknown cell 'transformer'/, SpecError);
  const meta = readMetadata(digits, "d");
  meta.set("edgeinfer.spec", "{not json");
  await refused(withMetadata(digits, meta), /spec is not valid JSON/, SpecError);
  for (const [value, message] of [["not base64!", /step graph is corrupt/], ["QUJD=", /step graph is corrupt/],
    ["", /no step graph in the file/]]) {
    const m = readMetadata(digits, "d");
    m.set("edgeinfer.step_graph", /** @type {string} */ (value));
    await refused(withMetadata(digits, m), /** @type {RegExp} */ (message), SpecError);
  }
});

test("a file of millions of tiny protobuf fields is refused fast, in bounded memory", async () => {
  const fields = 3_000_000; // 9 MB: field 20 = 0, over and over, after an IR version
  const data = new Uint8Array(2 + 3 * fields);
  data.set([0x08, 0x08]);
  for (let i = 0; i < fields; i++) data.set([0xa0, 0x01, 0x00], 2 + 3 * i);
  const t0 = performance.now();
  await refused(data, /more protobuf fields than any model needs \(over 100,000 in one message/);
  assert.ok(performance.now() - t0 < 5000);
  // 20 nodes of 99,000 empty attributes each: every message under the cap, the file's total over it
  const attributes = new Uint8Array(2 * 99_000);
  for (let i = 0; i < 99_000; i++) attributes.set([0x2a, 0x00], 2 * i); // field 5 (attribute), empty
  const node = lenField(1, attributes);
  const graph = concat(...Array.from({ length: 20 }, () => node));
  assert.throws(() => externalTensors(concat(intField(1, 8), lenField(7, graph)), "many.onnx"),
    /many\.onnx: more protobuf fields than any model needs/);
});

test("formats 1-3 are refused with the command that rewrites them, in Python's words", async () => {
  for (const name of ["digits-gru1-format3", "sentiment-gru1-readout-format3"]) {
    const data = new Uint8Array(readFileSync(join(FIXTURES, "legacy", `${name}.onnx`)));
    for (const version of [1, 2, 3]) {
      const old = version === 3 ? data : editSpec(data, (s) => { s.format_version = version; });
      await refused(old, new RegExp(`^bad\\.onnx: a format ${version} file, whose step graph names its shared weights by `
        + "tensor name \\(formats 1-3\\), which edgeinfer no longer reads; rewrite it in format 8 with "
        + "`python -m edgeinfer_export\\.relayout OLD\\.onnx NEW\\.onnx` \\(weights untouched\\)$"));
    }
  }
});

test("checksums: a flipped bit in a weight or in the step graph reads as a damaged file", async () => {
  const meta = readMetadata(digits, "d");
  const at = digits.length >> 2; // inside the sequence graph's weights
  const flipped = digits.slice();
  flipped[at] ^= 0x10;
  await refused(flipped, /the graph is damaged \(its sha256 does not match the one written at export\); copy or export/);
  const step = stepGraph(digits);
  const badStep = step.slice();
  badStep[badStep.length - 3] ^= 1;
  await refused(await withStepGraph(digits, badStep, false), /the step graph is damaged/);
  meta.delete("edgeinfer.checksums");
  await refused(withMetadata(digits, meta), /no valid edgeinfer\.checksums in the file/);
  meta.set("edgeinfer.checksums", "[1, 2]");
  await refused(withMetadata(digits, meta), /no valid edgeinfer\.checksums in the file/);
});

test("checksums cover the spec (format 8): labels reversed or a flipped bit in it read as a damaged file", async () => {
  const reversed = editSpec(digits, (s) => { s.output.names.reverse(); }, false);
  await refused(reversed, /the spec is damaged \(its sha256 does not match the one written at export\)/);
  const text = /** @type {string} */ (readMetadata(digits, "d").get("edgeinfer.spec"));
  let refusedCount = 0, flips = 0;
  for (let i = 0; i < text.length; i += 7) { // a bit flipped in every 7th character of the spec
    const meta = readMetadata(digits, "d");
    const code = text.charCodeAt(i) ^ 1;
    meta.set("edgeinfer.spec", text.slice(0, i) + String.fromCharCode(code) + text.slice(i + 1));
    flips += 1;
    try {
      await load(withMetadata(digits, meta), { name: "flipped.onnx" });
    } catch (err) {
      if (err instanceof EdgeInferError) refusedCount += 1;
      else throw err;
    }
  }
  assert.equal(refusedCount, flips, "every flipped spec is refused");
  // a format 7 file's checksums do not cover its spec (read by the rules it was written under)
  const seven = readFileSync(join(FIXTURES, "legacy", "characters-lstm-int8-format7.onnx"));
  const edited = editSpec(new Uint8Array(seven), (s) => { s.metrics = { note: 1 }; }, false);
  assert.deepEqual((await load(edited, { name: "seven.onnx" })).spec.metrics, { note: 1 });
});

/** The step graph with one external_data entry of its first shared weight changed. @param {string} key @param {string} value */
function editRange(key, value) {
  const step = stepGraph(digits);
  const [name] = externalInitializers(step);
  return editInitializer(step, name, (tensor) => rewrite(tensor, (f) => {
    if (f.number !== 13) return null;
    const entry = protoFields(/** @type {Uint8Array} */ (f.value));
    const k = new TextDecoder().decode(/** @type {Uint8Array} */ (entry.find((e) => e.number === 1)?.value));
    return k === key ? lenField(13, concat(lenField(1, key), lenField(2, value))) : null;
  }));
}

test("the step graph's byte ranges must be exactly a sequence-graph weight's bytes", async () => {
  const cases = [
    ["location", "notes/secret.txt", /refers to external data at 'notes\/secret\.txt' \(only 'edgeinfer-self', the file itself, is allowed\)/],
    ["location", "edgeinfer-shared", /only 'edgeinfer-self'/],
    ["offset", "99999999", /outside the file/], ["length", "4", /of 4 bytes where its shape needs \d+/],
    ["offset", "1", /which are not a weight of the sequence graph/], ["offset", "-3", /outside the file/],
  ];
  for (const [key, value, why] of cases) {
    const bad = editRange(/** @type {string} */ (key), /** @type {string} */ (value));
    await refused(await withStepGraph(digits, bad, false), /the step graph is damaged/); // the checksum first
    await refused(await withStepGraph(digits, bad), /** @type {RegExp} */ (why)); // then the range check itself
  }
});

test("external data anywhere else is refused: sequence-graph weights, node attributes", async () => {
  // a sequence-graph initializer marked external (data_location = EXTERNAL, location = a local file)
  const [first] = protoFields(/** @type {Uint8Array} */ (protoFields(digits).find((f) => f.number === 7)?.value))
    .filter((f) => f.number === 5).map((f) => protoFields(/** @type {Uint8Array} */ (f.value)))
    .map((t) => new TextDecoder().decode(/** @type {Uint8Array} */ (t.find((x) => x.number === 8)?.value)));
  const external = editInitializer(digits, first, (t) => concat(t,
    lenField(13, concat(lenField(1, "location"), lenField(2, "weights.bin"))), intField(14, 1)));
  await refused(external, /refers to external data \(a file onnxruntime would read\); an edgeinfer file carries every weight/);
  // a Constant node's tensor attribute in the step graph, pointing at the file itself
  const step = stepGraph(digits);
  const tensor = concat(intField(1, 4), intField(2, 1), lenField(8, "sneaky"),
    lenField(13, concat(lenField(1, "location"), lenField(2, "edgeinfer-self"))),
    lenField(13, concat(lenField(1, "offset"), lenField(2, "0"))), lenField(13, concat(lenField(1, "length"), lenField(2, "16"))),
    intField(14, 1));
  const node = concat(lenField(2, "sneaky_out"), lenField(4, "Constant"), lenField(5, concat(lenField(1, "value"), lenField(5, tensor), intField(20, 4))));
  const withNode = rewrite(step, (g) => g.number === 7 ? lenField(7, concat(lenField(1, node), /** @type {Uint8Array} */ (g.value))) : null);
  await refused(await withStepGraph(digits, withNode), /tensor 'sneaky' refers to external data at 'edgeinfer-self' \(only/);
  // subgraphs nested past the bound
  let graph = new Uint8Array();
  for (let i = 0; i < 20; i++) graph = lenField(1, lenField(5, concat(lenField(1, "body"), lenField(6, graph))));
  await refused(await withStepGraph(digits, concat(intField(1, 8), lenField(7, graph))), /graphs nested deeper than 16 levels/);
});

test("a damaged file fails here as in Python: the same error, in the same words", NEED_REFS, async () => {
  let refusedCount = 0;
  for (const c of refs().damaged_files) {
    let p;
    try {
      const model = await load(join(REFS, c.file), { numThreads: 1 });
      p = await model.stream().step(new Float32Array(model.spec.input_size).fill(0.2));
      await model.release();
    } catch (err) {
      assert.ok(err instanceof EdgeInferError, `${c.file}: ${err}`);
      assert.deepEqual([err.name, err.message], [c.error, c.message], c.file);
      refusedCount += 1;
      continue;
    }
    assert.equal(c.error, null, `${c.file}: Python refused it (${c.message})`);
    assertClose(p, Float32Array.from(c.probs), 1e-5, c.file);
  }
  assert.ok(refusedCount >= refs().damaged_files.length / 2, `${refusedCount} refused`);
});

test("random damage is always an EdgeInferError, never a raw error", async () => {
  let seed = 7;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 150; i++) {
    const bad = digits.slice();
    for (let k = 0; k < 1 + (i % 4); k++) bad[Math.floor(rand() * bad.length)] = Math.floor(rand() * 256);
    const cut = i % 3 === 0 ? bad.subarray(0, Math.floor(rand() * bad.length)) : bad;
    try {
      await parseModelFile(cut, "fuzz");
    } catch (err) {
      assert.ok(err instanceof EdgeInferError, `${err?.constructor?.name}: ${err?.message}`);
    }
  }
});

test("load reads bytes, paths and file: URLs; the fingerprint is the file's sha256", async () => {
  const path = join(MODELS, "digits.onnx");
  const sha = await sha256Hex(digits);
  const copy = digits.slice();
  const fromBytes = await load(copy, { name: "d.onnx" });
  copy.fill(0); // the model keeps its own copy
  const fromPath = await load(path);
  const fromUrl = await load(pathToFileURL(path));
  const fromBuffer = await load(digits.buffer.slice(digits.byteOffset, digits.byteOffset + digits.byteLength));
  for (const m of [fromBytes, fromPath, fromUrl, fromBuffer]) assert.equal(m.fingerprint, sha);
  assert.equal(fromBytes.source, "d.onnx");
  assert.equal(fromPath.source, path);
  assert.equal((await fromBytes.stream().step(new Float32Array(28))).length, 10);
  await assert.rejects(load(join(MODELS, "nope.onnx")), /nope\.onnx: no such model file/);
  await assert.rejects(load(MODELS), /not a file; expected an \.onnx model file/);
  await assert.rejects(load(/** @type {any} */ (42)), ModelFileError);
  await assert.rejects(load("http://127.0.0.1:9/model.onnx"), (err) => err instanceof ModelFileError && /cannot fetch/.test(err.message));
  for (const m of [fromBytes, fromPath, fromUrl, fromBuffer]) await m.release();
});

test("the plain SHA-256 (pages without crypto.subtle) equals WebCrypto's", async () => {
  const hex = (/** @type {Uint8Array} */ d) => [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(hex(sha256Plain(new Uint8Array())), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(hex(sha256Plain(new TextEncoder().encode("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  for (const n of [1, 55, 56, 57, 63, 64, 65, 119, 120, 1000, digits.length]) {
    const data = digits.subarray(0, n);
    assert.equal(hex(sha256Plain(data)), await sha256Hex(data), `${n} bytes`);
  }
});

test("the graphs are checked against the spec when their sessions are created", async () => {
  const renamed = editSpec(digits, (s) => { s.io.output = "z"; });
  await assert.rejects(load(renamed, { name: "r.onnx" }), (err) => err instanceof ModelFileError
    && /r\.onnx \(sequence graph\): the graph's inputs and outputs do not match the spec \(missing \['z'\], unexpected inputs \[\]\)/.test(err.message));
  const labels = editSpec(digits, (s) => { // formats 1-6: the labels are the output's names
    if (s.labels) s.labels.push("ten");
    else s.output.names.push("ten");
  });
  await assert.rejects(load(labels, { name: "l.onnx" }), /the graph gives 10 classes but the spec has 11 labels; export it again/);
  const stepOnly = editSpec(digits, (s) => { s.io.step_probabilities = "q"; });
  const model = await load(stepOnly, { name: "s.onnx" }); // the sequence graph is fine; the step graph is not
  await assert.rejects(model.stream().step(new Float32Array(28)), /s\.onnx \(step graph\): .*missing \['q'\]/);
});

test("providers and threads are checked at load", async () => {
  await assert.rejects(load(digits, { executionProviders: ["webgpu-nope"] }), (err) => err instanceof ProviderError
    && /execution provider webgpu-nope is not available here/.test(err.message));
  await assert.rejects(load(digits, { executionProviders: /** @type {any} */ ([3]) }), ProviderError);
  await assert.rejects(load(digits, { numThreads: /** @type {any} */ ("2") }), InputError);
  await assert.rejects(load(digits, { numThreads: -1 }), InputError);
  await assert.rejects(load(digits, { backend: /** @type {any} */ ("gpu") }), /backend must be "auto", "node" or "wasm", got "gpu"/);
  await assert.rejects(load(digits, { dequantize: /** @type {any} */ (1) }), /dequantize must be true or false, got 1/);
  // wasm: the thread count is process-wide, fixed by the first wasm session (1 by default)
  await load(digits, { backend: "wasm" });
  await assert.rejects(load(digits, { numThreads: 3, backend: "wasm" }), /onnxruntime-web fixed its thread count at 1/);
  await load(digits, { numThreads: 1, executionProviders: ["wasm"], backend: "wasm" });
  // node (when onnxruntime-node is installed): threads per session
  if (await nativeRuntime()) {
    const m = await load(digits, { numThreads: 2, backend: "node" });
    assert.equal(m.backend, "node");
    assert.equal(m.dequantized, false);
    assert.equal(typeof runtimeVersions().node, "string");
    // auto with a browser provider named: wasm
    assert.equal((await load(digits, { executionProviders: ["wasm"], backend: "auto" })).backend, "wasm");
  } else {
    await assert.rejects(load(digits, { backend: "node" }), /backend "node" needs onnxruntime-node: npm install onnxruntime-node@/);
  }
});

test("fingerprints and specs equal Python's", NEED_REFS, async () => {
  const m = refs();
  for (const [name, ref] of [...Object.entries(m.models), ...Object.entries(m.fixtures)]) {
    const data = new Uint8Array(readFileSync(ref.path));
    const file = await parseModelFile(data, name);
    assert.equal(await sha256Hex(data), ref.fingerprint, name);
    assert.deepStrictEqual(JSON.parse(JSON.stringify(specToDict(file.spec))), ref.spec, name);
  }
});

test("every fixture's spec, written in format 7 terms, loads and gives the same numbers", async () => {
  const { readdirSync } = await import("node:fs");
  for (const name of readdirSync(FIXTURES).filter((n) => n.endsWith(".onnx"))) {
    const data = new Uint8Array(readFileSync(join(FIXTURES, name)));
    const before = await load(data, { name });
    const after = await load(editSpec(data, (raw) => {
      const seven = specToDict(before.spec);
      for (const key of Object.keys(raw)) delete raw[key];
      Object.assign(raw, seven);
    }), { name });
    assert.equal(after.spec.format_version, 8);
    assert.deepEqual(specToDict(after.spec), specToDict(before.spec), name);
    const tokens = readsTokens(after.spec);
    const f = after.spec.input_size, T = 5;
    const chunk = tokens ? [2, 3, 4, 5, 2] : { data: Float32Array.from({ length: T * f }, (_, i) => Math.sin(i)), dims: [T, f] };
    assert.deepEqual(await after.stream().feed(chunk), await before.stream().feed(chunk), name);
    const step = tokens ? 3 : Float32Array.from({ length: f }, (_, i) => Math.cos(i));
    assert.deepEqual(await after.stream().step(step), await before.stream().step(step), name);
    await before.release();
    await after.release();
  }
});

test("files of formats 4 to 6 load as their format 7 rewrites: the same spec and the same numbers", async () => {
  // each beside its rewrite by `python -m edgeinfer_export.relayout` (graphs and weights byte for byte)
  for (const [legacy, current] of [["legacy/sentiment-gru1-short-format6", "legacy/sentiment-gru1-short-format7"],
    ["legacy/digits-lstm1-int8-decomposed-format6", "legacy/digits-lstm1-int8-decomposed-format7"],
    ["legacy/characters-lstm-int8-format4", "legacy/characters-lstm-int8-format7"]]) {
    const old = await load(join(FIXTURES, `${legacy}.onnx`), { name: legacy });
    const now = await load(join(FIXTURES, `${current}.onnx`), { name: current });
    assert.ok(old.spec.format_version >= 4 && old.spec.format_version <= 6, legacy);
    assert.ok(now.spec.format_version >= 7, current);
    /** @param {import("../src/spec.js").ModelSpec} spec */
    const bare = (spec) => ({ ...specToDict(spec), provenance: {}, metrics: {} });
    assert.deepEqual(bare(old.spec), bare(now.spec), legacy);
    const tokens = readsTokens(old.spec), f = old.spec.input_size, T = 6;
    const vocab = tokens ? /** @type {any} */ (old.spec.input).vocab.length + 2 : 0;
    const x = tokens ? { data: Int32Array.from({ length: 2 * T }, (_, i) => (i % (vocab - 2)) + 2), dims: [2, T] }
      : { data: Float32Array.from({ length: 2 * T * f }, (_, i) => Math.sin(i * 0.7)), dims: [2, T, f] };
    const a = old.stream(2), b = now.stream(2);
    for (let t = 0; t < T; t++) {
      const at = tokens ? Int32Array.of(x.data[t], x.data[T + t])
        : Float32Array.from([...x.data.subarray(t * f, (t + 1) * f), ...x.data.subarray((T + t) * f, (T + t + 1) * f)]);
      assert.deepEqual(await a.step(at), await b.step(at), `${legacy} step ${t}`);
    }
    assert.deepEqual(await old.sequenceLogits(x), await now.sequenceLogits(x), legacy);
    await old.release();
    await now.release();
  }
});
