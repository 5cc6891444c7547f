// Words models (sentiment): classify whole texts in length-sorted batches, or read text as it
// arrives (a port of edgeinfer/tasks/sentiment.py: the same batches, so the same numbers).

import { InputError, WrongTaskError, brief } from "./errors.js";
import { ort } from "./runtime.js";
import { answers, codePoints } from "./spec.js";
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
    if (err instanceof WrongTaskError) throw new InputError(`${model.source}: a model that reads ${model.spec.input.kind} does not read text`);
    throw err;
  }
}

export const CHUNK_TEXTS = 4096; // predict tokenizes and sorts at most this many texts together...
export const CHUNK_CHARS = 1 << 24; // ... or this many characters, so its working memory stays bounded
export const EMPTY_TEXT = "empty text (no words); expected at least one word";

export const MIN_KNOWN_FRACTION = 0.6; // below this share of words in the vocabulary, an answer has low coverage

/**
 * True when a text's answer rests on too little the model knows (Python's `is_low_coverage`): no
 * word of it is in the vocabulary, or fewer than MIN_KNOWN_FRACTION of its words are.
 * @param {number} known @param {number} words
 */
export function isLowCoverage(known, words) {
  return known === 0 || known < MIN_KNOWN_FRACTION * words;
}

/**
 * A list of texts, checked: an array (not an array-like object) whose every element, holes
 * included, is a string (Python's "expected a list of texts").
 * @param {unknown} texts
 * @returns {asserts texts is string[]}
 */
export function checkTexts(texts) {
  if (typeof texts === "string") throw new InputError("expected a list of texts, got one string; wrap it in a list");
  if (!Array.isArray(texts)) throw new InputError(`expected a list of texts (an array of strings), got ${brief(texts)}`);
  for (let i = 0; i < texts.length; i++) {
    if (typeof texts[i] !== "string") throw new InputError(`text ${i} is ${brief(texts[i])}; expected a string`);
  }
}

/**
 * Classify one chunk of texts (Python's `classify_texts`): tokenized, sorted by length and run
 * through the sequence graph in padded batches of at most MAX_BATCH_TEXTS texts and
 * MAX_BATCH_TOKENS tokens (each row stops at its own length, so a batch gives each text's result
 * alone); results in input order. A text without words is an error for that text only; a text of
 * more than LONG_TEXT_CHARS characters is read in pieces with the state carried.
 * @param {import("./model.js").Model} model
 * @param {string[]} texts
 * @returns {Promise<{probabilities: Float32Array, words: number[], known: number[], errors: Map<number, string>}>}
 *   probabilities (N × C, zero rows for the texts that could not be read); known: of each text's
 *   words, how many are in the model's vocabulary (see isLowCoverage)
 */
export async function classifyTexts(model, texts) {
  const tok = textTokenizer(model);
  checkTexts(texts);
  const classes = model.classes, n = texts.length;
  const out = new Float32Array(n * classes);
  const words = new Array(n).fill(0);
  const known = new Array(n).fill(0);
  const unk = tok.input.unk_id;
  /** @type {Map<number, string>} */
  const errors = new Map();
  /** @type {number[][]} */
  const ids = new Array(n).fill(null).map(() => []);
  for (let i = 0; i < n; i++) {
    const text = texts[i];
    if (text.length > LONG_TEXT_CHARS && codePoints(text) > LONG_TEXT_CHARS) {
      try {
        const { probabilities, words: count, known: knownCount } = await longText(model, text);
        out.set(probabilities, i * classes);
        words[i] = count;
        known[i] = knownCount;
      } catch (err) {
        if (!(err instanceof InputError)) throw err;
        errors.set(i, EMPTY_TEXT);
      }
      continue;
    }
    const seq = tok.encode(text);
    if (seq.length) {
      ids[i] = seq;
      words[i] = seq.length;
      known[i] = seq.length - seq.filter((id) => id === unk).length;
    } else {
      errors.set(i, EMPTY_TEXT);
    }
  }
  const order = [...ids.keys()].filter((i) => ids[i].length).sort((a, b) => words[a] - words[b]); // stable, as sorted()
  let start = 0;
  while (start < order.length) {
    let end = start + 1;
    while (end < order.length && end - start < MAX_BATCH_TEXTS && words[order[end]] * (end - start + 1) <= MAX_BATCH_TOKENS) end++;
    const rows = order.slice(start, end);
    const width = words[rows[rows.length - 1]]; // sorted: the last row is the longest
    const x = new BigInt64Array(rows.length * width).fill(BigInt(tok.input.pad_id));
    const lengths = new BigInt64Array(rows.length);
    rows.forEach((i, r) => {
      const seq = ids[i];
      for (let t = 0; t < seq.length; t++) x[r * width + t] = BigInt(seq[t]);
      lengths[r] = BigInt(seq.length);
    });
    const { logits } = await model.runSequence(new ort.Tensor("int64", x, [rows.length, width]), null, lengths);
    const probs = answers(model.spec, model.lastStep(logits, rows.length, width, lengths));
    rows.forEach((i, r) => out.set(probs.subarray(r * classes, (r + 1) * classes), i * classes));
    start = end;
  }
  return { probabilities: out, words, known, errors };
}

