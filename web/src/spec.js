// The model spec: the JSON description of a model stored in the file's metadata (docs/format.md
// section 2), parsed and validated exactly as the Python runtime does (edgeinfer/spec.py), with
// the same messages. A parsed spec is a frozen plain object with every field present, in the
// order of Python's `ModelSpec.to_dict()`; `specToDict` gives what that writes (format 7 terms,
// `format_version` 8: format 8 is format 7 with checksums that cover the spec), while `spec.format_version` keeps the file's own version, as in Python.
//
// Format 7 describes what a model is: its input kind (image, words, chars, or features: raw
// values the runtime normalises per feature), its output (`classes`: answers are the softmax of
// the graphs' output; `values`: answers are the output as it is; one answer per sequence or per
// step), its named state tensors and free-form `extras`. Specs of formats 1-6 (a `task`,
// `labels` and `readout`) are read into the same terms, as Python's `_from_task_spec` does.

import { softmax } from "./arrays.js";
import { InputError, SpecError, WrongTaskError } from "./errors.js";
import { JsonDepthError, JsonSyntaxError, PyFloat, parseJson, plain } from "./json.js";

// 2 added `readout`, 3 its `ngram_pool`, 4 the portable layout, 5 io.batch_steps_from, 6
// readout.short_hidden and short_words; 7 describes what a model is instead of which task it serves
export const FORMAT_VERSION = 8;
export const GENERIC_FORMAT = 7; // from this version on: `output`, `extras`, any named state; no task/labels/readout
const MAX_BATCH_STEPS_FROM = 1 << 20;
export const SPEC_CHECKSUM_FORMAT = 8; // from this version on the checksums cover the spec's JSON too
export const SELF_RANGES_FORMAT = 4; // from this version on the step graph's shared weights are ranges of the file
export const SPEC_KEY = "edgeinfer.spec";
export const STEP_GRAPH_KEY = "edgeinfer.step_graph";
export const CHECKSUMS_KEY = "edgeinfer.checksums";
export const SELF_LOCATION = "edgeinfer-self";
export const RELAYOUT_COMMAND = "python -m edgeinfer_export.relayout OLD.onnx NEW.onnx"; // rewrites a file in the current format
export const CELLS = ["rnn", "lstm", "gru"];
export const TASKS = ["digits", "sentiment", "characters"]; // formats 1-6 only: the task, which fixed the input kind
export const OUTPUT_KINDS = ["classes", "values"]; // class probabilities (softmax of the logits) or plain values
export const OUTPUT_PER = ["sequence", "step"]; // one answer per sequence (after its last step) or one per step
export const PRECISIONS = ["fp32", "int8"];
export const NGRAM_POOLS = ["mean", "sum"];
export const SHORT_CELLS = ["rnn", "gru"]; // the cells a short-text branch is made for
export const MAX_SHORT_WORDS = 1 << 20;
/** @type {Record<string, string>} formats 1-6: task -> input kind */
export const TASK_INPUT = { digits: "image", sentiment: "words", characters: "chars" };

// bounds that keep a hostile file from asking for absurd work or memory
export const MAX_JSON_DEPTH = 32;
export const MAX_LAYERS = 64;
export const MAX_WIDTH = 1 << 16;
export const MAX_VOCAB = 1 << 22;
export const MAX_NGRAM_BUCKETS = 1 << 26;
export const MAX_NGRAM_ORDER = 8;
export const MAX_NAME = 256;
export const MAX_STATE_ELEMENTS = 1 << 24; // state values per stream, all tensors together
const MAX_SPEC_CHARS = 64 << 20;

/**
 * @typedef {{kind: "image", rows: number, cols: number, scale: number, mean: number, std: number, fit_px: number}} ImageInput
 * @typedef {{kind: "words", vocab: string[], pad_id: number, unk_id: number, lowercase: boolean}} TextInput
 * @typedef {{kind: "chars", vocab: string[], pad_id: number, unk_id: number}} CharInput
 * @typedef {{kind: "features", size: number, mean: number[], std: number[], names: string[]}} FeatureInput
 * @typedef {{kind: string, per: string, names: string[]}} OutputSpec
 * @typedef {{name: string, output: string, layers: number, hidden: number, dtype: string, initial: number}} StateTensor
 * @typedef {{seq_input: string, step_input: string, output: string, lengths: string, step_probabilities: string, batch_steps_from: number}} GraphIO
 * @typedef {{pool: boolean, ngram_buckets: number, ngram_order: number, ngram_pool: string, short_hidden: number,
 *   short_words: number}} Readout
 * @typedef {ImageInput | TextInput | CharInput | FeatureInput} InputSpec
 * @typedef {{input: InputSpec, output: OutputSpec, cell: string, layers: number, hidden: number,
 *   input_size: number, state: StateTensor[], io: GraphIO, precision: string, quantization: string, opset: number,
 *   metrics: Record<string, number>, provenance: Record<string, any>, extras: Record<string, any>,
 *   format_version: number}} ModelSpec
 */

