// The spec (src/spec.js): every field validated as Python validates it (tests/edgeinfer/test_spec.py's
// cases), int and float told apart as Python's json does, older formats (1-6: a task, labels and a
// readout) read into format 7's terms, and format 7's features input, output and generic state.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  SpecError, WrongTaskError, answers, givesClasses, initialState, labels, normalizeFeatures, parseSpec, perStep, readout,
  readsTokens, requireInput, softmax, specFromDict, specToDict, stateFor,
} from "../src/index.js";
import { JsonSyntaxError, PyFloat, parseJson } from "../src/json.js";
import { readMetadata } from "../src/fileformat.js";
import { MAX_STATE_ELEMENTS, parseInput, parseOutput, pyFloat, pyFormatG } from "../src/spec.js";
import { NEED_REFS, modelBytes, refs } from "./helpers.js";

/** An assert.throws check of the error's message (not its "Name: message" string). @param {RegExp} re */
const says = (re) => (/** @type {any} */ err) => {
  assert.match(err.message, re);
  return true;
};

/** @param {string} name */
const specText = (name) => /** @type {string} */ (readMetadata(modelBytes(name), name).get("edgeinfer.spec"));
const SPECS = { digits: parseSpec(specText("digits")), sentiment: parseSpec(specText("sentiment")),
  characters: parseSpec(specText("characters")) };
/** A built-in's spec as format 7 plain data (what Python's to_json writes). @param {keyof SPECS} name @returns {any} */
const seven = (name) => JSON.parse(JSON.stringify(specToDict(SPECS[name])));
/** @type {Record<string, string>} */
const KIND_TASK = { image: "digits", words: "sentiment", chars: "characters" }; // formats 1-6: input kind <- task
const NO_READOUT = { pool: false, ngram_buckets: 0, ngram_order: 3, ngram_pool: "mean", short_hidden: 0, short_words: 0 };

/**
 * A format 7 spec's plain data as formats 1-6 wrote it (Python's test `_older`): a task (which
 * fixed the input kind), labels and a readout instead of output and extras.
 * @param {any} raw @param {number} [version]
 */
function older(raw, version = 6) {
  const old = JSON.parse(JSON.stringify(raw));
  delete old.output;
  delete old.extras;
  return { ...old, task: KIND_TASK[raw.input.kind], labels: [...raw.output.names],
    readout: JSON.parse(JSON.stringify(raw.extras.readout ?? NO_READOUT)), format_version: version };
}

