// Image preprocessing for the digits task: a port of edgeinfer/preprocess/image.py
// (`load_digit` minus the file decoding; docs/format.md section 6 "Images").
//
// The input is RGBA pixels as a canvas gives them (ImageData). The result is the model input,
// normalised, equal to Python's within float32 rounding: every step that Python does in float32
// is done here in float32 (Math.fround), in the same order, and the parts of Pillow and numpy the
// recipe uses are ported from their C sources: Pillow's Lanczos resize of "F" (float32) images
// (Resample.c: precompute_coeffs, ImagingResampleHorizontal/Vertical_32bpc, ImagingResampleInner),
// Pillow's integer box reduce (Reduce.c) and its RGB -> L conversion (Convert.c), numpy's median
// and its pairwise summation, and Python's round (half to even).
//
// One choice the port has to make: a canvas turns every file into RGBA, while Python reads the
// file's own mode. A fully opaque image is read as Pillow's convert("L") reads L, RGB, P and JPEG
// files (integer ITU-R 601-2 luma, exact for grayscale); an image with any transparency as
// Python reads RGBA, LA and PA files (float32 luma, composited over the background the ink is
// not). Python reads a fully opaque RGBA *file* with the float32 luma instead: the same within
// float32 rounding for gray pixels, within half an 8-bit level for coloured ones. 16-bit files
// reach a canvas as 8 bits (Python keeps 16): within half an 8-bit level too.

import { extractInk } from "./background.js";
import { ImageError, SpecError, WrongTaskError } from "./errors.js";

export const MAX_PIXELS = 40_000_000; // larger images are refused (as Python, before decoding)
export const MAX_SIDE = 1024; // larger images are box-reduced by an integer factor first
export const INK_THRESHOLD = 0.2; // after the contrast stretch, ink is what lies above this
export const NOISE_K = 7.0; // ... and above this many of the paper's grain deviations
export const MIN_SEPARATION = 8.0; // ink fainter than this many grain deviations: unclear
export const MAX_INK_SHARE = 0.4; // "ink" over more of the image than this: unclear

const f32 = Math.fround;
const LUMA = [f32(0.299), f32(0.587), f32(0.114)];

/**
 * @typedef {object} ImageInputSpec  The `input` of an image model's spec (docs/format.md 2.1).
 * @property {string} [kind]  "image"
 * @property {number} rows
 * @property {number} cols
 * @property {number} scale  an 8-bit value times `scale` is in [0, 1]
 * @property {number} mean
 * @property {number} std
 * @property {number} fit_px  the digit's bounding box is scaled to fit fit_px x fit_px
 */

/**
 * @typedef {object} RGBAImage  Pixels as a canvas ImageData holds them.
 * @property {Uint8ClampedArray | Uint8Array | ArrayLike<number>} data  width * height * 4 bytes, RGBA, row by row
 * @property {number} width
 * @property {number} height
 */

/**
 * An image -> the digits model's input, as Python's `load_digit` makes it from the same pixels.
 *
 * @param {{input: ImageInputSpec}} spec  the model's spec (its `input` must be an image input)
 * @param {RGBAImage} image  RGBA pixels (e.g. a canvas ImageData)
 * @param {{name?: string}} [options]  `name` names the image in error messages (default "image")
 * @returns {{data: Float32Array, dims: [number, number], unclear: boolean}}  rows x cols, row-major; row r is
 *   step r; `unclear`: the image does not look like one digit on plain paper (an answer is a guess)
 * @throws {ImageError} bad sizes or pixel values, too many pixels, NaN, no digit
 * @throws {WrongTaskError} the model does not take images
 * @throws {SpecError} the spec's image input is invalid
 */
export function preprocessImage(spec, image, options = {}) {
  const input = imageInput(spec);
  const name = options.name ?? "image";
  const gray = toGray01(image, name);
  // read_gray: gray01 * float32(255 * scale)
  const factor = f32(255.0 * input.scale);
  const px = gray.data;
  for (let i = 0; i < px.length; i++) px[i] = f32(px[i] * factor);
  const got = digitFrame(gray, input, name);
  return { data: normalize(got.frame, input), dims: [input.rows, input.cols], unclear: got.unclear };
}

/**
 * The spec's image input, checked.
 * @param {{input: ImageInputSpec}} spec
 * @returns {ImageInputSpec}
 */
