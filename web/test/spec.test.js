// The spec (src/spec.js): every field validated as Python validates it (tests/edgeinfer/test_spec.py's
// cases), int and float told apart as Python's json does, older formats read with their defaults.

import assert from "node:assert/strict";
import { test } from "node:test";

import { SpecError, WrongTaskError, initialState, parseSpec, requireInput, specFromDict, stateFor } from "../src/index.js";
import { JsonSyntaxError, PyFloat, parseJson } from "../src/json.js";
import { readMetadata } from "../src/fileformat.js";
import { modelBytes } from "./helpers.js";

/** An assert.throws check of the error's message (not its "Name: message" string). @param {RegExp} re */
const says = (re) => (/** @type {any} */ err) => {
  assert.match(err.message, re);
  return true;
};

/** @param {string} name */
const specText = (name) => /** @type {string} */ (readMetadata(modelBytes(name), name).get("edgeinfer.spec"));
const SPECS = { digits: parseSpec(specText("digits")), sentiment: parseSpec(specText("sentiment")),
  characters: parseSpec(specText("characters")) };

// (where, bad value): each replaces one field of the digits or sentiment spec and must be refused
const BAD_FIELDS = [
  ["task", null], ["task", 3], ["task", "poetry"], ["cell", ["lstm"]], ["cell", "transformer"],
  ["layers", "1"], ["layers", 1.5], ["layers", true], ["layers", 0], ["layers", -3], ["layers", 1e9],
  ["hidden", null], ["hidden", 0], ["hidden", 1e12], ["input_size", 0], ["input_size", "28"],
  ["labels", []], ["labels", "0123456789"], ["labels", [0, 1]], ["labels", Array(10).fill("a")], ["labels", null],
  ["precision", "int4"], ["precision", 8], ["quantization", 1], ["opset", 0], ["opset", "17"],
  ["metrics", []], ["metrics", { test_accuracy: "high" }], ["metrics", { x: true }],
  ["provenance", "me"], ["state", {}], ["state", [1, 2]], ["state", []], ["io", []], ["readout", 5],
  ["input", []], ["input", { kind: "audio" }], ["input", { kind: null }],
  ["format_version", "3"], ["format_version", 0], ["format_version", null], ["format_version", 99],
  ["unknown_field", 1],
  ["input.rows", 0], ["input.rows", "28"], ["input.cols", 27], ["input.scale", 0], ["input.scale", -1.0],
  ["input.std", 0.0], ["input.mean", "0.1"], ["input.fit_px", 0], ["input.fit_px", 29], ["input.extra", 1],
  ["state.0.name", "hidden"], ["state.0.layers", 2], ["state.0.hidden", 7], ["state.0.dtype", "float64"],
  ["state.0.initial", "0"], ["state.0.output", ""], ["state.0.output", "y"], ["state.0.output", "\x1b[2J"],
  ["state.0.output", 7], ["state.1.output", "h_next"], ["state.0.bogus", 1],
  ["io.output", ""], ["io.output", "h"], ["io.seq_input", 3], ["io.step_probabilities", "y"],
  ["io.lengths", "x"], ["io.other", "z"], ["io.batch_steps_from", -1], ["io.batch_steps_from", 2 ** 21],
  ["io.batch_steps_from", "64"], ["io.batch_steps_from", 1.5],
];
const BAD_SENTIMENT_FIELDS = [
  ["input.vocab", "the movie"], ["input.vocab", ["the", "the"]], ["input.vocab", ["the", ""]],
  ["input.vocab", ["the", 3]], ["input.pad_id", -1], ["input.pad_id", 1], ["input.unk_id", 1e7],
  ["input.unk_id", "1"], ["input.lowercase", "yes"], ["readout.ngram_buckets", -1],
  ["readout.ngram_buckets", 1e12], ["readout.ngram_order", 1], ["readout.ngram_order", 99],
  ["readout.ngram_pool", "median"], ["readout.pool", "no"], ["task", "characters"],
];

/** @param {any} raw @param {string} where @param {unknown} value */
function set(raw, where, value) {
  const path = where.split(".");
  const last = /** @type {string} */ (path.pop());
  let node = raw;
  for (const key of path) node = node[key];
  node[last] = value;
}

test("every bad field is a one-line SpecError", () => {
  for (const [task, cases] of /** @type {const} */ ([["digits", BAD_FIELDS], ["sentiment", BAD_SENTIMENT_FIELDS]])) {
    for (const [where, value] of cases) {
      const raw = JSON.parse(JSON.stringify(SPECS[task]));
      set(raw, /** @type {string} */ (where), value);
      assert.throws(() => parseSpec(JSON.stringify(raw)), (err) => err instanceof SpecError && !err.message.includes("\n"),
        `${task} ${where} = ${JSON.stringify(value)}`);
    }
  }
});