// (where, bad value): each replaces one field of the digits or sentiment spec (format 7) and must be refused
const BAD_FIELDS = [
  ["task", "digits"], ["labels", [..."0123456789"]], ["readout", {}], // formats 1-6 only
  ["cell", ["lstm"]], ["cell", "transformer"],
  ["layers", "1"], ["layers", 1.5], ["layers", true], ["layers", 0], ["layers", -3], ["layers", 1e9],
  ["hidden", null], ["hidden", 0], ["hidden", 1e12], ["input_size", 0], ["input_size", "28"],
  ["output", null], ["output", []], ["output", "classes"], ["output.kind", "probabilities"], ["output.kind", 3],
  ["output.per", "token"], ["output.per", null], ["output.names", []], ["output.names", "0123456789"],
  ["output.names", [0, 1]], ["output.names", Array(10).fill("a")], ["output.names", null], ["output.extra", 1],
  ["precision", "int4"], ["precision", 8], ["quantization", 1], ["opset", 0], ["opset", "17"],
  ["metrics", []], ["metrics", { test_accuracy: "high" }], ["metrics", { x: true }],
  ["provenance", "me"], ["extras", []], ["extras", "readout"], ["extras", { readout: 5 }],
  ["extras", { readout: { pool: "no" } }], ["extras", { readout: { ngram_buckets: 101 } }], // n-grams: words only
  ["extras", { readout: { short_hidden: 8, short_words: 4.5 } }], // a short-text branch: rnn or gru only
  ["extras", { readout: { bogus: 1 } }],
  ["state", {}], ["state", [1, 2]], ["state", []], ["io", []],
  ["input", []], ["input", { kind: "audio" }], ["input", { kind: null }],
  ["format_version", "3"], ["format_version", 0], ["format_version", null], ["format_version", 99],
  ["unknown_field", 1],
  ["input.rows", 0], ["input.rows", "28"], ["input.cols", 27], ["input.scale", 0], ["input.scale", -1.0],
  ["input.std", 0.0], ["input.std", 1e-50], ["input.mean", 1e39], ["input.mean", "0.1"], ["input.fit_px", 0], ["input.fit_px", 29], ["input.extra", 1],
  ["input.kind", "features"], // a features input has no rows, cols...
  ["state.0.name", ""], ["state.0.name", "c"], ["state.0.name", "x"], ["state.0.name", 7],
  ["state.0.layers", 0], ["state.0.hidden", 0], ["state.0.hidden", 1e6], ["state.0.dtype", "float64"],
  ["state.0.initial", 1e308],
  ["state.0.initial", "0"], ["state.0.output", ""], ["state.0.output", "y"], ["state.0.output", "\x1b[2J"],
  ["state.0.output", 7], ["state.1.output", "h_next"], ["state.0.bogus", 1],
  ["io.output", ""], ["io.output", "h"], ["io.seq_input", 3], ["io.step_probabilities", "y"],
  ["io.lengths", "x"], ["io.lengths", "lengths"], // a lengths input: token models only
  ["io.other", "z"], ["io.batch_steps_from", -1], ["io.batch_steps_from", 2 ** 21],
  ["io.batch_steps_from", "64"], ["io.batch_steps_from", 1.5],
];
const BAD_SENTIMENT_FIELDS = [
  ["input.vocab", "the movie"], ["input.vocab", ["the", "the"]], ["input.vocab", ["the", ""]],
  ["input.vocab", ["the", 3]], ["input.pad_id", -1], ["input.pad_id", 1], ["input.unk_id", 1e7],
  ["input.unk_id", "1"], ["input.lowercase", "yes"], ["input.kind", "chars"], // words are not characters
  ["extras.readout.ngram_buckets", -1], ["extras.readout.ngram_buckets", 1e12],
  ["extras.readout.ngram_order", 1], ["extras.readout.ngram_order", 99], ["extras.readout.ngram_pool", "median"],
  ["extras.readout.pool", "no"], ["extras.readout.short_hidden", -1], ["extras.readout.short_words", 0.0],
  ["extras.readout.other", 1], ["extras.readout", []],
];
// formats 1-6: the task fixes the input kind, the state follows from the cell and the readout
const BAD_OLDER_FIELDS = [
  ["task", null], ["task", 3], ["task", "poetry"], ["task", "sentiment"],
  ["labels", []], ["labels", "0123456789"], ["labels", [0, 1]], ["labels", Array(10).fill("a")], ["labels", null],
  ["readout", 5], ["readout.pool", "no"], ["readout.pool", true], // a pooled readout has more state
  ["readout.ngram_buckets", 101], // n-grams: words only
  ["state.0.name", "hidden"], ["state.0.layers", 2], ["state.0.hidden", 7], ["state.0.dtype", "float64"],
  ["state", [{ name: "h", output: "h_next", layers: 1, hidden: 128 }]], // an lstm has h and c
  ["output", { kind: "classes", per: "sequence", names: [..."0123456789"] }], ["extras", {}], // format 7's fields
];
const BAD_OLDER_SENTIMENT_FIELDS = [
  ["task", "characters"], ["task", "digits"], ["labels", ["negative", "negative"]],
  ["readout.ngram_buckets", -1], ["readout.ngram_pool", "median"], ["readout.pool", "no"],
  ["readout.short_hidden", 7], ["readout.short_hidden", 0], ["readout.ngram_order", 4], ["readout.bogus", 1],
  ["state.4.name", "h_b"], ["state.3.layers", 3],
];

/** @param {any} raw @param {string} where @param {unknown} value */
function set(raw, where, value) {
  const path = where.split(".");
  const last = /** @type {string} */ (path.pop());
  let node = raw;
  for (const key of path) node = node[key];
  node[last] = value;
}

test("every bad field is a one-line SpecError, in format 7 and in the older formats", () => {
  const cases = /** @type {const} */ ([["digits", BAD_FIELDS, false], ["sentiment", BAD_SENTIMENT_FIELDS, false],
    ["digits", BAD_OLDER_FIELDS, true], ["sentiment", BAD_OLDER_SENTIMENT_FIELDS, true]]);
  for (const [name, list, old] of cases) {
    const base = old ? older(seven(name)) : seven(name);
    parseSpec(JSON.stringify(base)); // the base itself loads
    for (const [where, value] of list) {
      const raw = JSON.parse(JSON.stringify(base));
      set(raw, /** @type {string} */ (where), value);
      assert.throws(() => parseSpec(JSON.stringify(raw)), (err) => err instanceof SpecError && !err.message.includes("\n"),
        `${name}${old ? " (format 6)" : ""} ${where} = ${JSON.stringify(value)}`);
    }
  }
});