function imageInput(spec) {
  const input = spec?.input;
  if (!input || typeof input !== "object" || (input.kind !== undefined && input.kind !== "image")) {
    throw new WrongTaskError(`the model's input is ${input?.kind ? `"${input.kind}"` : "missing"}; `
      + "expected an image model (spec.input.kind \"image\")");
  }
  const isInt = (/** @type {unknown} */ v, lo = 1) => Number.isInteger(v) && /** @type {number} */ (v) >= lo;
  const bad = [];
  if (!isInt(input.rows)) bad.push("rows");
  if (!isInt(input.cols)) bad.push("cols");
  if (!isInt(input.fit_px) || input.fit_px > Math.min(input.rows, input.cols)) bad.push("fit_px");
  if (!(Number.isFinite(input.scale) && input.scale > 0)) bad.push("scale");
  if (!Number.isFinite(input.mean)) bad.push("mean");
  if (!(Number.isFinite(input.std) && input.std > 0)) bad.push("std");
  if (bad.length) {
    throw new SpecError(`the spec's image input has invalid ${bad.join(", ")}; expected rows, cols >= 1, `
      + "1 <= fit_px <= min(rows, cols), scale > 0, std > 0, finite mean");
  }
  return input;
}

/**
 * @typedef {object} GrayImage  A float32 grayscale image, row-major.
 * @property {Float32Array} data
 * @property {number} width
 * @property {number} height
 */

/**
 * RGBA pixels -> grayscale in [0, 1] (Python's `_decode` after decoding: the size limit, the
 * reduction of images over MAX_SIDE, `_to_gray01`, the finite check).
 * @param {RGBAImage} image
 * @param {string} [name]
 * @returns {GrayImage}
 */
export function toGray01(image, name = "image") {
  let { data, width, height } = checkedPixels(image, name);
  const factor = Math.ceil(Math.max(width, height) / MAX_SIDE);
  if (factor > 1) ({ data, width, height } = reduceRGBA(data, width, height, factor));
  const n = width * height;
  const gray = new Float32Array(n);
  let opaque = true;
  for (let i = 0; i < n; i++) {
    if (data[4 * i + 3] !== 255) { opaque = false; break; }
  }
  if (opaque) {
    // np.asarray(img.convert("L"), float32) / 255.0; convert: (19595 R + 38470 G + 7471 B + 0x8000) >> 16
    for (let i = 0; i < n; i++) {
      const l = (data[4 * i] * 19595 + data[4 * i + 1] * 38470 + data[4 * i + 2] * 7471 + 0x8000) >>> 16;
      gray[i] = f32(l / 255);
    }
    return { data: gray, width, height };
  }
  // rgba / 255.0 in float32; gray = rgba[..., :3] @ [0.299, 0.587, 0.114] in float32, which numpy
  // hands to OpenBLAS's sgemv: on x86-64 (its Haswell+ kernels) that is b*w2 + (r*w0 + g*w1) as
  // two fused multiply-adds. Other BLAS builds may round the last bit differently.
  const alpha = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = f32(data[4 * i] / 255), g = f32(data[4 * i + 1] / 255), b = f32(data[4 * i + 2] / 255);
    gray[i] = fmaf(b, LUMA[2], fmaf(r, LUMA[0], f32(g * LUMA[1])));
    alpha[i] = f32(data[4 * i + 3] / 255);
  }
  // the background is light (1.0) if the opaque pixels (alpha > 0.5) are dark on average
  const solid = [];
  for (let i = 0; i < n; i++) if (alpha[i] > 0.5) solid.push(gray[i]);
  const meanSolid = solid.length ? f32(pairwiseSum32(Float32Array.from(solid), 0, solid.length) / solid.length) : 1;
  const background = solid.length && meanSolid < 0.5 ? 1.0 : 0.0;
  for (let i = 0; i < n; i++) {
    gray[i] = f32(f32(gray[i] * alpha[i]) + f32(background * f32(1.0 - alpha[i])));
  }
  return { data: gray, width, height };
}

/**
 * The image's pixels, checked: positive integer sizes, width * height * 4 values, each an 8-bit value.
 * @param {RGBAImage} image
 * @param {string} name
 */