// Each dataclass of spec.py as [field, type, default]; no default means required. Types: str,
// int, bool, float (an int or a float), and "other" (checked by the code that reads the field).
/** @typedef {[string, string, unknown?]} Field */
/** @type {Field[]} */
const IMAGE = [["kind", "str", "image"], ["rows", "int", 28], ["cols", "int", 28], ["scale", "float", 1 / 255],
  ["mean", "float", 0.1307], ["std", "float", 0.3081], ["fit_px", "int", 20]];
/** @type {Field[]} */
const CHARS = [["kind", "str", "chars"], ["vocab", "other", []], ["pad_id", "int", 0], ["unk_id", "int", 1]];
/** @type {Field[]} */
const WORDS = [["kind", "str", "words"], ["vocab", "other", []], ["pad_id", "int", 0], ["unk_id", "int", 1],
  ["lowercase", "bool", true]];
/** @type {Field[]} */
const FEATURES = [["kind", "str", "features"], ["size", "int", 1], ["mean", "other", []], ["std", "other", []],
  ["names", "other", []]];
/** @type {Record<string, Field[]>} */
const INPUT_KINDS = { image: IMAGE, words: WORDS, chars: CHARS, features: FEATURES };
/** @type {Field[]} */
const OUTPUT = [["kind", "str", "classes"], ["per", "str", "sequence"], ["names", "other"]];
/** @type {Field[]} */
const STATE = [["name", "str"], ["output", "str"], ["layers", "int"], ["hidden", "int"], ["dtype", "str", "float32"],
  ["initial", "float", 0]];
/** @type {Field[]} */
const IO = [["seq_input", "str", "x"], ["step_input", "str", "x"], ["output", "str", "y"], ["lengths", "str", ""],
  ["step_probabilities", "str", ""], ["batch_steps_from", "int", 0]];
/** @type {Field[]} */
const READOUT = [["pool", "bool", false], ["ngram_buckets", "int", 0], ["ngram_order", "int", 3],
  ["ngram_pool", "str", "mean"], ["short_hidden", "int", 0], ["short_words", "float", 0]];
/** @type {Field[]} */
const SPEC = [["input", "other"], ["output", "other"], ["cell", "str"], ["layers", "int"], ["hidden", "int"],
  ["input_size", "int"], ["state", "other"], ["io", "other", null], ["precision", "str", "fp32"],
  ["quantization", "str", "none"], ["opset", "int", 17], ["metrics", "metrics", {}], ["provenance", "other", {}],
  ["extras", "other", {}], ["format_version", "int", FORMAT_VERSION]];

// --- Python-style descriptions, for messages that match the Python runtime's ------------------

/** The Python type name of a parsed JSON value. @param {unknown} v */
export function pyType(v) {
  if (v === null || v === undefined) return "NoneType";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "string") return "str";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float";
  if (v instanceof PyFloat) return "float";
  if (Array.isArray(v)) return "list";
  return "dict";
}

/** Python's repr of a float: the shortest digits that read back as x, in exponent notation below 1e-4 and from 1e16 up. @param {number} x */
export function pyFloat(x) {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mantissa, e] = Math.abs(x).toExponential().split("e"); // the shortest round-trip digits, as Python's
  const sign = x < 0 ? "-" : "", digits = mantissa.replace(".", ""), exp = Number(e);
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  return `${sign}${digits.slice(0, exp + 1).padEnd(exp + 1, "0")}.${digits.slice(exp + 1) || "0"}`;
}

/**
 * Python's `format(x, ".{precision}g")`: `precision` significant digits, rounded half to even,
 * trailing zeros dropped; exponent notation below 1e-4 and from 10 ** precision up.
 * @param {number} x @param {number} [precision]
 */