test("messages name the field, as Python's do", () => {
  /** @param {any} base @param {string} where @param {unknown} value @param {RegExp} message */
  const refuse = (base, where, value, message) => {
    const raw = JSON.parse(JSON.stringify(base));
    set(raw, where, value);
    assert.throws(() => parseSpec(JSON.stringify(raw)), says(message), `${where} = ${JSON.stringify(value)}`);
  };
  const digits = seven("digits"), old = older(digits), oldSentiment = older(seven("sentiment"));
  refuse(digits, "layers", "1", /^spec field 'layers' must be a int, got str$/);
  refuse(digits, "hidden", 70000, /^spec field 'hidden' must be between 1 and 65,536, got 70000$/);
  refuse(digits, "input.scale", "x", /^spec field 'input\.scale' must be a number, got str$/);
  refuse(digits, "unknown_field", 1, /^spec field 'spec' has unknown field\(s\) 'unknown_field'$/);
  refuse(digits, "task", "digits", /^spec field 'spec' has unknown field\(s\) 'task'$/);
  refuse(digits, "input", { kind: "audio" }, /^unknown input kind 'audio'; expected one of image, words, chars, features$/);
  refuse(digits, "format_version", 99, /^spec format version 99 is newer than this edgeinfer supports \(8\); upgrade edgeinfer$/);
  refuse(digits, "io.step_probabilities", "y", /^graph input and output names in 'io' and 'state' must all be distinct$/);
  refuse(digits, "state.0.output", "\x1b[2J", /^spec field 'state\.h\.output' must be a printable name of 1 to 256 characters$/);
  refuse(digits, "state.0.name", "c", /^graph input and output names in 'io' and 'state' must all be distinct$/);
  refuse(digits, "state.0.dtype", "float64", /^state 'h' must be float32, not float64$/);
  refuse(digits, "io.lengths", "lengths", /^only token models have a lengths input \(feature rows are read whole\): io\.lengths must be empty$/);
  refuse(digits, "output.kind", "probabilities", /^unknown output kind 'probabilities'; expected one of classes, values$/);
  refuse(digits, "output.per", "token", /^unknown output\.per 'token'; expected one of sequence, step$/);
  refuse(digits, "output.names", ["a", "a"], /^spec field 'output\.names' must hold 1 to 4,194,304 distinct names$/);
  refuse(digits, "output.kind", "values", /^a model that gives values has no probabilities: io\.step_probabilities must be empty$/);
  refuse(digits, "extras", { readout: 5 }, /^spec field 'extras\.readout' must be an object$/);
  refuse(digits, "extras", { readout: { ngram_buckets: 101 } }, /^an n-gram readout needs word-token input$/);
  refuse(digits, "extras", [], /^spec field 'extras' must be an object$/);
  // formats 1-6
  refuse(old, "task", "poetry", /^unknown task 'poetry'; expected one of digits, sentiment, characters$/);
  refuse(old, "task", null, /^unknown task None; expected/);
  refuse(old, "task", "sentiment", /^a sentiment model must read words input, not image$/);
  refuse(old, "labels", [], /^spec field 'labels' must not be empty$/);
  refuse(old, "labels", "0123", /^spec field 'labels' must be a list of strings$/);
  refuse(old, "readout", 5, /^spec field 'readout' must be an object$/);
  refuse(old, "readout.pool", true, /^a lstm model's state must be named \('h', 'c', 'count', 'pool_sum', 'pool_max'\)$/);
  refuse(old, "state.0.name", "hidden", /^a lstm model's state must be named \('h', 'c'\)$/);
  refuse(old, "state.0.hidden", 7, /^state 'h' must be \(1, B, 128\) float32, not \(1, B, 7\) float32$/);
  refuse(old, "state.0.layers", 1.5, /^state 'h' must be \(1, B, 128\) float32, not \(1\.5, B, 128\) float32$/);
  refuse(old, "state.0.dtype", "float64", /^state 'h' must be \(1, B, 128\) float32, not \(1, B, 128\) float64$/);
  refuse(old, "cell", null, /^spec field 'cell' must be a str, got NoneType$/);
  refuse(old, "output", seven("digits").output, /^spec field\(s\) 'output' are format 7's; a format 6 spec has task, labels and readout instead$/);
  refuse({ ...old, extras: {} }, "output", {}, /^spec field\(s\) 'extras', 'output' are format 7's; a format 6 spec/);
  refuse(oldSentiment, "readout.short_hidden", 0, /^spec field 'readout\.short_words' is set without a short-text branch/);
  refuse(oldSentiment, "task", "characters", /^a characters model must read chars input, not words$/);
  const oneLayer = JSON.parse(JSON.stringify(old));
  oneLayer.state[0].layers = "@"; // 1.0: Python's 1.0 == 1, so the old state rule passes; the type check does not
  assert.throws(() => parseSpec(JSON.stringify(oneLayer).replace('"@"', "1.0")),
    says(/^spec field 'state\[0\]\.layers' must be a int, got float$/));
  const missing = JSON.parse(JSON.stringify(digits));
  delete missing.cell;
  delete missing.hidden;
  assert.throws(() => specFromDict(missing), says(/^spec field 'spec' is missing 'cell' and 'hidden'$/));
  for (const field of ["output", "state"]) {
    const raw = JSON.parse(JSON.stringify(digits));
    delete raw[field];
    assert.throws(() => specFromDict(raw), says(new RegExp(`'${field}' must be`)));
  }
});

test("integers are JSON integers: 1.0 is a float, as in Python", () => {
  const text = specText("digits");
  assert.throws(() => parseSpec(text.replace('"layers": 1', '"layers": 1.0')), /spec field 'layers' must be a int, got float/);
  assert.throws(() => parseSpec(text.replace('"layers": 1', '"layers": 1e0')), /must be a int, got float/);
  // and so in the readout extra, which the spec keeps as plain numbers: checked as parsed
  const sentiment = specText("sentiment");
  assert.ok(sentiment.includes('"ngram_buckets": 800011,'));
  assert.throws(() => parseSpec(sentiment.replace('"ngram_buckets": 800011,', '"ngram_buckets": 800011.0,')),
    says(/^spec field 'extras\.readout\.ngram_buckets' must be a int, got float$/));
  assert.equal(parseSpec(text.replace('"initial": 0.0', '"initial": 0')).state[0].initial, 0); // floats take ints
  assert.equal(parseSpec(text.replace('"fit_px": 20', '"fit_px": 20')).input.kind, "image");
});

test("NaN, Infinity, deep nesting, missing fields and non-specs", () => {
  const text = specText("digits");
  assert.throws(() => parseSpec(text.replace('"initial": 0.0', '"initial": NaN')), says(/^spec holds NaN; expected finite numbers only$/));
  assert.throws(() => parseSpec(text.replace('"mean": 0.1307', '"mean": -Infinity')), /Infinity/);
  assert.throws(() => parseSpec(text.replace('"mean": 0.1307', '"mean": 1e999')), says(/^spec holds inf; expected finite numbers only$/));
  const deep = (/** @type {number} */ n) => text.replace('"provenance": {', `"provenance": {"deep": ${"[".repeat(n)}${"]".repeat(n)}, `);
  assert.throws(() => parseSpec(deep(50_000)), /nested deeper/);
  assert.throws(() => parseSpec(deep(40)), /nested deeper than 32 levels/);
  assert.ok(parseSpec(deep(20)));
  for (const notASpec of ["[]", '"spec"', "3", "{", "", "{} x", '{"a": "\u0001"}']) {
    assert.throws(() => parseSpec(notASpec), SpecError, notASpec);
  }
  assert.throws(() => parseSpec(/** @type {any} */ (null)), SpecError);
});

test("older formats read with their defaults, into format 7's terms", () => {
  const sentiment = older(seven("sentiment"), 2);
  delete sentiment.readout.ngram_pool; // format 2: no ngram_pool, the mean pool
  const two = specFromDict(sentiment);
  assert.equal(readout(two).ngram_pool, "mean");
  assert.equal(two.extras.readout.ngram_pool, "mean");
  assert.deepEqual(readout(two), { ...readout(SPECS.sentiment), ngram_pool: "mean" });
  const digits = older(seven("digits"), 1);
  delete digits.readout; // format 1: no readout at all
  delete digits.io;
  const old = specFromDict(digits);
  assert.deepEqual(readout(old), NO_READOUT);
  assert.deepEqual(old.extras, {});
  assert.deepEqual(old.output, { kind: "classes", per: "sequence", names: [..."0123456789"] });
  assert.deepEqual(old.io, { seq_input: "x", step_input: "x", output: "y", lengths: "", step_probabilities: "", batch_steps_from: 0 });
  assert.equal(old.format_version, 1);
  assert.deepEqual(specToDict(old), { ...seven("digits"), io: old.io, format_version: 8 });
});

test("a format 6 spec is read into format 7 terms and written back in them", () => {
  const sevenS = seven("sentiment");
  const six = older(sevenS);
  assert.equal(six.readout.short_hidden, 256);
  const spec = specFromDict(six);
  assert.equal(spec.format_version, 6); // the file's own version, kept
  assert.deepEqual(labels(spec), ["negative", "positive"]);
  assert.equal(spec.input.kind, "words");
  const written = specToDict(spec);
  assert.deepEqual(written, { ...sevenS, format_version: 8 });
  assert.deepEqual(written.output, { kind: "classes", per: "sequence", names: six.labels });
  assert.deepEqual(written.extras, { readout: six.readout });
  assert.ok(!("task" in written) && !("labels" in written) && !("readout" in written));
  const again = parseSpec(JSON.stringify(written));
  assert.equal(again.format_version, 8);
  assert.deepEqual(specToDict(again), written);
  assert.deepEqual(readout(again), six.readout);
  // a readout that reads nothing besides the last hidden state is no extra
  const plain = older(seven("digits"));
  assert.deepEqual(plain.readout, NO_READOUT);
  assert.deepEqual(specFromDict(plain).extras, {});
  // the old rules hold for the old versions only: any state names from format 7 on
  const renamed = JSON.parse(JSON.stringify(sevenS));
  Object.assign(renamed.state[0], { name: "hidden", output: "hidden_next" });
  assert.equal(specFromDict(renamed).state[0].name, "hidden");
  assert.throws(() => specFromDict(older(renamed)), says(/state must be named/));
});

test("a parsed spec is complete, ordered like Python's to_dict, and frozen", () => {
  const d = SPECS.digits;
  assert.deepEqual(Object.keys(d), ["input", "output", "cell", "layers", "hidden", "input_size", "state", "io",
    "precision", "quantization", "opset", "metrics", "provenance", "extras", "format_version"]);
  assert.deepEqual(Object.keys(d.input), ["kind", "rows", "cols", "scale", "mean", "std", "fit_px"]);
  assert.deepEqual(Object.keys(d.output), ["kind", "per", "names"]);
  assert.deepEqual(Object.keys(SPECS.sentiment.input), ["kind", "vocab", "pad_id", "unk_id", "lowercase"]);
  assert.ok(Object.isFrozen(d) && Object.isFrozen(d.state[0]) && Object.isFrozen(SPECS.sentiment.input.vocab));
  assert.ok(Object.isFrozen(d.output.names) && Object.isFrozen(SPECS.sentiment.extras));
  assert.throws(() => { /** @type {any} */ (d).cell = "x"; }, TypeError);
  const r = readout(SPECS.sentiment);
  assert.ok(r.ngram_buckets > 0 && r.short_hidden > 0);
  assert.deepEqual(stateFor("gru", 1, 128, r).map((s) => s.name), ["h", "count", "ngram_sum", "prev", "h_short"]);
  assert.deepEqual(stateFor("rnn", 2, 8, { pool: true }).map((s) => [s.name, s.layers, s.hidden, s.initial]),
    [["h", 2, 8, 0], ["count", 1, 1, 0], ["pool_sum", 1, 8, 0], ["pool_max", 1, 8, -1]]);
  assert.deepEqual(stateFor("lstm", 1, 4).map((s) => s.name), ["h", "c"]);
  const state = initialState(SPECS.sentiment, 3);
  assert.deepEqual(Object.keys(state), ["h", "count", "ngram_sum", "prev", "h_short"]);
  assert.equal(state.h.length, 3 * 128);
  assert.equal(state.h_short.length, 3 * r.short_hidden);
  assert.equal(state.prev.length, 2 * 3);
  assert.equal(requireInput(SPECS.characters, "chars").kind, "chars");
  assert.equal(requireInput(SPECS.sentiment, "words"), SPECS.sentiment.input);
  assert.throws(() => requireInput(SPECS.digits, "words"), (err) => err instanceof WrongTaskError
    && err.message === "a model that reads image; expected a model that reads words");
  assert.throws(() => requireInput(SPECS.characters, "words"), says(/^a model that reads chars; expected a model that reads words$/));
  assert.throws(() => requireInput(SPECS.digits, "features"), says(/^a model that reads image; expected a model that reads features$/));
  assert.ok(!readsTokens(SPECS.digits) && readsTokens(SPECS.sentiment) && readsTokens(SPECS.characters));
  assert.ok(givesClasses(SPECS.digits) && !perStep(SPECS.digits));
  assert.deepEqual(parseInput({ kind: "chars", vocab: ["a", "b"] }), { kind: "chars", vocab: ["a", "b"], pad_id: 0, unk_id: 1 });
  assert.deepEqual(parseInput({ kind: "features", size: 2, mean: [1, new PyFloat(2.5)], std: [3, 4], names: ["a", "b"] }),
    { kind: "features", size: 2, mean: [1, 2.5], std: [3, 4], names: ["a", "b"] });
  assert.deepEqual(parseOutput({ names: ["a"] }), { kind: "classes", per: "sequence", names: ["a"] });
});

// format 7: a features model that gives values every step, with state tensors named as it likes
const FEATURES = {
  input: { kind: "features", size: 3, mean: [1.5, -2.0, 0.25], std: [2.0, 0.5, 4.0],
    names: ["temperature", "pressure", "humidity"] },
  output: { kind: "values", per: "step", names: ["forecast", "error"] },
  cell: "gru", layers: 2, hidden: 8, input_size: 3,
  state: [{ name: "h0", output: "h0_next", layers: 1, hidden: 8 },
    { name: "h1", output: "h1_next", layers: 1, hidden: 5, initial: 0.5 }],
  io: { seq_input: "x", step_input: "x", output: "y" },
  extras: { trained_on: "weather", window: [1, 2] },
  format_version: 7,
};

/** FEATURES with some fields replaced. @param {Record<string, unknown>} [changes] @returns {any} */
const features = (changes = {}) => JSON.parse(JSON.stringify({ ...FEATURES, ...changes }));

test("a features spec reads and writes back, for classes and values, per sequence and per step", () => {
  for (const kind of ["classes", "values"]) {
    for (const per of ["sequence", "step"]) {
      const names = ["forecast", "error"];
      const raw = features({ output: { kind, per, names }, io: kind === "classes" ? { step_probabilities: "p" } : {} });
      const spec = parseSpec(JSON.stringify(raw));
      assert.deepEqual(spec.input, { kind: "features", size: 3, mean: [1.5, -2, 0.25], std: [2, 0.5, 4],
        names: ["temperature", "pressure", "humidity"] });
      assert.deepEqual(spec.output, { kind, per, names });
      assert.deepEqual(labels(spec), names);
      assert.equal(givesClasses(spec), kind === "classes");
      assert.equal(perStep(spec), per === "step");
      assert.ok(!readsTokens(spec));
      assert.deepEqual(readout(spec), NO_READOUT);
      assert.deepEqual(spec.extras, { trained_on: "weather", window: [1, 2] });
      assert.equal(spec.format_version, 7);
      assert.equal(requireInput(spec, "features"), spec.input);
      assert.throws(() => requireInput(spec, "words"), says(/^a model that reads features; expected a model that reads words$/));
      const state = initialState(spec, 3);
      assert.deepEqual(Object.keys(state), ["h0", "h1"]);
      assert.deepEqual([state.h0.length, new Set(state.h0).size, state.h0[0]], [8 * 3, 1, 0]);
      assert.deepEqual([state.h1.length, new Set(state.h1).size, state.h1[0]], [5 * 3, 1, 0.5]);
      const written = specToDict(spec);
      assert.deepEqual(specToDict(parseSpec(JSON.stringify(written))), written);
      assert.equal(written.format_version, 8);
      assert.deepEqual([written.input, written.output, written.extras], [raw.input, raw.output, raw.extras]);
      assert.deepEqual(written.state.map((/** @type {any} */ s) => [s.name, s.output, s.layers, s.hidden, s.dtype, s.initial]),
        [["h0", "h0_next", 1, 8, "float32", 0], ["h1", "h1_next", 1, 5, "float32", 0.5]]);
      assert.ok(!("task" in written) && !("labels" in written) && !("readout" in written));
    }
  }
  const bare = parseSpec(JSON.stringify(features({ input: { kind: "features", size: 3 } })));
  assert.deepEqual(bare.input, { kind: "features", size: 3, mean: [], std: [], names: [] });
  const x = Float32Array.of(0, 1, 2, 3, 4, 5);
  assert.equal(normalizeFeatures(bare, x), x); // read as given
  assert.equal(normalizeFeatures(SPECS.digits, x), x); // an image model's rows are normalised by preprocessImage
});

// (where, bad value, what the message says): each replaces one field of FEATURES and must be refused
const BAD_FEATURES = [
  ["input.size", 4, "reads 4 values per step; input_size is 3"],
  ["input_size", 4, "reads 3 values per step; input_size is 4"],
  ["input.size", 0, "'input.size' must be between 1"],
  ["input.size", "3", "'input.size' must be a int"],
  ["input.mean", [0.0, 1.0], "'input.mean' and 'input.std' must hold 3 numbers each"],
  ["input.mean", [], "'input.mean' and 'input.std' must hold 3 numbers each"],
  ["input.std", [1.0, 1.0, 1.0, 1.0], "'input.mean' and 'input.std' must hold 3 numbers each"],
  ["input.std", [1.0, 0.0, 1.0], "'input.mean' and 'input.std' must hold float32 numbers, std positive"],
  ["input.std", [1.0, -2.0, 1.0], "'input.mean' and 'input.std' must hold float32 numbers, std positive"],
  ["input.std", [1.0, 1e-50, 1.0], "'input.mean' and 'input.std' must hold float32 numbers, std positive"],
  ["input.mean", [1.0, 1e39, 1.0], "'input.mean' and 'input.std' must hold float32 numbers"],
  ["input.mean", [0.0, "1", 0.0], "'input.mean' must be a list of finite numbers"],
  ["input.mean", [0.0, true, 0.0], "'input.mean' must be a list of finite numbers"],
  ["input.mean", 0.5, "'input.mean' must be a list of finite numbers"],
  ["input.std", null, "'input.std' must be a list of finite numbers"],
  ["input.names", ["a", "a", "b"], "'input.names' must hold 3 distinct names"],
  ["input.names", ["a", "b"], "'input.names' must hold 3 distinct names"],
  ["input.names", ["a", 2, "c"], "'input.names' must be a list of strings"],
  ["input.rows", 28, "'input' has unknown field(s) 'rows'"],
  ["input.vocab", ["a"], "'input' has unknown field(s) 'vocab'"],
  ["output", null, "'output' must be an object"],
  ["output", ["values"], "'output' must be an object"],
  ["output.kind", "probabilities", "unknown output kind 'probabilities'"],
  ["output.kind", 1, "'output.kind' must be a str"],
  ["output.per", "token", "unknown output.per 'token'"],
  ["output.per", true, "'output.per' must be a str"],
  ["output.names", [], "'output.names' must not be empty"],
  ["output.names", ["forecast", "forecast"], "'output.names' must hold 1 to"],
  ["output.names", ["forecast", 2], "'output.names' must be a list of strings"],
  ["output.unit", "mm", "'output' has unknown field(s) 'unit'"],
  ["io.step_probabilities", "p", "a model that gives values has no probabilities: io.step_probabilities"],
  ["io.lengths", "lengths", "io.lengths must be empty"],
  ["state", [], "'state' must list at least one state tensor"],
  ["state.1.dtype", "float16", "state 'h1' must be float32, not float16"],
  ["state.1.name", "h0", "names in 'io' and 'state' must all be distinct"],
  ["state.1.output", "h0_next", "names in 'io' and 'state' must all be distinct"],
  ["state.1.name", "x", "names in 'io' and 'state' must all be distinct"],
  ["state.1.name", "", "'state..name' must be a printable name"],
  ["state.1.layers", 0, "'state.h1.layers' must be between 1"],
  ["state.1.hidden", 1 << 17, "'state.h1.hidden' must be between 1"],
  ["state.1.other", 1, "'state[1]' has unknown field(s) 'other'"],
  ["state.0", { name: "h0", output: "h0_next", layers: 512, hidden: 1 << 15 }, // 2**24 + h1's 5
    "the state holds 16,777,221 values per stream; at most 16,777,216"],
  ["extras", [], "'extras' must be an object"],
  ["extras", "readout", "'extras' must be an object"],
  ["extras", { readout: 5 }, "'extras.readout' must be an object"],
  ["extras", { readout: { ngram_buckets: 101 } }, "an n-gram readout needs word-token input"],
  ["task", "digits", "unknown field(s) 'task'"],
  ["labels", ["forecast", "error"], "unknown field(s) 'labels'"],
  ["readout", {}, "unknown field(s) 'readout'"],
];

test("every bad field of a features spec is a SpecError that names it, as Python's", () => {
  parseSpec(JSON.stringify(features())); // the base itself loads
  for (const [where, value, message] of BAD_FEATURES) {
    const raw = features();
    set(raw, /** @type {string} */ (where), value);
    assert.throws(() => parseSpec(JSON.stringify(raw)), (/** @type {any} */ err) => {
      assert.ok(err instanceof SpecError, `${where}: ${err}`);
      assert.ok(err.message.includes(/** @type {string} */ (message)), `${where} = ${JSON.stringify(value)}: ${err.message}`);
      assert.ok(!err.message.includes("\n"));
      return true;
    });
  }
});

test("feature statistics must be finite; the state is bounded", () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    for (const name of ["mean", "std"]) {
      const raw = features();
      raw.input[name][1] = bad;
      assert.throws(() => specFromDict(raw), says(/finite numbers only/));
      assert.throws(() => parseInput(raw.input), says(new RegExp(`^spec field 'input\\.${name}' must be a list of finite numbers$`)));
    }
  }
  const text = JSON.stringify(FEATURES);
  for (const literal of ["NaN", "Infinity", "-Infinity", "1e999"]) {
    assert.throws(() => parseSpec(text.replace("1.5", literal)), says(/finite numbers only/), literal);
  }
  const raw = features(); // exactly MAX_STATE_ELEMENTS values per stream are allowed
  Object.assign(raw.state[0], { layers: 256, hidden: 1 << 15 });
  Object.assign(raw.state[1], { layers: 256, hidden: 1 << 15 });
  assert.equal(specFromDict(raw).state.reduce((n, s) => n + s.layers * s.hidden, 0), MAX_STATE_ELEMENTS);
  raw.state[1].hidden += 1;
  assert.throws(() => specFromDict(raw), says(/^the state holds 16,777,472 values per stream; at most 16,777,216$/));
});

test("features are normalised per feature in float32, as numpy does; answers are probabilities or values", () => {
  const spec = parseSpec(JSON.stringify(features({ input: { kind: "features", size: 3, mean: [0.1, -2.0, 1e3], std: [0.3, 0.5, 7.0] } })));
  assert.deepEqual(normalizeFeatures(spec, Float32Array.of(0.1, 0, 1007)), Float32Array.of(0, 4, 1));
  // random rows: every value (x - mean) / std with each operation rounded to float32
  let seed = 7;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 200;
  const x = Float32Array.from({ length: 4 * 5 * 3 }, random);
  const before = x.slice();
  const got = normalizeFeatures(spec, x);
  assert.notEqual(got, x);
  assert.deepEqual(x, before); // the caller's rows are never normalised in place
  const one = new Float32Array(1), mean = Float32Array.of(0.1, -2, 1e3), std = Float32Array.of(0.3, 0.5, 7);
  const want = x.map((v, i) => {
    one[0] = v - mean[i % 3];
    one[0] /= std[i % 3];
    return one[0];
  });
  assert.deepEqual(got, want);
  const wide = x.map((v, i) => (v - [0.1, -2, 1e3][i % 3]) / [0.3, 0.5, 7][i % 3]); // float64 statistics: other bits
  assert.notDeepEqual(got, wide);
  const logits = Float32Array.of(1, 2, -3, 0.5);
  const classes = parseSpec(JSON.stringify(features({ output: { kind: "classes", per: "sequence", names: ["a", "b"] } })));
  assert.deepEqual(answers(classes, logits), softmax(logits, 2));
  const values = answers(spec, logits);
  assert.deepEqual(values, logits);
  assert.notEqual(values, logits); // a copy: the caller's array stays its own
});

test("the JSON reader: Python's json.loads, floats marked", () => {
  assert.deepEqual(parseJson('{"a": [1, 2.5, -0, 1e2, "x\\u00e9\\n", true, null]}'),
    { a: [1, new PyFloat(2.5), 0, new PyFloat(100), "x\u00e9\n", true, null] });
  const proto = /** @type {any} */ (parseJson('{"__proto__": {"polluted": 1}}'));
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.deepEqual(Object.keys(proto), ["__proto__"]);
  assert.equal(/** @type {any} */ ({}).polluted, undefined);
  assert.equal(/** @type {any} */ (parseJson('{"a": 1, "a": 2}')).a, 2); // the last wins, as in Python
  assert.deepEqual(parseJson('"\\ud83d\\ude00"'), "\u{1f600}");
  for (const bad of ["", "01", "[1,]", "{'a': 1}", '"\t"', "[1] [2]", "nul", '"\\x"', "1.", ".5", "+1"]) {
    assert.throws(() => parseJson(bad), JsonSyntaxError, bad);
  }
});

test("floats are written as Python writes them: repr, and format's 'g'", () => {
  // what Python 3.11 prints for each (measured 40,000 random doubles and floats alike)
  const values = [-0, 0, 1e16, 9999999999999998, 1.2345678901234568e20, 1e-5, 1e-4, 123456, 5e-324,
    1.7976931348623157e308, 0.1, 1 / 3, -2.5e-7, 3e38];
  assert.deepEqual(values.map(pyFloat), ["-0.0", "0.0", "1e+16", "9999999999999998.0", "1.2345678901234568e+20", "1e-05",
    "0.0001", "123456.0", "5e-324", "1.7976931348623157e+308", "0.1", "0.3333333333333333", "-2.5e-07", "3e+38"]);
  assert.deepEqual([...values, 1.125, 2.375, 999.5, 0.00099995].map((v) => pyFormatG(v, 3)), ["-0", "0", "1e+16", "1e+16",
    "1.23e+20", "1e-05", "0.0001", "1.23e+05", "4.94e-324", "1.8e+308", "0.1", "0.333", "-2.5e-07", "3e+38", "1.12", "2.38",
    "1e+03", "0.001"]); // ties to even, as Python rounds
  assert.deepEqual([1, 4, 51, 1e6, 1234567, 0.5].map((v) => pyFormatG(v)), ["1", "4", "51", "1e+06", "1.23457e+06", "0.5"]);
});

test("400 edited specs of the built-ins: refused in Python's words where Python refuses them, read as Python reads them elsewhere", NEED_REFS, () => {
  let read = 0;
  for (const c of refs().spec_edits) {
    let spec;
    try {
      spec = parseSpec(c.text);
    } catch (err) {
      assert.ok(err instanceof SpecError, `${c.model}: ${err}`);
      assert.equal(err.message, c.error, `${c.model}: ${c.text.slice(0, 300)}`);
      continue;
    }
    assert.equal(c.error, null, `${c.model}: Python refused it (${c.error}): ${c.text.slice(0, 300)}`);
    assert.deepEqual(JSON.parse(JSON.stringify(specToDict(spec))), c.spec, c.model);
    read += 1;
  }
  assert.ok(read > 0 && read < refs().spec_edits.length, `${read} read`);
});
