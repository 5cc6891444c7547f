// The paper under a digit: a port of edgeinfer/preprocess/background.py (`extract_ink`).
//
// A photo of a digit on paper is lit unevenly; the background is estimated locally from block
// medians: a median filter of them decides which way the ink goes, a morphological opening of
// them (minimum, then maximum, the grid's edges repeated first) is the paper under the ink, both
// interpolated bilinearly between block centres in float64 and rounded to float32 once. Every
// step is min, max, numpy's median, a float32 subtraction or that interpolation, in Python's
// order: the result is the same bits as Python's.

import { median32 } from "./image.js";

export const GRID_BLOCKS = 16; // blocks along the longer side, about
export const MIN_BLOCK_PX = 4; // a block's side is at least this
export const OPEN_RADIUS = 3; // blocks: the opening and the median filter reach this far
const MAD_TO_SIGMA = 1.4826;
const f32 = Math.fround;

/**
 * @typedef {object} Ink  An image's ink, bright on a flat dark background.
 * @property {Float32Array} pixels  width * height values in [0, 1], row-major; 0 is paper
 * @property {boolean} darkOnLight  the ink was darker than the paper (and has been inverted)
 * @property {number} noiseSigma  the paper grain's standard deviation (0 for a clean image)
 */

/**
 * A grayscale image in [0, 1] -> its ink, bright on a flat background (Python's `extract_ink`).
 * @param {Float32Array} img  row-major float32 values
 * @param {number} width
 * @param {number} height
 * @returns {Ink}
 */
export function extractInk(img, width, height) {
  const side = Math.max(MIN_BLOCK_PX, Math.ceil(Math.max(height, width) / GRID_BLOCKS));
  const rows = edges(height, side), cols = edges(width, side);
  const ay = axisWeights(height, rows), ax = axisWeights(width, cols);
  const gh = rows.length - 1, gw = cols.length - 1;

  const medians = blockMedians(img, width, rows, cols);
  const smooth = interpolate(medianFilter(medians, gh, gw, OPEN_RADIUS), gw, ay, ax);
  const n = width * height;
  const deviation = new Float32Array(n);
  let largest = 0;
  for (let i = 0; i < n; i++) {
    deviation[i] = f32(img[i] - smooth[i]);
    const a = Math.abs(deviation[i]);
    if (a > largest) largest = a;
  }
  const far = f32(0.5 * largest);
  let below = 0, above = 0;
  for (let i = 0; i < n; i++) {
    if (deviation[i] < -far) below++;
    else if (deviation[i] > far) above++;
  }
  const dark = below > above;

  let ink = img;
  let inkMedians = medians;
  if (dark) {
    ink = new Float32Array(n);
    for (let i = 0; i < n; i++) ink[i] = f32(1.0 - img[i]);
    inkMedians = blockMedians(ink, width, rows, cols);
  }
  const background = interpolate(opening(inkMedians, gh, gw, OPEN_RADIUS), gw, ay, ax);
  const residual = new Float32Array(n);
  for (let i = 0; i < n; i++) residual[i] = f32(ink[i] - background[i]);
  const centre = median32(residual);
  const spread = new Float32Array(n);
  for (let i = 0; i < n; i++) spread[i] = Math.abs(f32(residual[i] - centre));
  const mad = median32(spread);
  const pixels = new Float32Array(n);
  for (let i = 0; i < n; i++) pixels[i] = residual[i] < 0 ? 0 : residual[i] > 1 ? 1 : residual[i];
  return { pixels, darkOnLight: dark, noiseSigma: MAD_TO_SIGMA * mad };
}

/** @param {number} n @param {number} side @returns {number[]} */
function edges(n, side) {
  const out = [];
  for (let i = 0; i <= Math.ceil(n / side); i++) out.push(Math.min(i * side, n));
  return out;
}

/**
 * @param {Float32Array} img
 * @param {number} width
 * @param {number[]} rows
 * @param {number[]} cols
 * @returns {Float32Array}  (rows.length - 1) x (cols.length - 1)
 */
function blockMedians(img, width, rows, cols) {
  const gh = rows.length - 1, gw = cols.length - 1;
  const out = new Float32Array(gh * gw);
  for (let i = 0; i < gh; i++) {
    for (let j = 0; j < gw; j++) {
      const block = new Float32Array((rows[i + 1] - rows[i]) * (cols[j + 1] - cols[j]));
      let k = 0;
      for (let y = rows[i]; y < rows[i + 1]; y++) {
        for (let x = cols[j]; x < cols[j + 1]; x++) block[k++] = img[y * width + x];
      }
      out[i * gw + j] = median32(block);
    }
  }
  return out;
}

