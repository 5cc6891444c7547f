// Characters models: generate text one character per step, and score text in nats per
// character (a port of edgeinfer/tasks/characters.py).
//
// Greedy generation (temperature 0) gives exactly Python's text: argmax of the logits with
// padding and unknown excluded, ties to the lowest id (numpy's argmax). Sampling uses a seeded
// generator of its own, documented below; the same seed gives the same text here, but not the
// text numpy's generator gives in Python.

import { InputError, WrongTaskError, brief } from "./errors.js";
import { Stream } from "./stream.js";
import { CharTokenizer } from "./text.js";

export const DEFAULT_TEMPERATURE = 0.8;

/**
 * The character tokenizer a characters model's spec defines.
 * @param {import("./model.js").Model} model
 */
export function charTokenizer(model) {
  try {
    return new CharTokenizer(model.spec);
  } catch (err) {
    if (err instanceof WrongTaskError) {
      throw new InputError(`${model.source}: a model that reads ${model.spec.input.kind}; expected a characters model`);
    }
    throw err;
  }
}

/**
 * A seeded pseudo-random generator: xoshiro128** (Blackman and Vigna), its 128-bit state filled
 * by SplitMix64 from the seed. `random()` gives 53-bit floats in [0, 1).
 */
export class Random {
  /** @param {number | bigint} seed a whole number >= 0 */
  constructor(seed) {
    let x = BigInt.asUintN(64, BigInt(seed));
    const words = [];
    for (let i = 0; i < 2; i++) { // SplitMix64, two outputs -> four 32-bit words
      x = BigInt.asUintN(64, x + 0x9e3779b97f4a7c15n);
      let z = x;
      z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
      z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
      z ^= z >> 31n;
      words.push(Number(z & 0xffffffffn), Number(z >> 32n));
    }
    this.s = Uint32Array.from(words);
    if (this.s.every((w) => w === 0)) this.s[0] = 1; // the one state xoshiro cannot leave
  }

  /** The next 32 random bits. */
  next32() {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A float in [0, 1) with 53 random bits. */
  random() {
    return ((this.next32() >>> 5) * 67108864 + (this.next32() >>> 6)) / 9007199254740992;
  }
}

/** @param {number} x @param {number} k */
function rotl(x, k) {
  return (x << k) | (x >>> (32 - k));
}

/**
 * The next character id from the logits: greedy at temperature 0 (argmax, ties to the lowest id),
 * else sampled from softmax(logits / temperature), keeping the `topK` most likely when topK > 0.
 * @param {Float32Array} logits @param {number[]} special ids never produced
 * @param {number} temperature @param {number} topK @param {Random} rng
 */
export function nextId(logits, special, temperature, topK, rng) {
  const z = Float64Array.from(logits);
  for (const id of special) z[id] = -Infinity;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < z.length; i++) if (z[i] > z[best]) best = i;
    return best;
  }
  for (let i = 0; i < z.length; i++) z[i] /= temperature;
  if (topK > 0 && topK < z.length) {
    const kth = Float64Array.from(z).sort()[z.length - topK]; // the k-th largest
    for (let i = 0; i < z.length; i++) if (z[i] < kth) z[i] = -Infinity;
  }
  let top = -Infinity;
  for (const v of z) top = Math.max(top, v);
  const p = z.map((v) => Math.exp(v - top));
  const total = p.reduce((a, b) => a + b, 0);
  const u = rng.random() * total;
  let acc = 0, last = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    acc += p[i];
    last = i;
    if (u < acc) return i;
  }
  return last; // rounding left u at the very end
}

let warnedChars = false; // generate's old option name `chars` warns once

