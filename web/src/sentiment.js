// Words models (sentiment): classify whole texts in length-sorted batches, or read text as it
// arrives (a port of edgeinfer/tasks/sentiment.py: the same batches, so the same numbers).

import { softmax } from "./arrays.js";
import { InputError, WrongTaskError } from "./errors.js";
import { ort } from "./runtime.js";
import { codePoints } from "./spec.js";
import { Stream } from "./stream.js";
import { Tokenizer, WordBuffer } from "./text.js";

export const MAX_BATCH_TOKENS = 64 * 512; // padded tokens per sequence-graph call
export const MAX_BATCH_TEXTS = 256;
export const CHUNK_WORDS = 2048; // words per sequence-graph call when streaming long texts
export const LONG_TEXT_CHARS = 1 << 16; // longer texts are read in pieces of this many characters, state carried

/**
 * The tokenizer a words model's spec defines.
 * @param {import("./model.js").Model} model
 */
export function textTokenizer(model) {
  try {
    return new Tokenizer(model.spec);
  } catch (err) {
    if (err instanceof WrongTaskError) throw new InputError(`${model.source}: a ${model.spec.task} model does not read text`);
    throw err;
  }
}

/**
 * Class probabilities of whole texts, each read whole (no truncation), in length-sorted padded
 * batches (each row stops at its own length, so a batch gives each text's result alone).
 * @param {import("./model.js").Model} model
 * @param {unknown} texts an array of strings
 * @returns {Promise<{data: Float32Array, dims: number[]}>} (N, C)
 */
export async function predictTexts(model, texts) {
  if (typeof texts === "string") throw new InputError("expected a list of texts, got one string; wrap it in a list");
  const tok = textTokenizer(model);
  if (!Array.isArray(texts) || !texts.every((t) => typeof t === "string")) {
    throw new InputError("expected a list of texts (strings)");
  }
  const classes = model.classes;
  const out = new Float32Array(texts.length * classes);
  /** @type {number[]} */
  const short = [];
  texts.forEach((t, i) => {
    if (t.length <= LONG_TEXT_CHARS || codePoints(t) <= LONG_TEXT_CHARS) short.push(i);
  });
  const isShort = new Set(short);
  for (let i = 0; i < texts.length; i++) {
    if (!isShort.has(i)) out.set(await longText(model, texts[i], i), i * classes);
  }
  /** @type {Map<number, number[]>} */
  const ids = new Map(short.map((i) => [i, tok.encode(texts[i])]));
  for (const [i, seq] of ids) {
    if (!seq.length) throw new InputError(`text ${i} is empty or has no words; expected at least one word`);
  }
  const len = (/** @type {number} */ i) => /** @type {number[]} */ (ids.get(i)).length;
  const order = [...short].sort((a, b) => len(a) - len(b)); // stable, as Python's sorted
  let start = 0;
  while (start < order.length) {
    let end = start + 1;
    while (end < order.length && end - start < MAX_BATCH_TEXTS && len(order[end]) * (end - start + 1) <= MAX_BATCH_TOKENS) end++;
    const rows = order.slice(start, end);
    const width = Math.max(...rows.map(len));
    const x = new BigInt64Array(rows.length * width).fill(BigInt(tok.input.pad_id));
    const lengths = new BigInt64Array(rows.length);
    rows.forEach((i, r) => {
      const seq = /** @type {number[]} */ (ids.get(i));
      for (let t = 0; t < seq.length; t++) x[r * width + t] = BigInt(seq[t]);
      lengths[r] = BigInt(seq.length);
    });
    const { logits } = await model.runSequence(new ort.Tensor("int64", x, [rows.length, width]), null, lengths);
    const probs = softmax(logits, classes);
    rows.forEach((i, r) => out.set(probs.subarray(r * classes, (r + 1) * classes), i * classes));
    start = end;
  }
  return { data: out, dims: [texts.length, classes] };
}

/**
 * Probabilities of one long text read in pieces through a TextStream.
 * @param {import("./model.js").Model} model @param {string} text @param {number} index
 */
async function longText(model, text, index) {
  const stream = new TextStream(model);
  const chars = [...text];
  for (let start = 0; start < chars.length; start += LONG_TEXT_CHARS) {
    await stream.feed(chars.slice(start, start + LONG_TEXT_CHARS).join(""));
  }
  try {
    return await stream.finish();
  } catch (err) {
    if (err instanceof InputError) throw new InputError(`text ${index} is empty or has no words; expected at least one word`);
    throw err;
  }
}

/** Reads text as it arrives (words or chunks cut anywhere) and keeps the running result. */
export class TextStream {
  #busy = false;

  /** @param {import("./model.js").Model} model */
  constructor(model) {
    this.tokenizer = textTokenizer(model);
    this.stream = new Stream(model, 1);
    this.buffer = new WordBuffer(this.tokenizer.input.lowercase);
    this.labels = model.spec.labels;
  }

  /** Words read so far. */
  get words() {
    return this.stream.steps;
  }

  /** Class probabilities after the latest word. @returns {Float32Array} */
  get probabilities() {
    if (this.stream.steps === 0) throw new InputError("the text is empty or has no words yet; expected at least one word");
    return this.stream.probabilities;
  }

  /** The running probability of one label. @param {string} [label] */
  probability(label = "positive") {
    const i = this.labels.indexOf(label);
    if (i < 0) throw new InputError(`unknown label ${JSON.stringify(label)}; expected one of ${this.labels.join(", ")}`);
    return this.probabilities[i];
  }

  /** @template T @param {() => Promise<T>} work @returns {Promise<T>} */
  async #exclusive(work) {
    if (this.#busy) throw new InputError("this text stream is in use by another call; await each call before the next");
    this.#busy = true;
    try {
      return await work();
    } finally {
      this.#busy = false;
    }
  }

  /** Read a chunk of text; complete words go through the sequence graph in one call. @param {string} chunk */
  feed(chunk) {
    return this.#exclusive(async () => this.#feedWords(this.buffer.push(chunk)));
  }

  /** End of text: read the last pending word; returns the final probabilities. */
  finish() {
    return this.#exclusive(async () => {
      await this.#feedWords(this.buffer.flush());
      return this.probabilities;
    });
  }

  /** @param {string[]} tokens */
  async #feedWords(tokens) {
    for (let i = 0; i < tokens.length; i += CHUNK_WORDS) {
      await this.stream.feed(Int32Array.from(this.tokenizer.encodeWords(tokens.slice(i, i + CHUNK_WORDS))));
    }
  }

  /**
   * Read text word by word through the step graph: [word, probabilities] after each. By default
   * the text is read whole, its last word included; for text arriving in pieces pass
   * `final = false` for every piece but the last (a word cut in two is then read once).
   * @param {string} chunk @param {boolean} [final]
   * @returns {Promise<Array<[string, Float32Array]>>}
   */
  trace(chunk, final = true) {
    return this.#exclusive(async () => {
      const tokens = [...this.buffer.push(chunk), ...(final ? this.buffer.flush() : [])];
      const ids = this.tokenizer.encodeWords(tokens);
      /** @type {Array<[string, Float32Array]>} */
      const out = [];
      for (let i = 0; i < tokens.length; i++) out.push([tokens[i], await this.stream.step(ids[i])]);
      return out;
    });
  }

  /** Forget everything read. */
  reset() {
    if (this.#busy) throw new InputError("this text stream is in use by another call; await each call before the next");
    this.stream.reset();
    this.buffer = new WordBuffer(this.tokenizer.input.lowercase);
  }
}