/**
 * The median over (2 radius + 1)^2 blocks around each block, the grid's edges repeated.
 * @param {Float32Array} grid @param {number} gh @param {number} gw @param {number} radius
 */
function medianFilter(grid, gh, gw, radius) {
  const out = new Float32Array(gh * gw);
  const values = new Float32Array((2 * radius + 1) ** 2);
  const clamp = (/** @type {number} */ v, /** @type {number} */ hi) => (v < 0 ? 0 : v > hi ? hi : v);
  for (let i = 0; i < gh; i++) {
    for (let j = 0; j < gw; j++) {
      let k = 0;
      for (let dy = -radius; dy <= radius; dy++) {
        for (let dx = -radius; dx <= radius; dx++) values[k++] = grid[clamp(i + dy, gh - 1) * gw + clamp(j + dx, gw - 1)];
      }
      out[i * gw + j] = median32(values);
    }
  }
  return out;
}

/**
 * Minimum then maximum over (2 radius + 1)^2 blocks on the grid extended by 2 radius repeated
 * edge blocks, cropped back (Python's `_opening`).
 * @param {Float32Array} grid @param {number} gh @param {number} gw @param {number} radius
 */
function opening(grid, gh, gw, radius) {
  const pad = 2 * radius, ph = gh + 2 * pad, pw = gw + 2 * pad;
  let padded = new Float32Array(ph * pw);
  for (let i = 0; i < ph; i++) {
    const si = Math.min(Math.max(i - pad, 0), gh - 1);
    for (let j = 0; j < pw; j++) padded[i * pw + j] = grid[si * gw + Math.min(Math.max(j - pad, 0), gw - 1)];
  }
  padded = extreme(extreme(padded, ph, pw, radius, Math.min), ph, pw, radius, Math.max);
  const out = new Float32Array(gh * gw);
  for (let i = 0; i < gh; i++) {
    for (let j = 0; j < gw; j++) out[i * gw + j] = padded[(i + pad) * pw + j + pad];
  }
  return out;
}

/**
 * `op` over a square, rows then columns, indices clamped at the edges.
 * @param {Float32Array} grid @param {number} h @param {number} w @param {number} radius
 * @param {(a: number, b: number) => number} op
 */
function extreme(grid, h, w, radius, op) {
  const along = new Float32Array(h * w);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      let v = grid[i * w + j];
      for (let d = 1; d <= radius; d++) v = op(op(v, grid[Math.min(i + d, h - 1) * w + j]), grid[Math.max(i - d, 0) * w + j]);
      along[i * w + j] = v;
    }
  }
  const out = new Float32Array(h * w);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      let v = along[i * w + j];
      for (let d = 1; d <= radius; d++) v = op(op(v, along[i * w + Math.min(j + d, w - 1)]), along[i * w + Math.max(j - d, 0)]);
      out[i * w + j] = v;
    }
  }
  return out;
}

/**
 * @typedef {{first: Int32Array, second: Int32Array, weight: Float64Array}} AxisWeights
 */

/**
 * For each pixel along an axis: the two block centres it lies between (or the two outer ones
 * beyond which it lies) and its weight towards the second (Python's `_axis_weights`).
 * @param {number} n @param {number[]} e @returns {AxisWeights}
 */
function axisWeights(n, e) {
  const centres = [];
  for (let i = 0; i < e.length - 1; i++) centres.push((e[i] + e[i + 1] - 1) / 2);
  const first = new Int32Array(n), second = new Int32Array(n), weight = new Float64Array(n);
  if (centres.length === 1) return { first, second, weight };
  let k = 0;
  for (let p = 0; p < n; p++) {
    while (k + 1 < centres.length - 1 && centres[k + 1] <= p) k++;
    first[p] = k;
    second[p] = k + 1;
    weight[p] = (p - centres[k]) / (centres[k + 1] - centres[k]);
  }
  return { first, second, weight };
}

/**
 * Block values -> one value per pixel, bilinear in float64, rounded to float32 once.
 * @param {Float32Array} grid  gh x gw
 * @param {number} gw
 * @param {AxisWeights} ay
 * @param {AxisWeights} ax
 */
function interpolate(grid, gw, ay, ax) {
  const h = ay.first.length, w = ax.first.length;
  const rows = new Float64Array(h * gw);
  for (let y = 0; y < h; y++) {
    const a = ay.first[y] * gw, b = ay.second[y] * gw, wy = ay.weight[y];
    for (let j = 0; j < gw; j++) rows[y * gw + j] = grid[a + j] * (1.0 - wy) + grid[b + j] * wy;
  }
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const wx = ax.weight[x];
      out[y * w + x] = rows[y * gw + ax.first[x]] * (1.0 - wx) + rows[y * gw + ax.second[x]] * wx;
    }
  }
  return out;
}