/**
 * Characters continuing `prompt`, one per step, as they are produced (an async iterator).
 * temperature 0 means greedy (always the most likely character); otherwise logits are divided by
 * the temperature and, with topK > 0, sampling keeps the k most likely characters. The same seed
 * gives the same text. Padding and unknown are never produced. Pass `stream` to continue (and
 * keep) a stream of your own; the prompt is then optional. Options are checked at the call.
 * @param {import("./model.js").Model} model
 * `maxChars` is Python's `max_chars` and the command line's `--max-chars`; `chars`, its old
 * name, still works (with a one-time deprecation warning on the console).
 * @param {{prompt?: string, maxChars?: number, chars?: number, temperature?: number, topK?: number,
 *   seed?: number | bigint, stream?: Stream}} options
 * @returns {AsyncGenerator<string, void, void>}
 */
export function generate(model, options) {
  if (options === null || typeof options !== "object") throw new InputError("generate options must be an object");
  const { prompt = "", temperature = DEFAULT_TEMPERATURE, topK = 0, seed, stream } = options;
  let chars = options.maxChars;
  if (chars === undefined && options.chars !== undefined) {
    chars = options.chars;
    if (!warnedChars) {
      warnedChars = true;
      console.warn("edgeinfer-web: generate's option `chars` is now `maxChars` (as Python's max_chars); `chars` still works");
    }
  }
  if (typeof prompt !== "string") throw new InputError(`prompt must be text (a string), got ${brief(prompt)}`);
  if (!Number.isInteger(chars) || /** @type {number} */ (chars) < 1) {
    throw new InputError(`maxChars must be a whole number >= 1, got ${brief(chars)}`);
  }
  if (typeof temperature !== "number" || !(temperature >= 0 && temperature < Infinity)) {
    throw new InputError(`temperature must be a finite number >= 0, got ${brief(temperature)}`);
  }
  if (!Number.isInteger(topK) || topK < 0) throw new InputError(`topK must be a whole number >= 0, got ${brief(topK)}`);
  const tok = charTokenizer(model);
  const seedOk = seed === undefined || (typeof seed === "bigint" && seed >= 0n)
    || (Number.isSafeInteger(seed) && /** @type {number} */ (seed) >= 0);
  if (!seedOk) throw new InputError(`seed must be an integer >= 0, got ${brief(seed)}`);
  if (stream !== undefined && !(stream instanceof Stream && stream.model === model)) {
    throw new InputError("stream must be a stream of this model (model.stream())");
  }
  const rng = new Random(seed ?? globalThis.crypto.getRandomValues(new Uint32Array(2)).reduce((a, w) => a * 4294967296 + w, 0) % 2 ** 53);
  if (!prompt && (stream === undefined || stream.logits === null)) {
    throw new InputError("an empty prompt; expected at least one character to start from");
  }
  const special = [tok.input.pad_id, tok.input.unk_id];
  const s = stream ?? new Stream(model);
  return (async function* run() {
    if (prompt) await s.feed(Int32Array.from(tok.encode(prompt)));
    if (s.logits === null) throw new InputError("an empty prompt; expected at least one character to start from");
    for (let n = 0; n < /** @type {number} */ (chars); n++) {
      const id = nextId(/** @type {Float32Array} */ (s.logits), special, temperature, /** @type {number} */ (topK), rng);
      yield tok.chars[id];
      await s.step(id);
    }
  })();
}

/**
 * Average loss of predicting each character from those before it, in nats per character (one
 * step per character, through the step graph).
 * @param {import("./model.js").Model} model
 * @param {string} text
 * @returns {Promise<number>}
 */
export async function score(model, text) {
  if (typeof text !== "string") throw new InputError(`expected text (a string), got ${brief(text)}`);
  const ids = charTokenizer(model).encode(text);
  if (ids.length < 2) throw new InputError("text too short to score; expected at least two characters");
  const s = new Stream(model);
  let total = 0;
  for (let i = 0; i + 1 < ids.length; i++) {
    await s.step(ids[i]);
    const logits = /** @type {Float32Array} */ (s.logits);
    let top = -Infinity;
    for (const v of logits) top = Math.max(top, v);
    let sum = 0;
    for (const v of logits) sum += Math.exp(v - top);
    total += top + Math.log(sum) - logits[ids[i + 1]];
  }
  return total / (ids.length - 1);
}