function checkedPixels(image, name) {
  if (!image || typeof image !== "object") {
    throw new ImageError(`${name}: expected {data, width, height} RGBA pixels (e.g. a canvas ImageData)`);
  }
  const { data, width, height } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ImageError(`${name}: invalid size ${String(width)}x${String(height)}; expected positive integer width and height`);
  }
  if (width * height > MAX_PIXELS) {
    throw new ImageError(`${name}: ${width}x${height} pixels is over the limit of ${MAX_PIXELS.toLocaleString("en-US")}; `
      + "resize the image first");
  }
  if (!data || typeof data.length !== "number") {
    throw new ImageError(`${name}: no pixel data; expected width * height * 4 RGBA values`);
  }
  if (data.length !== width * height * 4) {
    throw new ImageError(`${name}: ${data.length} pixel values for ${width}x${height} RGBA pixels; `
      + `expected ${width * height * 4} (width * height * 4)`);
  }
  if (data instanceof Uint8ClampedArray || data instanceof Uint8Array) return { data, width, height };
  const bytes = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new ImageError(`${name}: the image holds NaN or infinite pixel values; expected finite pixels`);
    }
    if (!Number.isInteger(v) || v < 0 || v > 255) {
      throw new ImageError(`${name}: pixel value ${v} at index ${i}; expected integers 0-255 (RGBA bytes)`);
    }
    bytes[i] = v;
  }
  return { data: bytes, width, height };
}

/**
 * Pillow's `reduce(factor)` of each 8-bit channel (Reduce.c): box means over factor x factor
 * blocks, the last row and column of blocks over what is left, rounded as Pillow rounds.
 * @param {ArrayLike<number>} data RGBA
 * @param {number} width
 * @param {number} height
 * @param {number} factor
 */
function reduceRGBA(data, width, height, factor) {
  const outW = Math.ceil(width / factor), outH = Math.ceil(height / factor);
  const out = new Uint8Array(outW * outH * 4);
  const sum = [0, 0, 0, 0];
  for (let y = 0; y < outH; y++) {
    const y0 = y * factor, y1 = Math.min(y0 + factor, height);
    for (let x = 0; x < outW; x++) {
      const x0 = x * factor, x1 = Math.min(x0 + factor, width);
      const count = (x1 - x0) * (y1 - y0);
      const multiplier = divisionUint32(count, 8);
      const amend = Math.floor(count / 2);
      sum[0] = sum[1] = sum[2] = sum[3] = amend;
      for (let yy = y0; yy < y1; yy++) {
        for (let xx = x0; xx < x1; xx++) {
          const p = 4 * (yy * width + xx);
          sum[0] += data[p]; sum[1] += data[p + 1]; sum[2] += data[p + 2]; sum[3] += data[p + 3];
        }
      }
      const q = 4 * (y * outW + x);
      for (let c = 0; c < 4; c++) {
        // UINT32 (ss * multiplier) >> 24; the product stays below 2^53, so it is exact here
        out[q + c] = Math.floor(((sum[c] >>> 0) * multiplier % 4294967296) / 16777216) & 255;
      }
    }
  }
  return { data: out, width: outW, height: outH };
}

/**
 * Reduce.c's division_UINT32: (UINT32)((float)2^32 / (float)((1 << bits) * divider)), in float.
 * @param {number} divider
 * @param {number} bits
 */
function divisionUint32(divider, bits) {
  const maxDividend = ((1 << bits) * divider) % 4294967296;
  return Math.trunc(f32(4294967296 / f32(maxDividend))) >>> 0;
}

/**
 * Python's `mnist_frame`: grayscale in [0, 1] -> a rows x cols frame in [0, 1], ink bright,
 * the digit scaled to fit fit_px and centred on its centre of mass.
 * @param {GrayImage} gray  float32 values (modified: inverted in place when the background is light)
 * @param {ImageInputSpec} spec
 * @param {string} [name]
 * @returns {Float32Array}
 */
export function mnistFrame(gray, spec, name = "image") {
  return digitFrame(gray, spec, name).frame;
}

/**
 * @typedef {object} DigitFrame  An image made ready for the digits model (Python's `DigitFrame`).
 * @property {Float32Array} frame  rows x cols in [0, 1], ink bright
 * @property {boolean} darkOnLight  the ink was darker than the paper
 * @property {number} contrast  the ink's brightest level above the paper
 * @property {number} separation  that contrast over the paper's grain (Infinity for a clean image)
 * @property {number} inkShare  the share of the image's pixels that are ink
 * @property {boolean} unclear  the image does not look like one digit on plain paper
 */

/**
 * Python's `digit_frame`: the frame and how clearly the image shows a digit.
 * @param {GrayImage} gray
 * @param {ImageInputSpec} spec
 * @param {string} [name]
 * @returns {DigitFrame}
 */