export function pyFormatG(x, precision = 6) {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  if (x === 0) return `${sign}0`;
  // the exact decimal digits well past the rounding point (a double's expansion rarely needs more)
  const [mantissa, e] = Math.abs(x).toExponential(Math.min(100, precision + 40)).split("e");
  const digits = mantissa.replace(".", "");
  let exp = Number(e);
  let head = digits.slice(0, precision);
  const rest = digits.slice(precision);
  const up = rest[0] > "5" || (rest[0] === "5" && (/[1-9]/.test(rest.slice(1)) || Number(head.at(-1)) % 2 === 1));
  if (up) {
    const bumped = String(BigInt(head) + 1n);
    if (bumped.length > precision) exp += 1;
    head = bumped.slice(0, precision);
  }
  const trim = (/** @type {string} */ t) => (t.includes(".") ? t.replace(/\.?0+$/, "") : t);
  if (exp < -4 || exp >= precision) {
    const m = trim(head.length > 1 ? `${head[0]}.${head.slice(1)}` : head);
    return `${sign}${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  const whole = exp >= 0 ? head.slice(0, exp + 1).padEnd(exp + 1, "0") : "0";
  const fraction = exp >= 0 ? head.slice(exp + 1) : "0".repeat(-exp - 1) + head;
  return sign + trim(fraction ? `${whole}.${fraction}` : whole);
}

/** Python's repr of a parsed JSON value (short). @param {unknown} v @returns {string} */
export function pyRepr(v) {
  if (v === null || v === undefined) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return String(v);
  if (v instanceof PyFloat) return pyFloat(v.value);
  if (typeof v === "string") {
    const quote = v.includes("'") && !v.includes('"') ? '"' : "'";
    const body = v.replace(/\\/g, "\\\\").replace(new RegExp(quote, "g"), `\\${quote}`)
      .replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
    return `${quote}${body}${quote}`;
  }
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  return `{${Object.entries(/** @type {object} */ (v)).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(", ")}}`;
}

/** Python's str() of a parsed JSON value: strings as they are, anything else as its repr. @param {unknown} v */
export function pyStr(v) {
  return typeof v === "string" ? v : pyRepr(v);
}

/** A whole number with thousands separators, like Python's `{:,}`. @param {number} n */
export function commas(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Length in code points (Python's len of a str). @param {string} s */
export function codePoints(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) i++;
    }
    n++;
  }
  return n;
}

// Python's str.isprintable(): no character of the categories Cc, Cf, Cs, Co, Cn, Zl, Zp, Zs, except the space
const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

/** @param {string} s */
function isPrintable(s) {
  return !NOT_PRINTABLE.test(s.replace(/ /g, ""));
}

// --- parsing ------------------------------------------------------------------------------------

/** @param {unknown} v @returns {v is Record<string, unknown>} */
function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof PyFloat);
}

/**
 * Parse and validate spec JSON text (Python's `ModelSpec.from_json`).
 * @param {string} text
 * @returns {ModelSpec}
 */
export function parseSpec(text) {
  if (typeof text !== "string") throw new SpecError(`spec is not text, got ${pyType(text)}`);
  if (text.length > MAX_SPEC_CHARS) throw new SpecError("spec is larger than 64 MB");
  let raw;
  try {
    raw = parseJson(text, {
      constant: (name) => {
        throw new SpecError(`spec holds ${name}; expected finite numbers only`);
      },
    });
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw new SpecError(`spec is not valid JSON (${err.message.replace(/: char \d+$/, "")})`);
    if (err instanceof JsonDepthError) throw new SpecError(`spec JSON is nested deeper than ${MAX_JSON_DEPTH} levels`);
    throw err;
  }
  return specFromDict(raw);
}

/**
 * Build and validate a spec from parsed JSON (plain data, or parseJson's output where float
 * literals are PyFloat; plain numbers then count as integers when they are whole): what
 * `specToDict` gives, or a spec of formats 1-6 (Python's `ModelSpec.from_dict`).
 * @param {unknown} raw
 * @returns {ModelSpec}
 */
export function specFromDict(raw) {
  if (!isObject(raw)) throw new SpecError("spec is not a JSON object");
  checkDepth(raw, "spec");
  const version = raw.format_version;
  if (!isInt(version) || /** @type {number} */ (version) < 1) throw new SpecError("spec has no integer format_version");
  if (/** @type {number} */ (version) > FORMAT_VERSION) {
    throw new SpecError(`spec format version ${version} is newer than this edgeinfer supports (${FORMAT_VERSION}); `
      + "upgrade edgeinfer");
  }
  /** @type {Record<string, unknown>} */
  let data = { ...raw };
  if (/** @type {number} */ (version) < GENERIC_FORMAT) data = fromTaskSpec(data);
  data.input = parseInput(data.input);
  data.output = parseOutput(data.output);
  const states = data.state;
  if (!Array.isArray(states)) throw new SpecError("spec field 'state' must be a list");
  data.state = states.map((s, i) => build(STATE, s, `state[${i}]`));
  data.io = build(IO, "io" in data ? data.io : {}, "io");
  for (const name of ["metrics", "provenance", "extras"]) {
    if (name in data && !isObject(data[name])) throw new SpecError(`spec field '${name}' must be an object`);
  }
  // the readout's fields are checked as parsed (1.0 is a float there, as in Python), not as the
  // plain numbers `extras` keeps
  const extras = data.extras;
  const rawReadout = isObject(extras) && "readout" in extras ? /** @type {any} */ (extras).readout : undefined;
  const spec = /** @type {ModelSpec} */ (build(SPEC, data, "spec"));
  checkSpec(spec, rawReadout);
  return deepFreeze(spec);
}

/**
 * A format 1-6 spec in format 7's terms (Python's `_from_task_spec`): its task's input kind
 * checked, its labels the output's class names, its readout an extra (the state it implies
 * checked here).
 * @param {Record<string, unknown>} raw
 * @returns {Record<string, unknown>}
 */
function fromTaskSpec(raw) {
  const data = { ...raw };
  const newer = ["extras", "output"].filter((k) => k in data);
  if (newer.length) {
    throw new SpecError(`spec field(s) ${newer.map(pyRepr).join(", ")} are format 7's; a format `
      + `${pyStr(data.format_version)} spec has task, labels and readout instead`);
  }
  const task = data.task, labels = data.labels;
  delete data.task;
  delete data.labels;
  if (typeof task !== "string" || !TASKS.includes(task)) {
    throw new SpecError(`unknown task ${pyRepr(task)}; expected one of ${TASKS.join(", ")}`);
  }
  const inp = data.input;
  if (isObject(inp) && inp.kind !== TASK_INPUT[task]) {
    throw new SpecError(`a ${task} model must read ${TASK_INPUT[task]} input, not ${pyStr(inp.kind)}`);
  }
  const r = /** @type {Readout} */ (build(READOUT, "readout" in data ? data.readout : {}, "readout"));
  delete data.readout;
  data.output = { kind: "classes", per: "sequence", names: strList(labels, "labels", false) };
  data.extras = readoutActive(r) ? { readout: r } : {};
  for (const [name, kind] of [["cell", "str"], ["layers", "int"], ["hidden", "int"]]) checkType(kind, data[name], name);
  const cell = /** @type {string} */ (data.cell);
  if (!CELLS.includes(cell)) throw new SpecError(`unknown cell ${pyRepr(cell)}; expected one of ${CELLS.join(", ")}`);
  checkReadout(r, cell, isObject(inp) ? pyStr(inp.kind) : "");
  const states = data.state;
  if (Array.isArray(states) && states.every(isObject)) {
    checkTaskState(states, cell, /** @type {number} */ (data.layers), /** @type {number} */ (data.hidden), r);
  }
  return data;
}

