// A strict JSON reader that keeps what JavaScript's JSON.parse loses: whether a number was written
// as an integer (`1`) or a float (`1.0`, `1e3`). Python's json module, which the Python runtime
// uses, gives int and float for these, and the spec's integer fields refuse floats; so must we.
// It reads exactly what Python's json.loads reads (NaN, Infinity and -Infinity included, handed
// to `constant`), refuses control characters inside strings, and bounds the nesting depth.

/** A number written with a fraction or an exponent (Python's float). */
export class PyFloat {
  /** @param {number} value */
  constructor(value) {
    this.value = value;
  }
}

/** Why a text is not JSON (the message names the problem and where, like Python's). */
export class JsonSyntaxError extends Error {}

/** The text nests arrays and objects deeper than allowed. */
export class JsonDepthError extends Error {}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const ESCAPES = { 0x22: '"', 0x5c: "\\", 0x2f: "/", 0x62: "\b", 0x66: "\f", 0x6e: "\n", 0x72: "\r", 0x74: "\t" };
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;

/**
 * Parse JSON text. Float literals become PyFloat objects (see `plain` to drop them).
 * @param {string} text
 * @param {{maxDepth?: number, constant?: (name: string) => unknown}} [options]
 * @returns {unknown}
 */
export function parseJson(text, options = {}) {
  const maxDepth = options.maxDepth ?? 1000;
  const constant = options.constant ?? ((name) => new PyFloat(name === "NaN" ? NaN : name === "Infinity" ? Infinity : -Infinity));
  let pos = 0;

  /** @param {string} msg @param {number} [at] @returns {never} */
  const fail = (msg, at = pos) => {
    throw new JsonSyntaxError(`${msg}: char ${at}`);
  };
  const skip = () => {
    while (pos < text.length && WS.has(text.charCodeAt(pos))) pos++;
  };

  /** @returns {string} */
  const string = () => {
    const start = pos; // at the opening quote
    pos++;
    let out = "";
    for (;;) {
      let run = pos;
      while (run < text.length) {
        const c = text.charCodeAt(run);
        if (c === 0x22 || c === 0x5c || c < 0x20) break;
        run++;
      }
      out += text.slice(pos, run);
      pos = run;
      if (pos >= text.length) fail("Unterminated string starting at", start);
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        pos++;
        return out;
      }
      if (c < 0x20) fail("Invalid control character at");
      // a backslash escape
      const e = text.charCodeAt(pos + 1);
      if (e === 0x75) {
        const hex = text.slice(pos + 2, pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("Invalid \\uXXXX escape", pos + 1);
        out += String.fromCharCode(parseInt(hex, 16));
        pos += 6;
      } else if (e in ESCAPES) {
        out += ESCAPES[/** @type {keyof typeof ESCAPES} */ (e)];
        pos += 2;
      } else {
        fail("Invalid \\escape", pos);
      }
    }
  };

  /** @param {number} depth @returns {unknown} */
  const value = (depth) => {
    skip();
    if (pos >= text.length) fail("Expecting value");
    const c = text[pos];
    if (c === "{" || c === "[") {
      if (depth >= maxDepth) throw new JsonDepthError(`nested deeper than ${maxDepth} levels`);
      pos++;
      return c === "{" ? object(depth + 1) : array(depth + 1);
    }
    if (c === '"') return string();
    if (text.startsWith("true", pos)) return (pos += 4), true;
    if (text.startsWith("false", pos)) return (pos += 5), false;
    if (text.startsWith("null", pos)) return (pos += 4), null;
    for (const name of ["NaN", "Infinity", "-Infinity"]) {
      if (text.startsWith(name, pos)) {
        pos += name.length;
        return constant(name);
      }
    }
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text);
    if (!m) fail("Expecting value");
    pos += m[0].length;
    const number = Number(m[0]);
    return m[1] !== undefined || m[2] !== undefined ? new PyFloat(number) : number + 0; // Python's ints have no -0
  };

  /** @param {number} depth */
  const object = (depth) => {
    /** @type {Record<string, unknown>} */
    const out = {};
    skip();
    if (text[pos] === "}") return pos++, out;
    for (;;) {
      skip();
      if (text[pos] !== '"') fail("Expecting property name enclosed in double quotes");
      const key = string();
      skip();
      if (text[pos] !== ":") fail("Expecting ':' delimiter");
      pos++;
      const v = value(depth);
      // defineProperty: a key "__proto__" is a plain key, as in JSON.parse
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      skip();
      if (text[pos] === "}") return pos++, out;
      if (text[pos] !== ",") fail("Expecting ',' delimiter");
      pos++;
    }
  };

  /** @param {number} depth */
  const array = (depth) => {
    /** @type {unknown[]} */
    const out = [];
    skip();
    if (text[pos] === "]") return pos++, out;
    for (;;) {
      out.push(value(depth));
      skip();
      if (text[pos] === "]") return pos++, out;
      if (text[pos] !== ",") fail("Expecting ',' delimiter");
      pos++;
    }
  };

  const result = value(0);
  skip();
  if (pos !== text.length) fail("Extra data");
  return result;
}

/**
 * A parsed value with every PyFloat replaced by its number: plain JSON data.
 * @param {unknown} value
 * @returns {any}
 */
export function plain(value) {
  if (value instanceof PyFloat) return value.value;
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    /** @type {Record<string, unknown>} */
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, k, { value: plain(v), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}