export function digitFrame(gray, spec, name = "image") {
  const { width: w, height: h } = gray;
  for (let i = 0; i < gray.data.length; i++) {
    if (!Number.isFinite(gray.data[i])) {
      throw new ImageError(`${name}: the image holds NaN or infinite pixel values; expected finite pixels`);
    }
  }
  const ink = extractInk(gray.data, w, h);
  const img = ink.pixels;
  const border = new Float32Array(2 * w + 2 * h);
  border.set(img.subarray(0, w), 0);
  border.set(img.subarray((h - 1) * w, h * w), w);
  for (let y = 0; y < h; y++) {
    border[2 * w + y] = img[y * w];
    border[2 * w + h + y] = img[y * w + w - 1];
  }
  const background = median32(border);
  let peak = -Infinity;
  for (let i = 0; i < img.length; i++) if (img[i] > peak) peak = img[i];
  if (peak - background < 0.1) {
    throw new ImageError(`${name}: no digit found (the image is blank or has no contrast)`);
  }
  const contrast = peak - background;
  const threshold = Math.max(INK_THRESHOLD, NOISE_K * ink.noiseSigma / contrast);
  const thr32 = f32(threshold), keep32 = f32(threshold * 0.5);
  const range = f32(contrast);
  let top = h, bottom = -1, left = w, right = -1, inked = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const v = clip01(f32(f32(img[i] - background) / range));
      img[i] = v;
      if (v > thr32) {
        inked++;
        if (y < top) top = y;
        if (y > bottom) bottom = y;
        if (x < left) left = x;
        if (x > right) right = x;
      }
    }
  }
  if (inked === 0) throw new ImageError(`${name}: no digit found (nothing stands out of the paper's grain)`);
  const inkShare = inked / (w * h);
  const separation = ink.noiseSigma > 0 ? contrast / ink.noiseSigma : Infinity;
  const unclear = separation < MIN_SEPARATION || inkShare > MAX_INK_SHARE;
  const cw = right - left + 1, ch = bottom - top + 1;
  const crop = new Float32Array(cw * ch);
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      const v = img[(top + y) * w + left + x];
      crop[y * cw + x] = v > keep32 ? v : 0;
    }
  }

  const scale = spec.fit_px / Math.max(ch, cw);
  const newW = Math.max(1, roundHalfEven(cw * scale)), newH = Math.max(1, roundHalfEven(ch * scale));
  const patch = resizeLanczos(crop, cw, ch, newW, newH);
  for (let i = 0; i < patch.length; i++) patch[i] = clip01(patch[i]);

  // centre of mass as numpy computes it: float32 sums, then float64 weighted sums
  const total = pairwiseSum32(patch, 0, patch.length);
  if (!(total > 0)) { // nothing left after the resize (Python would fail on a NaN centre of mass)
    throw new ImageError(`${name}: no digit found (the image is blank or has no contrast)`);
  }
  const rowSums = new Float64Array(newH);
  for (let y = 0; y < newH; y++) rowSums[y] = pairwiseSum32(patch, y * newW, newW) * y;
  const colSums = new Float64Array(newW);
  if (newW === 1) {
    colSums[0] = 0; // a single column: numpy sums it pairwise, like a row
  } else {
    const acc = patch.slice(0, newW);
    for (let y = 1; y < newH; y++) {
      for (let x = 0; x < newW; x++) acc[x] = f32(acc[x] + patch[y * newW + x]);
    }
    for (let x = 0; x < newW; x++) colSums[x] = acc[x] * x;
  }
  const cy = pairwiseSum64(rowSums, 0, newH) / total;
  const cx = newW === 1 ? 0 : pairwiseSum64(colSums, 0, newW) / total;
  const row0 = Math.min(Math.max(roundHalfEven((spec.rows - 1) / 2 - cy), 0), spec.rows - newH);
  const col0 = Math.min(Math.max(roundHalfEven((spec.cols - 1) / 2 - cx), 0), spec.cols - newW);
  const frame = new Float32Array(spec.rows * spec.cols);
  for (let y = 0; y < newH; y++) {
    frame.set(patch.subarray(y * newW, (y + 1) * newW), (row0 + y) * spec.cols + col0);
  }
  return { frame, darkOnLight: ink.darkOnLight, contrast, separation, inkShare, unclear };
}