/**
 * The typed input spec from a spec's `input` object.
 * @param {unknown} raw
 * @returns {InputSpec}
 */
export function parseInput(raw) {
  if (!isObject(raw)) throw new SpecError("spec field 'input' must be an object");
  const kind = raw.kind;
  if (typeof kind !== "string" || !(kind in INPUT_KINDS)) {
    throw new SpecError(`unknown input kind ${pyRepr(kind)}; expected one of ${Object.keys(INPUT_KINDS).join(", ")}`);
  }
  const data = { ...raw };
  if ("vocab" in data) data.vocab = strList(data.vocab, "input.vocab", true);
  if (kind === "features") {
    for (const name of ["mean", "std"]) data[name] = floatList(name in data ? data[name] : [], `input.${name}`);
    data.names = strList("names" in data ? data.names : [], "input.names", true);
  }
  return /** @type {InputSpec} */ (build(INPUT_KINDS[kind], data, "input"));
}

/**
 * The typed output spec from a spec's `output` object (Python's `parse_output`).
 * @param {unknown} raw
 * @returns {OutputSpec}
 */
export function parseOutput(raw) {
  if (!isObject(raw)) throw new SpecError("spec field 'output' must be an object");
  const data = { ...raw };
  data.names = strList(data.names, "output.names", false);
  return /** @type {OutputSpec} */ (build(OUTPUT, data, "output"));
}

/** @param {unknown} v */
function isInt(v) {
  return typeof v === "number" && Number.isInteger(v);
}

/** @param {unknown} value @param {string} where @param {boolean} allowEmpty @returns {string[]} */
function strList(value, where, allowEmpty) {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw new SpecError(`spec field '${where}' must be a list of strings`);
  }
  if (!value.length && !allowEmpty) throw new SpecError(`spec field '${where}' must not be empty`);
  return [...value];
}

/** @param {unknown} value @param {string} where @returns {number[]} */
function floatList(value, where) {
  const number = (/** @type {unknown} */ v) => (v instanceof PyFloat ? v.value : v);
  if (!Array.isArray(value) || !value.every((v) => typeof number(v) === "number" && Number.isFinite(number(v)))) {
    throw new SpecError(`spec field '${where}' must be a list of finite numbers`);
  }
  return value.map((v) => /** @type {number} */ (number(v)));
}

/** Python's _check_depth: nesting bounded, every float finite. @param {unknown} value @param {string} where */
function checkDepth(value, where, depth = 0) {
  if (depth > MAX_JSON_DEPTH) throw new SpecError(`${where} is nested deeper than ${MAX_JSON_DEPTH} levels`);
  const items = Array.isArray(value) ? value : Object.values(/** @type {object} */ (value));
  for (const v of items) {
    if (Array.isArray(v) || isObject(v)) checkDepth(v, where, depth + 1);
    else if ((v instanceof PyFloat && !Number.isFinite(v.value)) || (typeof v === "number" && !Number.isFinite(v))) {
      throw new SpecError(`${where} holds ${pyFloat(v instanceof PyFloat ? v.value : v)}; expected finite numbers only`);
    }
  }
}

/**
 * A record of `fields` from a mapping: unknown fields refused, every field's type checked, the
 * defaults filled in, float literals made numbers (Python's `_build`).
 * @param {Field[]} fields @param {unknown} raw @param {string} where
 * @returns {Record<string, any>}
 */
function build(fields, raw, where) {
  if (!isObject(raw)) throw new SpecError(`spec field '${where}' must be an object`);
  const known = new Map(fields.map((f) => [f[0], f]));
  const unknown = Object.keys(raw).filter((k) => !known.has(k)).sort();
  if (unknown.length) {
    throw new SpecError(`spec field '${where}' has unknown field(s) ${unknown.slice(0, 5).map(pyRepr).join(", ")}`);
  }
  for (const [name, value] of Object.entries(raw)) {
    checkType(/** @type {Field} */ (known.get(name))[1], value, where !== "spec" ? `${where}.${name}` : name);
  }
  const missing = fields.filter((f) => f.length < 3 && !(f[0] in raw)).map((f) => pyRepr(f[0]));
  if (missing.length) {
    const list = missing.length === 1 ? missing[0] : `${missing.slice(0, -1).join(", ")}${missing.length > 2 ? "," : ""} and ${missing.at(-1)}`;
    throw new SpecError(`spec field '${where}' is missing ${list}`);
  }
  /** @type {Record<string, any>} */
  const out = {};
  for (const [name, , fallback] of fields) {
    const value = name in raw ? raw[name] : structuredClone(fallback);
    out[name] = plain(value);
  }
  return out;
}

