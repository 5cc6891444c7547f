// Text preprocessing (src/text.js): the same words and ids as Python's edgeinfer.preprocess.text,
// checked on every IMDB test review and the Tiny Shakespeare validation text, and Unicode class
// by class against Python's tables.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { CharTokenizer, InputError, Tokenizer, WordBuffer, WrongTaskError, charIds, parseSpec, tokenize, words } from "../src/index.js";
import { readMetadata } from "../src/fileformat.js";
import { NEED_REFS, REFS, modelBytes, refArray, refBytes, refs } from "./helpers.js";

/** @param {string} name */
const spec = (name) => parseSpec(/** @type {string} */ (readMetadata(modelBytes(name), name).get("edgeinfer.spec")));
const SENTIMENT = spec("sentiment");
const CHARACTERS = spec("characters");

test("words: breaks, case, apostrophes, ! and ?, everything else separates", () => {
  assert.deepEqual(words("I don't think it's BAD<br />at all!!! Great…"),
    ["i", "don't", "think", "it's", "bad", "at", "all", "!", "!", "!", "great"]);
  assert.deepEqual(words("Don’t ‘quote’ me", false), ["Don't", "quote", "me"]);
  assert.deepEqual(words("a<BR>b<br/>c<bR  \t/>d<br\u3000>e<br\x1c>f"), ["a", "b", "c", "d", "e", "f"]);
  assert.deepEqual(words("x<br\ufeff>y"), ["x", "br", "y"]); // U+FEFF is not a space in Python
  assert.deepEqual(words("snake_case 42nd 3.14 naïve Σίσυφος ½ ٣ 𝔘𝔫𝔦"), ["snake", "case", "42nd", "3", "14", "naïve", "σίσυφος", "½", "٣", "𝔘𝔫𝔦"]);
  assert.deepEqual(words("rock'n'roll '90s o''clock"), ["rock'n", "roll", "90s", "o", "clock"]);
  assert.deepEqual(words("e\u0301 ok"), ["e", "ok"]); // combining marks are not word characters in Python
  assert.deepEqual(words(""), []);
  assert.throws(() => words(/** @type {any} */ (3)), InputError);
});

test("ids: the vocabulary takes every id but pad and unk, in order", () => {
  const ids = tokenize(SENTIMENT, "the movie xyzzyq !");
  assert.deepEqual(ids, [2, SENTIMENT.input.vocab.indexOf("movie") + 2, 1, SENTIMENT.input.vocab.indexOf("!") + 2]);
  const tok = new Tokenizer(SENTIMENT);
  assert.deepEqual(tok.encodeWords(["the", "nope-not-a-word"]), [2, 1]);
  assert.throws(() => tokenize(CHARACTERS, "x"), (err) => err instanceof WrongTaskError && /reads chars; expected a model that reads words/.test(err.message));
  assert.throws(() => charIds(SENTIMENT, "x"), WrongTaskError);
  const chars = new CharTokenizer(CHARACTERS);
  const text = "Hi 𝔘!\n";
  assert.equal(charIds(CHARACTERS, text).length, [...text].length); // per code point, not per UTF-16 unit
  assert.equal(charIds(CHARACTERS, "𝔘")[0], CHARACTERS.input.unk_id);
  assert.deepEqual(chars.unknown("a𝔘é€a"), ["é", "€", "𝔘"]);
  assert.equal(chars.chars[CHARACTERS.input.unk_id], "\ufffd");
  assert.equal(chars.chars.map((c, i) => (c === "" ? -1 : i)).filter((i) => i >= 0).length, CHARACTERS.input.vocab.length + 1);
});

test("a word buffer reads a word cut between chunks once", () => {
  const text = "Don't stop<br />believing!! It’s 1,000 times bet<BR/>ter… naïve 𝔘𝔫𝔦 end";
  const whole = words(text);
  for (let size = 1; size <= 12; size++) {
    const buf = new WordBuffer();
    const got = [];
    for (let i = 0; i < text.length; i += size) got.push(...buf.push(text.slice(i, i + size)));
    got.push(...buf.flush());
    assert.deepEqual(got, whole, `chunks of ${size}`);
  }
  const long = new WordBuffer();
  assert.deepEqual(long.push("a".repeat(1001)), ["a".repeat(1001)]); // longer than MAX_PENDING: released as it is
  assert.equal(long.pending, "");
  const tag = new WordBuffer();
  assert.deepEqual(tag.push("good <br"), ["good"]);
  assert.deepEqual(tag.push(" />bad"), []);
  assert.deepEqual(tag.flush(), ["bad"]);
});

test("token ids of all 25,000 IMDB test reviews equal Python's", NEED_REFS, () => {
  const imdb = refs().imdb;
  const blob = refBytes(imdb.texts.utf8);
  const textOffsets = refArray(imdb.texts.offsets);
  const ids = refArray(imdb.ids.values);
  const idOffsets = refArray(imdb.ids.offsets);
  const tok = new Tokenizer(SENTIMENT);
  const decoder = new TextDecoder();
  assert.equal(imdb.count, 25000);
  let total = 0;
  for (let i = 0; i < imdb.count; i++) {
    const text = decoder.decode(blob.subarray(textOffsets[i], textOffsets[i + 1]));
    const got = tok.encode(text);
    const want = ids.subarray(idOffsets[i], idOffsets[i + 1]);
    if (got.length !== want.length || got.some((v, k) => v !== want[k])) {
      assert.deepEqual(tok.words(text), i < imdb.words.length ? imdb.words[i] : tok.words(text), `review ${i}`);
      assert.deepEqual(got, [...want], `review ${i}: ${text.slice(0, 80)}`);
    }
    if (i < imdb.words.length) assert.deepEqual(tok.words(text), imdb.words[i], `words of review ${i}`);
    total += got.length;
  }
  assert.equal(total, ids.length);
});

test("character ids of the Tiny Shakespeare validation text equal Python's", NEED_REFS, () => {
  const ref = refs().shakespeare;
  const text = readFileSync(join(REFS, ref.text), "utf8");
  assert.equal([...text].length, ref.chars);
  assert.deepEqual(Int32Array.from(charIds(CHARACTERS, text)), refArray(ref.ids));
});

test("Unicode: [^\\W_] and lower-casing agree with Python on every code point it assigns", NEED_REFS, () => {
  const u = refs().unicode;
  const alnum = refBytes(u.alnum), assigned = refBytes(u.assigned);
  const lower = JSON.parse(readFileSync(join(REFS, u.lower), "utf8"));
  const bit = (/** @type {Uint8Array} */ bits, /** @type {number} */ cp) => (bits[cp >> 3] >> (cp & 7)) & 1;
  const differ = [];
  let checked = 0;
  for (let cp = 0; cp < 0x110000; cp++) {
    if (!bit(assigned, cp) || (cp >= 0xd800 && cp < 0xe000)) continue;
    checked++;
    const c = String.fromCodePoint(cp);
    const word = words(`${c}${c}`, false).join("") === `${c}${c}` && c !== "!" && c !== "?";
    if (word !== Boolean(bit(alnum, cp))) differ.push(`U+${cp.toString(16)} word`);
    if (c.toLowerCase() !== (lower[cp] ?? c)) differ.push(`U+${cp.toString(16)} lower`);
  }
  assert.ok(checked > 140000, `${checked} code points checked (Python's Unicode ${u.version})`);
  assert.deepEqual(differ.slice(0, 20), []);
});