/**
 * Python's `normalize`: (x - mean) / std in float32, mean and std taken as float32.
 * @param {Float32Array} pixels01
 * @param {ImageInputSpec} spec
 * @returns {Float32Array}
 */
export function normalize(pixels01, spec) {
  const mean = f32(spec.mean), std = f32(spec.std);
  const out = new Float32Array(pixels01.length);
  for (let i = 0; i < out.length; i++) out[i] = f32(pixels01[i] - mean) / std; // stored as float32
  return out;
}

const F32 = new Float32Array(1);
const I32 = new Int32Array(F32.buffer);

/**
 * C's fmaf: a * b + c rounded once to float32 (a, b, c float32 values).
 * @param {number} a
 * @param {number} b
 * @param {number} c
 */
export function fmaf(a, b, c) {
  const p = a * b; // exact: 24 + 24 bits fit a double
  const s = p + c;
  const r = f32(s);
  if (r === s || !Number.isFinite(s)) return r;
  // s is the double nearest p + c; its float32 rounding is that of p + c unless s lies exactly
  // halfway between two float32 values, where the rounding error of s decides
  const t = s - p;
  const err = (p - (s - t)) + (c - t);
  if (err === 0) return r;
  let other = (s > r ? 1 : -1) * 2 ** -149; // the float32 neighbour of r on the side of s
  if (r !== 0) {
    F32[0] = r;
    I32[0] += (s > r) === (r > 0) ? 1 : -1;
    other = F32[0];
  }
  if ((r + other) / 2 !== s) return r;
  return (err > 0) === (other > r) ? other : r;
}