/** @param {string} kind @param {unknown} value @param {string} where */
function checkType(kind, value, where) {
  if (kind === "str" || kind === "int" || kind === "bool" || kind === "float") {
    const ok = kind === "str" ? typeof value === "string"
      : kind === "bool" ? typeof value === "boolean"
        : kind === "int" ? typeof value === "number" && Number.isInteger(value)
          : typeof value === "number" || value instanceof PyFloat;
    if (!ok) {
      throw new SpecError(`spec field '${where}' must be a ${kind === "float" ? "number" : kind}, got ${pyType(value)}`);
    }
    const number = value instanceof PyFloat ? value.value : value;
    if (kind === "float" && !Number.isFinite(number)) {
      throw new SpecError(`spec field '${where}' must be a finite number, got ${pyFloat(/** @type {number} */ (number))}`);
    }
  } else if (kind === "metrics") {
    const good = isObject(value) && Object.values(value).every((v) =>
      (typeof v === "number" && Number.isFinite(v)) || (v instanceof PyFloat && Number.isFinite(v.value)));
    if (!good) throw new SpecError(`spec field '${where}' must map names to finite numbers`);
  }
}

// --- validation (Python's _check_spec) ----------------------------------------------------------

/** @param {number} value @param {string} where @param {number} top */
function positive(value, where, top) {
  if (!(value >= 1 && value <= top)) {
    throw new SpecError(`spec field '${where}' must be between 1 and ${commas(top)}, got ${value}`);
  }
}

/** @param {string} value @param {string} where @param {boolean} [required] */
function checkName(value, where, required = true) {
  if ((required && !value) || codePoints(value) > MAX_NAME || !isPrintable(value)) {
    throw new SpecError(`spec field '${where}' must be a printable name of 1 to ${MAX_NAME} characters`);
  }
}

/** Number of ids of a token input, padding and unknown included. @param {{vocab: string[]}} input */
export function vocabSize(input) {
  return input.vocab.length + 2;
}

/** The id of each vocabulary entry, in order: every id except pad_id and unk_id. @param {TextInput | CharInput} input */
export function tokenIds(input) {
  const out = [];
  for (let i = 0; i < vocabSize(input); i++) if (i !== input.pad_id && i !== input.unk_id) out.push(i);
  return out;
}

const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * True when `value` is a finite float32 number (and, with `positive`, stays above 0 as one), as Python's `_float32`.
 * @param {number} value @param {boolean} [positive]
 */
function float32(value, positive = false) {
  if (!(Number.isFinite(value) && Math.abs(value) <= FLOAT32_MAX)) return false;
  return !positive || Math.fround(value) > 0;
}

/** @param {ModelSpec} spec @param {FeatureInput} inp */
function checkFeatures(spec, inp) {
  positive(inp.size, "input.size", MAX_WIDTH);
  if (spec.input_size !== inp.size) {
    throw new SpecError(`a features model reads ${inp.size} values per step; input_size is ${spec.input_size}`);
  }
  if (inp.mean.length !== inp.std.length || (inp.mean.length && inp.mean.length !== inp.size)) {
    throw new SpecError(`spec fields 'input.mean' and 'input.std' must hold ${inp.size} numbers each (or none)`);
  }
  if (!inp.mean.every((v) => float32(v)) || !inp.std.every((v) => float32(v, true))) {
    throw new SpecError("spec fields 'input.mean' and 'input.std' must hold float32 numbers, std positive");
  }
  if (inp.names.length && (inp.names.length !== inp.size || new Set(inp.names).size !== inp.size)) {
    throw new SpecError(`spec field 'input.names' must hold ${inp.size} distinct names (or none)`);
  }
}