/**
 * [start, end) of consecutive chunks of at most CHUNK_TEXTS texts or CHUNK_CHARS characters (a
 * longer text is a chunk of its own), as Python's `text_chunks`.
 * @param {string[]} texts
 * @returns {Generator<[number, number]>}
 */
export function* textChunks(texts) {
  let start = 0;
  while (start < texts.length) {
    let end = start, chars = 0;
    while (end < texts.length && end - start < CHUNK_TEXTS) {
      const size = codePoints(texts[end]);
      if (end > start && chars + size > CHUNK_CHARS) break;
      chars += size;
      end++;
    }
    yield [start, end];
    start = end;
  }
}

/**
 * Class probabilities of whole texts, each read whole (no truncation): `classifyTexts` on
 * consecutive chunks of the texts (Python's `predict_texts`: the same chunks and batches, so the
 * same numbers).
 * @param {import("./model.js").Model} model
 * @param {unknown} texts an array of strings
 * @returns {Promise<{data: Float32Array, dims: number[]}>} (N, C)
 */
export async function predictTexts(model, texts) {
  textTokenizer(model);
  checkTexts(texts);
  const classes = model.classes;
  const out = new Float32Array(texts.length * classes);
  for (const [start, end] of textChunks(texts)) {
    const got = await classifyTexts(model, texts.slice(start, end));
    if (got.errors.size) {
      throw new InputError(`text ${start + Math.min(...got.errors.keys())} is empty or has no words; expected at least one word`);
    }
    out.set(got.probabilities, start * classes);
  }
  return { data: out, dims: [texts.length, classes] };
}

/**
 * Probabilities and words of one long text read in pieces (LONG_TEXT_CHARS characters) through a TextStream.
 * @param {import("./model.js").Model} model @param {string} text
 */
async function longText(model, text) {
  const stream = new TextStream(model);
  // pieces of LONG_TEXT_CHARS code points (as Python's slices), found by walking the string:
  // no array of its characters (5 MB of text as one took 524 MB)
  for (let start = 0; start < text.length;) {
    let end = start;
    for (let count = 0; count < LONG_TEXT_CHARS && end < text.length; count++) {
      const c = text.charCodeAt(end);
      const pair = c >= 0xd800 && c < 0xdc00 && end + 1 < text.length
        && text.charCodeAt(end + 1) >= 0xdc00 && text.charCodeAt(end + 1) < 0xe000;
      end += pair ? 2 : 1;
    }
    await stream.feed(text.slice(start, end));
    start = end;
  }
  return { probabilities: await stream.finish(), words: stream.words, known: stream.knownWords };
}

/** Reads text as it arrives (words or chunks cut anywhere) and keeps the running result. */
export class TextStream {
  #busy = false;

  /** @param {import("./model.js").Model} model */
  constructor(model) {
    this.tokenizer = textTokenizer(model);
    this.stream = new Stream(model, 1);
    this.buffer = new WordBuffer(this.tokenizer.input.lowercase);
    this.labels = model.spec.output.names;
    this.knownWords = 0; // words read that are in the model's vocabulary
  }

  /** Words read so far. */
  get words() {
    return this.stream.steps;
  }

  /** The share of the words read that the model knows (1 before any word). */
  get coverage() {
    return this.words ? this.knownWords / this.words : 1;
  }

  /** True when the answer rests on too little the model knows (isLowCoverage). */
  get lowCoverage() {
    return isLowCoverage(this.knownWords, this.words);
  }

  /** Class probabilities after the latest word. @returns {Float32Array} */
  get probabilities() {
    if (this.stream.steps === 0) throw new InputError("the text is empty or has no words yet; expected at least one word");
    return this.stream.probabilities;
  }

  /** The running probability of one label. @param {string} [label] */
  probability(label = "positive") {
    const i = this.labels.indexOf(label);
    if (i < 0) throw new InputError(`unknown label ${brief(label)}; expected one of ${this.labels.join(", ")}`);
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
    const unk = this.tokenizer.input.unk_id;
    for (let i = 0; i < tokens.length; i += CHUNK_WORDS) {
      const ids = this.tokenizer.encodeWords(tokens.slice(i, i + CHUNK_WORDS));
      await this.stream.feed(Int32Array.from(ids));
      this.knownWords += ids.length - ids.filter((id) => id === unk).length;
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
      for (let i = 0; i < tokens.length; i++) {
        out.push([tokens[i], await this.stream.step(ids[i])]);
        if (ids[i] !== this.tokenizer.input.unk_id) this.knownWords++;
      }
      return out;
    });
  }

  /** Forget everything read. */
  reset() {
    if (this.#busy) throw new InputError("this text stream is in use by another call; await each call before the next");
    this.stream.reset();
    this.buffer = new WordBuffer(this.tokenizer.input.lowercase);
    this.knownWords = 0;
  }
}