/** @param {number} v */
function clip01(v) {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/**
 * Python's round(): to the nearest integer, halves to even.
 * @param {number} x
 */
export function roundHalfEven(x) {
  const floor = Math.floor(x);
  const frac = x - floor; // exact for doubles
  if (frac > 0.5) return floor + 1;
  if (frac < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * numpy's median of a float32 array: the middle value, or the float32 mean of the two middle ones.
 * @param {Float32Array} values
 */
export function median32(values) {
  const sorted = Float32Array.from(values).sort();
  const n = sorted.length;
  if (n % 2) return sorted[(n - 1) / 2];
  return f32(f32(sorted[n / 2 - 1] + sorted[n / 2]) / 2);
}

/**
 * numpy's pairwise summation (add.reduce over a contiguous run), float32 arithmetic.
 * @param {Float32Array} a
 * @param {number} start
 * @param {number} n
 * @returns {number}
 */
export function pairwiseSum32(a, start, n) {
  if (n < 8) {
    let res = -0.0;
    for (let i = 0; i < n; i++) res = f32(res + a[start + i]);
    return res;
  }
  if (n <= 128) {
    const r = [a[start], a[start + 1], a[start + 2], a[start + 3],
      a[start + 4], a[start + 5], a[start + 6], a[start + 7]];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] = f32(r[j] + a[start + i + j]);
    }
    let res = f32(f32(f32(r[0] + r[1]) + f32(r[2] + r[3])) + f32(f32(r[4] + r[5]) + f32(r[6] + r[7])));
    for (; i < n; i++) res = f32(res + a[start + i]);
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return f32(pairwiseSum32(a, start, n2) + pairwiseSum32(a, start + n2, n - n2));
}

/**
 * numpy's pairwise summation, float64 arithmetic.
 * @param {Float64Array} a
 * @param {number} start
 * @param {number} n
 * @returns {number}
 */
export function pairwiseSum64(a, start, n) {
  if (n < 8) {
    let res = -0.0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return res;
  }
  if (n <= 128) {
    const r = Array.from(a.subarray(start, start + 8));
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] += a[start + i + j];
    }
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum64(a, start, n2) + pairwiseSum64(a, start + n2, n - n2);
}

// ---- Pillow's resize(..., LANCZOS) of an "F" image (libImaging/Resample.c) ----

const LANCZOS_SUPPORT = 3.0;

/** @param {number} x */
function sinc(x) {
  if (x === 0.0) return 1.0;
  x = x * Math.PI;
  return Math.sin(x) / x;
}

/** @param {number} x */
function lanczos(x) {
  if (-3.0 <= x && x < 3.0) return sinc(x) * sinc(x / 3);
  return 0.0;
}

/**
 * precompute_coeffs: for each output pixel the first input pixel, the count, and the normalised
 * filter weights (the filter stretched by the downscale factor, support 3 times that).
 * @param {number} inSize
 * @param {number} in0  box start (a C float)
 * @param {number} in1  box end (a C float)
 * @param {number} outSize
 */
function precomputeCoeffs(inSize, in0, in1, outSize) {
  in0 = f32(in0);
  in1 = f32(in1);
  const scale = f32(in1 - in0) / outSize;
  const filterscale = scale < 1.0 ? 1.0 : scale;
  const support = LANCZOS_SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const kk = new Float64Array(outSize * ksize);
  const bounds = new Int32Array(outSize * 2);
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    let ww = 0.0;
    const ss = 1.0 / filterscale;
    let xmin = Math.trunc(center - support + 0.5); // C's (int) truncates
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const k = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      const w = lanczos((x + xmin - center + 0.5) * ss);
      kk[k + x] = w;
      ww += w;
    }
    if (ww !== 0.0) for (let x = 0; x < xmax; x++) kk[k + x] /= ww;
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/**
 * Pillow's `Image.fromarray(a, "F").resize((outW, outH), LANCZOS)` (Pillow 13's
 * ImagingResampleInner): two passes, float64 sums, float32 pixels between. The horizontal pass
 * runs first, over the rows the vertical pass reads, unless the height shrinks by more than
 * twice as many pixels as the width; then the vertical pass runs first (Pillow < 13 always ran
 * the horizontal one first: results differ by a float32 rounding at most).
 * @param {Float32Array} src  inW * inH, row-major
 * @param {number} inW
 * @param {number} inH
 * @param {number} outW
 * @param {number} outH
 * @returns {Float32Array}  outW * outH
 */
export function resizeLanczos(src, inW, inH, outW, outH) {
  const box = [0, 0, inW, inH];
  if (inW === outW && inH === outH) return src.slice(); // Image.resize returns a copy
  const needHorizontal = outW !== inW || box[0] !== 0 || box[2] !== outW;
  const needVertical = outH !== inH || box[1] !== 0 || box[3] !== outH;
  const horizontalFirst = !(inH - outH > 0 && inH - outH > (inW - outW) * 2);
  const vert = precomputeCoeffs(inH, box[1], box[3], outH);
  const hor = precomputeCoeffs(inW, box[0], box[2], outW);
  let img = { data: src, width: inW, height: inH };
  if (horizontalFirst) {
    if (needHorizontal) {
      const first = vert.bounds[0];
      const last = vert.bounds[outH * 2 - 2] + vert.bounds[outH * 2 - 1];
      for (let i = 0; i < outH; i++) vert.bounds[i * 2] -= first;
      img = horizontalPass(img, hor, first, last - first);
    }
    if (needVertical) img = verticalPass(img, vert, outH);
  } else {
    if (needVertical) img = verticalPass(img, vert, outH);
    if (needHorizontal) img = horizontalPass(img, hor, 0, outH);
  }
  return img.data === src ? src.slice() : img.data;
}

/**
 * ImagingResampleHorizontal_32bpc on an "F" image: rows offset .. offset + rows - 1.
 * @param {GrayImage} img
 * @param {{ksize: number, bounds: Int32Array, kk: Float64Array}} coeffs
 * @param {number} offset
 * @param {number} rows
 * @returns {GrayImage}
 */
function horizontalPass(img, { ksize, bounds, kk }, offset, rows) {
  const outW = bounds.length / 2;
  const out = new Float32Array(outW * rows);
  for (let yy = 0; yy < rows; yy++) {
    const line = (yy + offset) * img.width;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1], k = xx * ksize;
      let ss = 0.0;
      for (let x = 0; x < xmax; x++) ss += img.data[line + x + xmin] * kk[k + x];
      out[yy * outW + xx] = ss; // stored as float32
    }
  }
  return { data: out, width: outW, height: rows };
}

/**
 * ImagingResampleVertical_32bpc on an "F" image.
 * @param {GrayImage} img
 * @param {{ksize: number, bounds: Int32Array, kk: Float64Array}} coeffs
 * @param {number} outH
 * @returns {GrayImage}
 */
function verticalPass(img, { ksize, bounds, kk }, outH) {
  const w = img.width;
  const out = new Float32Array(w * outH);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1], k = yy * ksize;
    for (let xx = 0; xx < w; xx++) {
      let ss = 0.0;
      for (let y = 0; y < ymax; y++) ss += img.data[(y + ymin) * w + xx] * kk[k + y];
      out[yy * w + xx] = ss; // stored as float32
    }
  }
  return { data: out, width: w, height: outH };
}
