// Typed errors, mirroring the Python runtime's (edgeinfer/errors.py). Every message is one line
// that names the problem and the fix; a bad file, a wrong task or a bad input raises one of these,
// never a raw TypeError or an onnxruntime error.

/** Base class of every error edgeinfer raises on purpose. */
export class EdgeInferError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

/** The model file is missing, not ONNX, truncated, or cannot be loaded. */
export class ModelFileError extends EdgeInferError {}

/** The ONNX file has no edgeinfer spec, or the spec is invalid or of a newer format. */
export class SpecError extends EdgeInferError {}

/** The model is for another task than the one requested. */
export class WrongTaskError extends EdgeInferError {}

/** A requested execution provider is not available. */
export class ProviderError extends EdgeInferError {}

/** Input data of the wrong shape, type or value. */
export class InputError extends EdgeInferError {}

/** An image that cannot be read or holds no digit. */
export class ImageError extends InputError {}

/**
 * A value described on one short line, for messages (like Python's `brief`).
 * @param {unknown} value
 * @param {number} [width]
 * @returns {string}
 */
export function brief(value, width = 60) {
  let text;
  if (ArrayBuffer.isView(value)) {
    text = `a ${value.constructor.name} of ${/** @type {any} */ (value).length ?? value.byteLength} elements`;
  } else if (typeof value === "string") {
    text = JSON.stringify(value);
  } else if (typeof value === "bigint") {
    text = `${value}n`;
  } else if (value === undefined || typeof value === "function" || typeof value === "symbol") {
    text = String(value);
  } else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  if (text.length > width) text = `${text.slice(0, width - 3)}...`;
  // escape control characters so a message stays one printable line
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