/** @param {ModelSpec} spec */
function checkInput(spec) {
  const inp = spec.input;
  if (inp.kind === "features") {
    checkFeatures(spec, inp);
    return;
  }
  if (inp.kind === "image") {
    positive(inp.rows, "input.rows", MAX_WIDTH);
    positive(inp.cols, "input.cols", MAX_WIDTH);
    positive(inp.fit_px, "input.fit_px", Math.min(inp.rows, inp.cols));
    if (!(float32(inp.scale, true) && float32(inp.std, true) && float32(inp.mean))) {
      throw new SpecError("spec fields 'input.scale', 'input.mean' and 'input.std' must be float32 numbers, "
        + "scale and std positive");
    }
    if (spec.input_size !== inp.cols) {
      throw new SpecError(`an image model reads rows of ${inp.cols} pixels; input_size is ${spec.input_size}`);
    }
    return;
  }
  if (inp.vocab.length > MAX_VOCAB) throw new SpecError(`spec field 'input.vocab' has more than ${commas(MAX_VOCAB)} entries`);
  if (new Set(inp.vocab).size !== inp.vocab.length || !inp.vocab.every((v) => v)) {
    throw new SpecError("spec field 'input.vocab' must hold distinct non-empty entries");
  }
  if (inp.kind === "chars" && inp.vocab.some((c) => codePoints(c) !== 1)) {
    throw new SpecError("spec field 'input.vocab' of a characters model must hold single characters");
  }
  const size = vocabSize(inp);
  for (const [name, value] of /** @type {[string, number][]} */ ([["pad_id", inp.pad_id], ["unk_id", inp.unk_id]])) {
    if (!(value >= 0 && value < size)) throw new SpecError(`spec field 'input.${name}' must be an id below ${size}, got ${value}`);
  }
  if (inp.pad_id === inp.unk_id) throw new SpecError("spec fields 'input.pad_id' and 'input.unk_id' must differ");
}

/** @param {ModelSpec} spec */
function checkOutput(spec) {
  const out = spec.output;
  if (!OUTPUT_KINDS.includes(out.kind)) {
    throw new SpecError(`unknown output kind ${pyRepr(out.kind)}; expected one of ${OUTPUT_KINDS.join(", ")}`);
  }
  if (!OUTPUT_PER.includes(out.per)) {
    throw new SpecError(`unknown output.per ${pyRepr(out.per)}; expected one of ${OUTPUT_PER.join(", ")}`);
  }
  if (!out.names.length || new Set(out.names).size !== out.names.length || out.names.length > MAX_VOCAB) {
    throw new SpecError(`spec field 'output.names' must hold 1 to ${commas(MAX_VOCAB)} distinct names`);
  }
  if (out.kind === "values" && spec.io.step_probabilities) {
    throw new SpecError("a model that gives values has no probabilities: io.step_probabilities must be empty");
  }
}

/** True when the head reads anything besides the last hidden state. @param {Readout} r */
export function readoutActive(r) {
  return r.pool || r.ngram_buckets > 0 || r.short_hidden > 0;
}

/** @param {Readout} r @param {string} cell @param {string} inputKind */
function checkReadout(r, cell, inputKind) {
  if (!NGRAM_POOLS.includes(r.ngram_pool)) {
    throw new SpecError(`unknown ngram_pool ${pyRepr(r.ngram_pool)}; expected one of ${NGRAM_POOLS.join(", ")}`);
  }
  if (!(r.ngram_buckets >= 0 && r.ngram_buckets <= MAX_NGRAM_BUCKETS)) {
    throw new SpecError(`spec field 'readout.ngram_buckets' must be between 0 and ${commas(MAX_NGRAM_BUCKETS)}`);
  }
  if (r.ngram_buckets && inputKind !== "words") throw new SpecError("an n-gram readout needs word-token input");
  if (r.ngram_buckets && !(r.ngram_order >= 2 && r.ngram_order <= MAX_NGRAM_ORDER)) {
    throw new SpecError(`an n-gram readout needs ngram_order between 2 and ${MAX_NGRAM_ORDER}`);
  }
  if (!(r.short_hidden >= 0 && r.short_hidden <= MAX_WIDTH)) {
    throw new SpecError(`spec field 'readout.short_hidden' must be between 0 and ${commas(MAX_WIDTH)}`);
  }
  if (r.short_hidden && !SHORT_CELLS.includes(cell)) {
    throw new SpecError(`a short-text branch needs a ${SHORT_CELLS.join(" or ")} model, not ${cell}`);
  }
  if (r.short_hidden && !(r.short_words >= 1 && r.short_words <= MAX_SHORT_WORDS)) {
    throw new SpecError(`spec field 'readout.short_words' must be between 1 and ${commas(MAX_SHORT_WORDS)} `
      + "with a short-text branch");
  }
  if (!r.short_hidden && r.short_words) {
    throw new SpecError("spec field 'readout.short_words' is set without a short-text branch (short_hidden 0)");
  }
}

/** @type {Readout} */
const NO_READOUT = Object.freeze({ pool: false, ngram_buckets: 0, ngram_order: 3, ngram_pool: "mean", short_hidden: 0,
  short_words: 0 });

/**
 * The named state tensors a built-in model of this cell, size and readout carries (formats 1-6
 * fix them; docs/format.md 2.2): `h` (and `c` for lstm), then the readout's.
 * @param {string} cell @param {number} layers @param {number} hidden @param {Partial<Readout>} [readout]
 * @returns {StateTensor[]}
 */
export function stateFor(cell, layers, hidden, readout = NO_READOUT) {
  const r = { ...NO_READOUT, ...readout };
  /** @type {(name: string, l: number, h: number, initial?: number) => StateTensor} */
  const t = (name, l, h, initial = 0) => ({ name, output: `${name}_next`, layers: l, hidden: h, dtype: "float32", initial });
  const state = (cell === "lstm" ? ["h", "c"] : ["h"]).map((n) => t(n, layers, hidden));
  if (readoutActive(r)) state.push(t("count", 1, 1));
  if (r.pool) state.push(t("pool_sum", 1, hidden), t("pool_max", 1, hidden, -1));
  if (r.ngram_buckets) state.push(t("ngram_sum", 1, 1), t("prev", r.ngram_order - 1, 1));
  if (r.short_hidden) state.push(t("h_short", 1, r.short_hidden));
  return state;
}

