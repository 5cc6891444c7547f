// Text preprocessing (docs/format.md section 6), identical to the Python runtime's
// edgeinfer/preprocess/text.py: the same words and the same ids for every text.
//
// Python's `[^\W_]` (a Unicode word character other than `_`) is exactly the letters and numbers,
// [\p{L}\p{N}]: Python's \w is str.isalnum() plus `_`, and isalnum() holds for the categories L*
// and N* (marks are not word characters in Python). JavaScript's lower-casing and these classes
// follow the Unicode version of the engine; on every code point assigned in Python's Unicode
// version they agree with Python (tests/web checks all of them), newer code points aside.

import { InputError } from "./errors.js";
import { requireInput, tokenIds } from "./spec.js";

// Python's \s in a str pattern: str.isspace() characters (JavaScript's \s differs: \x1c-\x1f, \x85, \ufeff)
const PY_SPACE = "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const BREAK_RE = new RegExp(`<br[${PY_SPACE}]*/?>`, "giu");
const TOKEN_RE = /[\p{L}\p{N}]+(?:'[\p{L}\p{N}]+)?|[!?]/gu;
const ALNUM = /^[\p{L}\p{N}]$/u;
const QUOTES = /[\u2018\u2019]/g;

/**
 * Split text into the tokenizer's words (Python's `words`).
 * @param {string} text
 * @param {boolean} [lowercase]
 * @returns {string[]}
 */
export function words(text, lowercase = true) {
  if (typeof text !== "string") throw new InputError(`expected text (a string), got ${text === null ? "null" : typeof text}`);
  let t = text.replace(BREAK_RE, " ");
  if (lowercase) t = t.toLowerCase();
  return t.replace(QUOTES, "'").match(TOKEN_RE) ?? [];
}

/** @type {WeakMap<object, Map<string, number>>} */
const VOCABS = new WeakMap();

/**
 * Map a spec's token input to ids: the vocabulary takes every id but pad_id and unk_id, in order.
 * @param {import("./spec.js").TextInput | import("./spec.js").CharInput} input
 */
function vocabIds(input) {
  let ids = VOCABS.get(input);
  if (!ids) {
    const order = tokenIds(input);
    ids = new Map(input.vocab.map((w, i) => [w, order[i]]));
    if (Object.isFrozen(input)) VOCABS.set(input, ids); // a parsed spec never changes
  }
  return ids;
}

/** Maps words to ids with the vocabulary a words model's spec carries (Python's `Tokenizer`). */
export class Tokenizer {
  /** @param {import("./spec.js").ModelSpec} spec a words (sentiment) model's spec */
  constructor(spec) {
    this.input = /** @type {import("./spec.js").TextInput} */ (requireInput(spec, "words"));
    this.ids = vocabIds(this.input);
  }

  /** Split text into words by the spec's rules. @param {string} text */
  words(text) {
    return words(text, this.input.lowercase);
  }

  /** Token ids of a text. @param {string} text @returns {number[]} */
  encode(text) {
    return this.encodeWords(this.words(text));
  }

  /** Token ids of already split words. @param {string[]} tokens @returns {number[]} */
  encodeWords(tokens) {
    const unk = this.input.unk_id;
    return tokens.map((w) => this.ids.get(w) ?? unk);
  }
}

/**
 * Word ids of a text for a words model (the spec decides case and the vocabulary).
 * @param {import("./spec.js").ModelSpec} spec
 * @param {string} text
 * @returns {number[]}
 */
export function tokenize(spec, text) {
  return new Tokenizer(spec).encode(text);
}

/** Maps characters to ids with the vocabulary a characters model's spec carries (Python's `CharTokenizer`). */
export class CharTokenizer {
  /** @param {import("./spec.js").ModelSpec} spec a characters model's spec */
  constructor(spec) {
    this.input = /** @type {import("./spec.js").CharInput} */ (requireInput(spec, "chars"));
    this.ids = vocabIds(this.input);
    /** id -> text: padding prints as nothing, unknown as U+FFFD */
    const chars = new Array(this.input.vocab.length + 2).fill("");
    chars[this.input.unk_id] = "\ufffd";
    for (const [c, i] of this.ids) chars[i] = c;
    /** @type {readonly string[]} */
    this.chars = Object.freeze(chars);
  }

  /** Ids of each character (Unicode code point); those outside the vocabulary get unk_id. @param {string} text */
  encode(text) {
    if (typeof text !== "string") throw new InputError(`expected text (a string), got ${typeof text}`);
    const unk = this.input.unk_id;
    /** @type {number[]} */
    const out = [];
    for (const c of text) out.push(this.ids.get(c) ?? unk);
    return out;
  }

  /** The distinct characters of `text` outside the vocabulary, sorted. @param {string} text */
  unknown(text) {
    const points = (/** @type {string} */ c) => /** @type {number} */ (c.codePointAt(0));
    return [...new Set([...text].filter((c) => !this.ids.has(c)))].sort((a, b) => points(a) - points(b));
  }
}

/**
 * Character ids of a text for a characters model: one per Unicode code point (not per UTF-16 unit).
 * @param {import("./spec.js").ModelSpec} spec
 * @param {string} text
 * @returns {number[]}
 */
export function charIds(spec, text) {
  return new CharTokenizer(spec).encode(text);
}

/**
 * Splits text arriving in arbitrary chunks into whole words (Python's `WordBuffer`): a word is
 * released once a separator follows it, so a word cut across two chunks is read once; `flush()`
 * releases the last pending word at the end of the text.
 */
export class WordBuffer {
  static MAX_PENDING = 1000; // a "word" longer than this (code points) is released as it is

  /** @param {boolean} [lowercase] */
  constructor(lowercase = true) {
    this.pending = "";
    this.lowercase = lowercase;
  }

  /** Words completed by this chunk. @param {string} chunk @returns {string[]} */
  push(chunk) {
    if (typeof chunk !== "string") throw new InputError(`expected text (a string), got ${typeof chunk}`);
    const text = this.pending + chunk;
    let cut = text.length;
    const last = text.charCodeAt(cut - 1);
    if (last >= 0xd800 && last < 0xdc00) cut--; // half of a character cut in two (a UTF-16 surrogate pair): wait for the rest
    while (cut > 0) {
      // step back one code point (a surrogate pair is one character, as in Python)
      let at = cut - 1;
      const low = text.charCodeAt(at);
      if (low >= 0xdc00 && low < 0xe000 && at > 0) {
        const high = text.charCodeAt(at - 1);
        if (high >= 0xd800 && high < 0xdc00) at--;
      }
      const c = text.slice(at, cut);
      if (!(ALNUM.test(c) || c === "'" || c === "\u2019")) break;
      cut = at;
    }
    const tag = text.lastIndexOf("<");
    if (tag >= 0 && !text.slice(tag).includes(">") && countPoints(text, tag) <= 6) {
      cut = Math.min(cut, tag); // a `<br />` tag cut in two: wait for its end
    }
    if (countPoints(text, cut) > WordBuffer.MAX_PENDING) cut = text.length;
    this.pending = text.slice(cut);
    return words(text.slice(0, cut), this.lowercase);
  }

  /** The words still pending. @returns {string[]} */
  flush() {
    const text = this.pending;
    this.pending = "";
    return words(text, this.lowercase);
  }
}

/** Code points in text from `from` to its end. @param {string} text @param {number} from */
function countPoints(text, from) {
  let n = 0;
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) i++;
    }
    n++;
  }
  return n;
}