test("messages name the field, as Python's do", () => {
  const digits = JSON.parse(JSON.stringify(SPECS.digits));
  /** @param {string} where @param {unknown} value @param {RegExp} message */
  const refuse = (where, value, message) => {
    const raw = JSON.parse(JSON.stringify(digits));
    set(raw, where, value);
    assert.throws(() => parseSpec(JSON.stringify(raw)), says(message));
  };
  refuse("layers", "1", /^spec field 'layers' must be a int, got str$/);
  refuse("hidden", 70000, /^spec field 'hidden' must be between 1 and 65,536, got 70000$/);
  refuse("input.scale", "x", /^spec field 'input\.scale' must be a number, got str$/);
  refuse("state.0.name", "hidden", /^a lstm model's state must be named \('h', 'c'\)$/);
  refuse("state.0.hidden", 7, /^state 'h' must be \(1, B, 128\) float32, not \(1, B, 7\) float32$/);
  refuse("unknown_field", 1, /^spec field 'spec' has unknown field\(s\) 'unknown_field'$/);
  refuse("input", { kind: "audio" }, /^unknown input kind 'audio'; expected one of image, words, chars$/);
  refuse("format_version", 99, /^spec format version 99 is newer than this edgeinfer supports \(6\); upgrade edgeinfer$/);
  refuse("io.step_probabilities", "y", /^graph input and output names in 'io' and 'state' must all be distinct$/);
  refuse("state.0.output", "\x1b[2J", /^spec field 'state\.h\.output' must be a printable name of 1 to 256 characters$/);
  const missing = JSON.parse(JSON.stringify(digits));
  delete missing.cell;
  delete missing.hidden;
  assert.throws(() => specFromDict(missing), says(/^spec field 'spec' is missing 'cell' and 'hidden'$/));
});

test("integers are JSON integers: 1.0 is a float, as in Python", () => {
  const text = specText("digits");
  assert.throws(() => parseSpec(text.replace('"layers": 1', '"layers": 1.0')), /spec field 'layers' must be a int, got float/);
  assert.throws(() => parseSpec(text.replace('"layers": 1', '"layers": 1e0')), /must be a int, got float/);
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

test("older formats read with their defaults", () => {
  const sentiment = JSON.parse(JSON.stringify(SPECS.sentiment));
  sentiment.format_version = 2;
  delete sentiment.readout.ngram_pool; // format 2: no ngram_pool, the mean pool
  assert.equal(specFromDict(sentiment).readout.ngram_pool, "mean");
  const digits = JSON.parse(JSON.stringify(SPECS.digits));
  digits.format_version = 1;
  delete digits.readout;
  delete digits.io;
  const old = specFromDict(digits);
  assert.deepEqual(old.readout, { pool: false, ngram_buckets: 0, ngram_order: 3, ngram_pool: "mean", short_hidden: 0,
    short_words: 0 });
  assert.deepEqual(old.io, { seq_input: "x", step_input: "x", output: "y", lengths: "", step_probabilities: "", batch_steps_from: 0 });
  assert.equal(old.format_version, 1);
});

test("a parsed spec is complete, ordered like Python's to_dict, and frozen", () => {
  const d = SPECS.digits;
  assert.deepEqual(Object.keys(d), ["task", "labels", "input", "cell", "layers", "hidden", "input_size", "state", "io",
    "readout", "precision", "quantization", "opset", "metrics", "provenance", "format_version"]);
  assert.deepEqual(Object.keys(d.input), ["kind", "rows", "cols", "scale", "mean", "std", "fit_px"]);
  assert.deepEqual(Object.keys(SPECS.sentiment.input), ["kind", "vocab", "pad_id", "unk_id", "lowercase"]);
  assert.ok(Object.isFrozen(d) && Object.isFrozen(d.state[0]) && Object.isFrozen(SPECS.sentiment.input.vocab));
  assert.throws(() => { /** @type {any} */ (d).task = "x"; }, TypeError);
  assert.deepEqual(stateFor("gru", 1, 128, SPECS.sentiment.readout).map((s) => s.name),
    ["h", "count", "ngram_sum", "prev", "h_short"]);
  assert.deepEqual(stateFor("rnn", 2, 8, { pool: true, ngram_buckets: 0, ngram_order: 3, ngram_pool: "mean" })
    .map((s) => [s.name, s.layers, s.hidden, s.initial]),
  [["h", 2, 8, 0], ["count", 1, 1, 0], ["pool_sum", 1, 8, 0], ["pool_max", 1, 8, -1]]);
  const state = initialState(SPECS.sentiment, 3);
  assert.deepEqual(Object.keys(state), ["h", "count", "ngram_sum", "prev", "h_short"]);
  assert.equal(state.h.length, 3 * 128);
  assert.equal(state.h_short.length, 3 * SPECS.sentiment.readout.short_hidden);
  assert.equal(state.prev.length, 2 * 3);
  assert.equal(requireInput(SPECS.characters, "chars").kind, "chars");
  assert.throws(() => requireInput(SPECS.digits, "words"), (err) => err instanceof WrongTaskError
    && err.message === "a digits model reads image; expected a model that reads words");
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