/** Python's == on parsed JSON scalars (1 == 1.0 == True). @param {unknown} a @param {unknown} b */
function pyEqual(a, b) {
  const number = (/** @type {unknown} */ v) => (v instanceof PyFloat ? v.value : typeof v === "boolean" ? Number(v) : v);
  return number(a) === number(b);
}

/**
 * Formats 1-6: the state's names and shapes follow from the cell, its size and the readout
 * (Python's `_check_task_state`).
 * @param {Record<string, unknown>[]} states @param {string} cell @param {number} layers @param {number} hidden
 * @param {Readout} r
 */
function checkTaskState(states, cell, layers, hidden, r) {
  const expected = stateFor(cell, layers, hidden, r);
  if (states.length !== expected.length || states.some((s, i) => s.name !== expected[i].name)) {
    const tuple = expected.length === 1 ? `(${pyRepr(expected[0].name)},)` : `(${expected.map((s) => pyRepr(s.name)).join(", ")})`;
    throw new SpecError(`a ${cell} model's state must be named ${tuple}`);
  }
  states.forEach((got, i) => {
    const want = expected[i];
    if (!pyEqual(got.layers, want.layers) || !pyEqual(got.hidden, want.hidden)
      || !pyEqual("dtype" in got ? got.dtype : "float32", want.dtype)) {
      throw new SpecError(`state ${pyRepr(want.name)} must be (${want.layers}, B, ${want.hidden}) ${want.dtype}, `
        + `not (${pyStr(got.layers)}, B, ${pyStr(got.hidden)}) ${pyStr(got.dtype)}`);
    }
  });
}

/** @param {ModelSpec} spec */
function checkState(spec) {
  if (!spec.state.length) throw new SpecError("spec field 'state' must list at least one state tensor");
  let elements = 0;
  for (const s of spec.state) {
    checkName(s.name, `state.${s.name}.name`);
    checkName(s.output, `state.${s.name}.output`);
    if (s.dtype !== "float32") throw new SpecError(`state ${pyRepr(s.name)} must be float32, not ${s.dtype}`);
    if (!float32(s.initial)) {
      throw new SpecError(`state ${pyRepr(s.name)} has initial value ${pyFloat(s.initial)}; expected a float32 number`);
    }
    positive(s.layers, `state.${s.name}.layers`, MAX_WIDTH);
    positive(s.hidden, `state.${s.name}.hidden`, MAX_WIDTH);
    elements += s.layers * s.hidden;
  }
  if (elements > MAX_STATE_ELEMENTS) {
    throw new SpecError(`the state holds ${commas(elements)} values per stream; at most ${commas(MAX_STATE_ELEMENTS)}`);
  }
  const io = spec.io;
  const names = spec.state.map((s) => s.name);
  const seqInputs = [io.seq_input, ...(io.lengths ? [io.lengths] : []), ...names];
  const stepInputs = [io.step_input, ...names];
  const outputs = [io.output, ...spec.state.map((s) => s.output), ...(io.step_probabilities ? [io.step_probabilities] : [])];
  const inputs = new Set([...seqInputs, ...stepInputs]);
  if ([seqInputs, stepInputs, outputs].some((list) => new Set(list).size !== list.length) || outputs.some((o) => inputs.has(o))) {
    throw new SpecError("graph input and output names in 'io' and 'state' must all be distinct");
  }
  for (const [name] of IO) {
    if (name === "batch_steps_from") continue;
    checkName(/** @type {any} */ (io)[name], `io.${name}`, name !== "lengths" && name !== "step_probabilities");
  }
  if (!(io.batch_steps_from >= 0 && io.batch_steps_from <= MAX_BATCH_STEPS_FROM)) {
    throw new SpecError(`io.batch_steps_from is ${io.batch_steps_from}; expected 0 (never) or a stream count `
      + `up to ${MAX_BATCH_STEPS_FROM}`);
  }
  if (io.lengths && !readsTokens(spec)) {
    throw new SpecError("only token models have a lengths input (feature rows are read whole): io.lengths must be empty");
  }
}

/**
 * Every cross-field rule of a spec; SpecError naming the first that fails.
 * @param {ModelSpec} spec
 * @param {unknown} [rawReadout] `extras.readout` as parsed (its numbers' int or float kind kept)
 */
