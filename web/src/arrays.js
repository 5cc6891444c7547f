// Array helpers shared by the model, streams and tasks: input checks and the softmax.

import { InputError, brief } from "./errors.js";

/**
 * A float32 tensor: row-major data and its dims.
 * @typedef {{data: Float32Array, dims: number[]}} Float32Tensor
 */

/**
 * Row-wise softmax over the last axis, computed in float64 and stored as float32.
 * @param {Float32Array} logits rows of `classes` values
 * @param {number} classes
 * @returns {Float32Array}
 */
export function softmax(logits, classes) {
  const out = new Float32Array(logits.length);
  const e = new Float64Array(classes);
  for (let r = 0; r < logits.length; r += classes) {
    let top = -Infinity;
    for (let c = 0; c < classes; c++) top = Math.max(top, logits[r + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += (e[c] = Math.exp(logits[r + c] - top));
    for (let c = 0; c < classes; c++) out[r + c] = e[c] / sum;
  }
  return out;
}

/** A shape as Python prints a tuple: (2, 3), (5,), (). @param {ArrayLike<number>} dims */
export function pyShape(dims) {
  const list = Array.from(dims);
  return list.length === 1 ? `(${list[0]},)` : `(${list.join(", ")})`;
}

/** @param {unknown} x @returns {x is ArrayLike<unknown>} */
function isList(x) {
  return Array.isArray(x) || (ArrayBuffer.isView(x) && !(x instanceof DataView));
}

/**
 * Numbers as a Float32Array (a Float32Array is used as it is), checked to be finite.
 * @param {unknown} data
 * @returns {Float32Array}
 */
export function floatValues(data) {
  let arr;
  if (data instanceof Float32Array) {
    arr = data;
  } else if (isList(data) && !(data instanceof BigInt64Array || data instanceof BigUint64Array)
    && Array.from(/** @type {ArrayLike<unknown>} */ (data)).every((v) => typeof v === "number")) {
    arr = Float32Array.from(/** @type {ArrayLike<number>} */ (data));
  } else {
    throw new InputError(`expected numbers (a Float32Array), got ${brief(data)}`);
  }
  checkFinite(arr);
  return arr;
}

/**
 * True when every value is finite: a sum of float32 values in doubles is finite exactly when each
 * term is (it cannot overflow), one pass with no branch per value.
 * @param {Float32Array} arr
 */
export function allFinite(arr) {
  let sum = 0;
  for (let i = 0; i < arr.length; i++) sum += arr[i];
  return Number.isFinite(sum);
}

/** InputError unless every value is finite. @param {Float32Array} arr */
export function checkFinite(arr) {
  for (let i = 0; i < arr.length; i++) {
    if (!Number.isFinite(arr[i])) throw new InputError("input holds NaN or infinite values; expected finite numbers");
  }
}

/**
 * Dims checked to be whole numbers >= 0.
 * @param {unknown} dims
 * @returns {number[]}
 */
export function checkDims(dims) {
  if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new InputError(`dims must be a list of whole numbers >= 0, got ${brief(dims)}`);
  }
  return dims;
}

/**
 * A tensor-like input {data, dims} with data of the right size.
 * @param {unknown} x
 * @param {(data: unknown) => ArrayLike<unknown>} values turns data into checked values
 * @returns {{data: any, dims: number[]}}
 */
export function tensorInput(x, values) {
  if (x === null || typeof x !== "object" || !("data" in x) || !("dims" in x)) {
    throw new InputError(`expected a tensor {data, dims}, got ${brief(x)}`);
  }
  const dims = checkDims(/** @type {any} */ (x).dims);
  const data = values(/** @type {any} */ (x).data);
  const size = dims.reduce((a, d) => a * d, 1);
  if (data.length !== size) {
    throw new InputError(`input data holds ${data.length} values but dims ${pyShape(dims)} need ${size}`);
  }
  return { data, dims };
}

/**
 * Token ids as a BigInt64Array, checked: integers, each 0 <= id < vocab.
 * @param {unknown} x numbers, bigints, an integer typed array or a BigInt64Array
 * @param {number} vocab
 * @returns {BigInt64Array}
 */
export function tokenIds(x, vocab) {
  if (!isList(x) || x instanceof Float32Array || x instanceof Float64Array) {
    throw new InputError(`stream input must be token ids (integers), got ${brief(x)}`);
  }
  const list = /** @type {ArrayLike<unknown>} */ (x);
  const out = new BigInt64Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    let id;
    if (typeof v === "bigint") id = v;
    else if (typeof v === "number" && Number.isInteger(v)) id = BigInt(v);
    else throw new InputError(`stream input must be token ids (integers), got ${brief(v)}`);
    if (id < 0n || id >= BigInt(vocab)) throw new InputError(`token id out of range; expected 0 <= id < ${vocab}`);
    out[i] = id;
  }
  return out;
}