function checkSpec(spec, rawReadout) {
  if (!CELLS.includes(spec.cell)) throw new SpecError(`unknown cell ${pyRepr(spec.cell)}; expected one of ${CELLS.join(", ")}`);
  if (!PRECISIONS.includes(spec.precision)) throw new SpecError(`unknown precision ${pyRepr(spec.precision)}; expected fp32 or int8`);
  if (spec.layers < 1 || spec.hidden < 1 || spec.input_size < 1) {
    throw new SpecError("layers, hidden and input_size must be positive");
  }
  positive(spec.layers, "layers", MAX_LAYERS);
  positive(spec.hidden, "hidden", MAX_WIDTH);
  positive(spec.input_size, "input_size", MAX_WIDTH);
  positive(spec.opset, "opset", 100);
  checkInput(spec);
  checkOutput(spec);
  checkState(spec);
  if ("readout" in spec.extras) {
    const r = rawReadout !== undefined ? /** @type {Readout} */ (build(READOUT, rawReadout, "extras.readout")) : readout(spec);
    checkReadout(r, spec.cell, spec.input.kind);
  }
  checkDepth(spec.provenance, "spec field 'provenance'");
  checkDepth(spec.metrics, "spec field 'metrics'");
  checkDepth(spec.extras, "spec field 'extras'");
}

/** @template T @param {T} value @returns {T} */
function deepFreeze(value) {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

// --- what a spec says (Python's ModelSpec properties and methods) --------------------------------

/**
 * The spec as Python's `ModelSpec.to_dict()` writes it: format 7 terms, `format_version` 8 (a
 * spec read from an older file keeps its own version in `spec.format_version`). A fresh,
 * unfrozen copy, ready for JSON.stringify.
 * @param {ModelSpec} spec
 * @returns {Record<string, any>}
 */
export function specToDict(spec) {
  return { ...structuredClone(spec), format_version: FORMAT_VERSION };
}

/**
 * The built-in models' readout, an extra describing what their heads read (Python's
 * `spec.readout`): `extras.readout` with its defaults filled in, or no readout.
 * @param {ModelSpec} spec
 * @returns {Readout}
 */
export function readout(spec) {
  const raw = spec.extras.readout;
  return raw !== null && raw !== undefined ? /** @type {Readout} */ (build(READOUT, raw, "extras.readout")) : { ...NO_READOUT };
}

/** The names of the answers: class labels, or the names of the values. @param {ModelSpec} spec */
export function labels(spec) {
  return spec.output.names;
}

/** True when the answers are class probabilities (the softmax of the graphs' output). @param {ModelSpec} spec */
export function givesClasses(spec) {
  return spec.output.kind === "classes";
}

/** True when the model answers every step (the sequence graph's output is (B, T, C)). @param {ModelSpec} spec */
export function perStep(spec) {
  return spec.output.per === "step";
}

/**
 * The graphs' output as answers (Python's `spec.answers`): rows of C values made probabilities
 * (the softmax) for a classes model, or copied as they are for a values model.
 * @param {ModelSpec} spec @param {Float32Array} logits rows of C values
 * @returns {Float32Array} a new array
 */
export function answers(spec, logits) {
  return givesClasses(spec) ? softmax(logits, spec.output.names.length) : Float32Array.from(logits);
}

/** @type {WeakMap<object, {mean: Float32Array, std: Float32Array}>} */
const NORMS = new WeakMap();

/**
 * Raw feature rows (..., F) as the graphs read them (Python's `graph_features`): for a features
 * model with a mean and std, a normalised copy, (x - mean) / std per feature in float32 (the
 * same bits as numpy's float32 subtract then divide); x itself otherwise.
 * @param {ModelSpec} spec @param {Float32Array} x
 * @returns {Float32Array}
 */
export function normalizeFeatures(spec, x) {
  const inp = spec.input;
  if (inp.kind !== "features" || !inp.mean.length) return x;
  let norm = NORMS.get(inp);
  if (!norm) {
    norm = { mean: Float32Array.from(inp.mean), std: Float32Array.from(inp.std) };
    if (Object.isFrozen(inp)) NORMS.set(inp, norm); // a parsed spec never changes
  }
  const { mean, std } = norm, f = mean.length, out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.fround(x[i] - mean[i % f]) / std[i % f];
  return out;
}

/**
 * This spec's input when it is of `kind`; WrongTaskError otherwise (Python's `require_input`).
 * @param {ModelSpec} spec @param {"image" | "words" | "chars" | "features"} kind
 */
export function requireInput(spec, kind) {
  if (spec === null || typeof spec !== "object" || spec.input === null || typeof spec.input !== "object") {
    throw new InputError(`expected a model's spec (model.spec), got ${spec === null ? "null" : typeof spec}`);
  }
  if (spec.input.kind !== kind) {
    throw new WrongTaskError(`a model that reads ${spec.input.kind}; expected a model that reads ${kind}`);
  }
  return spec.input;
}

/** True when a step reads a token id (words, characters) rather than a feature row. @param {ModelSpec} spec */
export function readsTokens(spec) {
  return spec.input.kind === "words" || spec.input.kind === "chars";
}

/**
 * Fresh state tensors for `batch` streams, keyed by input name: each (layers, batch, hidden).
 * @param {ModelSpec} spec @param {number} [batch]
 * @returns {Record<string, Float32Array>}
 */
export function initialState(spec, batch = 1) {
  /** @type {Record<string, Float32Array>} */
  const out = {};
  for (const s of spec.state) out[s.name] = new Float32Array(s.layers * batch * s.hidden).fill(s.initial);
  return out;
}
