// A loaded model: the file's bytes read and validated, its spec, its fingerprint and its graphs'
// onnxruntime sessions (the sequence graph's created at load, the step graph's at first use),
// shared by every stream. It holds no stream state. A port of edgeinfer/core.py and model.py.

import { floatValues, pyShape, tensorInput, tokenIds } from "./arrays.js";
import { InputError, ModelFileError, WrongTaskError, brief } from "./errors.js";
import { parseModelFile } from "./fileformat.js";
import { checkRuntimeOptions, createGraph, ort, resolveBackend } from "./runtime.js";
import { answersFrom } from "./answers.js";
import { dequantizeGraph } from "./dequantize.js";
import { preprocessImage } from "./image.js";
import { checkTexts, classifyTexts, isLowCoverage, predictTexts, textChunks, TextStream } from "./sentiment.js";
import { sha256Hex } from "./sha256.js";
import {
  SELF_LOCATION, answers, initialState, normalizeFeatures, perStep, pyRepr, readsTokens, requireInput, vocabSize,
} from "./spec.js";
import { Stream } from "./stream.js";

/** The largest model file there can be: protobuf caps a message, so an ONNX file without
 * external data (which edgeinfer refuses), at 2 GiB. Longer reads are cut off. */
export const MAX_MODEL_BYTES = 2 ** 31;
/** A download (fetch) not finished within this many ms is cut off (option `timeoutMs`). */
export const LOAD_TIMEOUT_MS = 120_000;

/**
 * @typedef {import("./runtime.js").RuntimeOptions & {name?: string, sha256?: string, timeoutMs?: number,
 *   dequantize?: boolean}} LoadOptions
 * backend: "auto" (default: onnxruntime-node in Node when it is installed, else onnxruntime-web's
 * wasm), "node" or "wasm"; executionProviders: the backend's providers (default ["cpu"] on "node",
 * ["wasm"] on "wasm"); numThreads: threads per run (default 1; on "wasm" process-wide and fixed by
 * the first load); dequantize: run onnxruntime's int8 operators as standard fp32 ones over the
 * file's int8 weights, dequantized once at load (default: true on "wasm", whose int8 kernels are the
 * slower there; false on "node"; the file and its download are unchanged); name: how messages name the model
 * (default: the URL or path, or "model bytes"); sha256: the file's expected sha256 (hex): any
 * other file is refused; timeoutMs: how long a download may take (default LOAD_TIMEOUT_MS).
 */

/**
 * Load a model file: from a URL (fetch), a file path or file: URL (Node), or the file's bytes.
 * The file is validated (container, spec, checksums, external-data references) and the sequence
 * graph's session created, so a bad file or an unavailable provider fails here.
 * @param {string | URL | Uint8Array | ArrayBuffer} source
 * @param {LoadOptions} [options]
 * @returns {Promise<Model>}
 */
export async function load(source, options = {}) {
  if (options === null || typeof options !== "object") throw new InputError("load options must be an object");
  checkRuntimeOptions(options);
  if (options.dequantize !== undefined && typeof options.dequantize !== "boolean") {
    throw new InputError(`dequantize must be true or false, got ${brief(options.dequantize)}`);
  }
  const expected = options.sha256;
  if (expected !== undefined && !(typeof expected === "string" && /^[0-9a-fA-F]{64}$/.test(expected))) {
    throw new InputError(`sha256 must be 64 hexadecimal digits, got ${brief(expected)}`);
  }
  const timeoutMs = options.timeoutMs ?? LOAD_TIMEOUT_MS;
  if (typeof timeoutMs !== "number" || !(timeoutMs > 0 && timeoutMs <= 2 ** 31 - 1)) {
    throw new InputError(`timeoutMs must be a number of milliseconds > 0, got ${brief(timeoutMs)}`);
  }
  const { bytes, name } = await readSource(source, options.name, timeoutMs);
  const digest = await sha256Hex(bytes);
  if (expected !== undefined && digest !== expected.toLowerCase()) {
    throw new ModelFileError(`${name}: sha256 ${digest} is not the expected ${expected.toLowerCase()}; `
      + "this is not the file asked for (a changed or damaged download)");
  }
  const file = await parseModelFile(bytes, name);
  const backend = await resolveBackend(options);
  const model = new Model(file, digest, options, backend);
  await model.graph("sequence");
  return model;
}

/**
 * @param {unknown} source
 * @param {string | undefined} name
 * @param {number} timeoutMs
 * @returns {Promise<{bytes: Uint8Array, name: string}>}
 */
async function readSource(source, name, timeoutMs) {
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
    const view = source instanceof ArrayBuffer ? new Uint8Array(source)
      : new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
    return { bytes: view.slice(), name: name ?? "model bytes" }; // a copy: later changes cannot reach the model
  }
  if (typeof source !== "string" && !(source instanceof URL)) {
    throw new ModelFileError(`a model is a URL, a file path (Node) or the file's bytes, got ${source === null ? "null" : typeof source}`);
  }
  const text = String(source);
  const label = name ?? text;
  const node = typeof process !== "undefined" && !!process.versions?.node;
  if (!node || /^(https?|data|blob):/i.test(text)) {
    return { bytes: await download(source, label, timeoutMs), name: label };
  }
  // Node: a path or a file: URL (module names hidden from bundlers, which would pull them into browser builds)
  const fsName = "node:fs/promises", urlName = "node:url";
  const fs = await import(/* @vite-ignore */ /* webpackIgnore: true */ fsName);
  const path = /^file:/i.test(text) ? (await import(/* @vite-ignore */ /* webpackIgnore: true */ urlName)).fileURLToPath(text) : text;
  try {
    const stat = await fs.stat(path);
    if (!stat.isFile()) throw Object.assign(new Error("not a file"), { code: "EISDIR" }); // a folder, FIFO, device...
    if (stat.size > MAX_MODEL_BYTES) {
      throw new ModelFileError(`${label}: ${stat.size.toLocaleString("en-US")} bytes is larger than any model file can be `
        + `(${MAX_MODEL_BYTES.toLocaleString("en-US")}); not an edgeinfer model`);
    }
    return { bytes: new Uint8Array(await fs.readFile(path)), name: label };
  } catch (err) {
    if (err instanceof ModelFileError) throw err;
    const code = /** @type {any} */ (err)?.code;
    if (code === "ENOENT") throw new ModelFileError(`${label}: no such model file`);
    if (code === "EISDIR") throw new ModelFileError(`${label}: not a file; expected an .onnx model file`);
    throw new ModelFileError(`${label}: cannot read (${code ?? (err instanceof Error ? err.message : String(err))})`);
  }
}

/**
 * A model file fetched with a deadline and a size cap: the body read piece by piece, cut off
 * past MAX_MODEL_BYTES or `timeoutMs`; every failure a ModelFileError naming the URL.
 * @param {string | URL} source @param {string} label @param {number} timeoutMs
 * @returns {Promise<Uint8Array>}
 */
async function download(source, label, timeoutMs) {
  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; abort.abort(); }, timeoutMs);
  const why = (/** @type {unknown} */ err) => (timedOut ? `not finished within ${timeoutMs} ms; try again, or raise timeoutMs`
    : `the download failed: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}`);
  try {
    let response;
    try {
      response = await fetch(source, { signal: abort.signal });
    } catch (err) {
      throw new ModelFileError(`${label}: cannot fetch (${timedOut ? why(err) : err instanceof Error ? err.message : String(err)})`);
    }
    if (!response.ok) throw new ModelFileError(`${label}: cannot fetch (HTTP ${response.status} ${response.statusText})`.trim());
    const declared = Number(response.headers.get("content-length") ?? NaN);
    const tooLarge = () => new ModelFileError(`${label}: the download is larger than any model file can be `
      + `(${MAX_MODEL_BYTES.toLocaleString("en-US")} bytes); not an edgeinfer model`);
    if (declared > MAX_MODEL_BYTES) throw tooLarge();
    if (!response.body) return new Uint8Array(await response.arrayBuffer());
    const reader = response.body.getReader();
    /** @type {Uint8Array[]} */
    const parts = [];
    let total = 0;
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (err) {
        throw new ModelFileError(`${label}: ${why(err)}`);
      }
      if (chunk.done) break;
      total += chunk.value.length;
      if (total > MAX_MODEL_BYTES) {
        abort.abort();
        throw tooLarge();
      }
      parts.push(chunk.value);
    }
    if (Number.isFinite(declared) && !response.headers.get("content-encoding") && total !== declared) {
      throw new ModelFileError(`${label}: the download was cut short (${total} of ${declared} bytes); try again`);
    }
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const part of parts) { bytes.set(part, at); at += part.length; }
    return bytes;
  } finally {
    clearTimeout(timer);
  }
}

/** @param {unknown} inputs @param {string} what @returns {unknown[]} */
function listed(inputs, what) {
  if (!Array.isArray(inputs)) throw new InputError(`expected ${what} (one, or a list), got ${brief(inputs)}`);
  if (!inputs.length) throw new InputError(`no ${what} given; expected at least one`);
  return inputs;
}

/** A model file read and validated: its spec, fingerprint and graphs. Made by `load`. */
export class Model {
  /** @type {Map<string, Promise<import("./runtime.js").Graph>>} */
  #graphs = new Map();
  #file;
  #options;

  /**
   * @param {import("./fileformat.js").ModelFile} file
   * @param {string} fingerprint sha256 of the file's bytes
   * @param {LoadOptions} options
   * @param {"node" | "wasm"} backend
   */
  constructor(file, fingerprint, options, backend) {
    this.#file = file;
    this.#options = { executionProviders: options.executionProviders, numThreads: options.numThreads };
    /** The onnxruntime that runs the graphs: "node" (onnxruntime-node, native) or "wasm" (onnxruntime-web). */
    this.backend = backend;
    /** Whether int8 operators run as fp32 ones of the dequantized weights (option `dequantize`). */
    this.dequantized = options.dequantize ?? backend === "wasm";
    /** The spec: the same JSON object as Python's `ModelSpec.to_dict()`. */
    this.spec = file.spec;
    /** sha256 of the model file: identifies the model in stream snapshots. */
    this.fingerprint = fingerprint;
    /** How messages name the model. */
    this.source = file.source;
    /** The file's size in bytes. */
    this.byteLength = file.data.length;
  }

  /** Number of outputs per answer: classes, or values (the spec's output names). */
  get classes() {
    return this.spec.output.names.length;
  }

  /** The names of the answers: class labels, or the names of the values (spec.output.names). */
  get labels() {
    return this.spec.output.names;
  }

  /**
   * The onnxruntime session of a graph ("sequence" or "step"), created once and checked against
   * the spec (input and output names, class count).
   * @param {"sequence" | "step"} name
   */
  graph(name) {
    let graph = this.#graphs.get(name);
    if (!graph) {
      graph = this.#create(name);
      this.#graphs.set(name, graph);
      graph.catch(() => this.#graphs.delete(name)); // a failed creation is tried again next time
    }
    return graph;
  }

  /** @param {"sequence" | "step"} name */
  async #create(name) {
    const sequence = name === "sequence";
    const file = this.#file;
    const original = sequence ? file.data : file.stepGraph;
    const bytes = this.dequantized ? dequantizeGraph(original) ?? original : original;
    const graph = sequence
      ? await createGraph(bytes, this.source, "sequence", this.#options, this.backend)
      : await createGraph(bytes, this.source, "step", this.#options, this.backend,
        [{ path: SELF_LOCATION, data: file.data }]);
    try {
      this.#check(graph, sequence);
    } catch (err) {
      await graph.release().catch(() => undefined);
      throw err;
    }
    return graph;
  }

  /**
   * The graph must take and give the names the spec declares, with the spec's class count.
   * @param {import("./runtime.js").Graph} graph @param {boolean} sequence
   */
  #check(graph, sequence) {
    const { spec } = this, io = spec.io;
    const source = `${this.source} (${sequence ? "sequence" : "step"} graph)`;
    const inputs = [sequence ? io.seq_input : io.step_input, ...spec.state.map((s) => s.name)];
    if (sequence && io.lengths) inputs.push(io.lengths);
    const outputs = [io.output, ...spec.state.map((s) => s.output)];
    if (!sequence && io.step_probabilities) outputs.push(io.step_probabilities);
    const haveIn = new Set(graph.inputNames), haveOut = new Set(graph.outputNames);
    const missing = [...inputs.filter((n) => !haveIn.has(n)), ...outputs.filter((n) => !haveOut.has(n))];
    const extra = [...haveIn].filter((n) => !inputs.includes(n)).sort();
    if (missing.length || extra.length) {
      throw new ModelFileError(`${source}: the graph's inputs and outputs do not match the spec (missing `
        + `${pyRepr(missing.slice(0, 3))}, unexpected inputs ${pyRepr(extra.slice(0, 3))}); export it again`);
    }
    const shape = graph.outputShape(io.output);
    const classes = shape && shape.length ? shape[shape.length - 1] : null;
    if (typeof classes === "number" && classes !== this.classes) {
      throw new ModelFileError(`${source}: the graph gives ${classes} classes but the spec has ${this.classes} labels; `
        + "export it again");
    }
  }

  /** Create both graphs' sessions now (the step graph's is otherwise created at first use). */
  async loadSessions() {
    await Promise.all([this.graph("sequence"), this.graph("step")]);
    return this;
  }

  /** Free the sessions' memory; they are created again if the model is used after this. */
  async release() {
    const graphs = [...this.#graphs.values()];
    this.#graphs.clear();
    for (const g of graphs) await (await g.catch(() => null))?.release();
  }

  /**
   * This model's input spec when it reads `kind`; WrongTaskError otherwise (Python's
   * `LoadedModel.require_input`).
   * @param {"image" | "words" | "chars" | "features"} kind
   */
  requireInput(kind) {
    try {
      return requireInput(this.spec, kind);
    } catch (err) {
      if (err instanceof WrongTaskError) throw new WrongTaskError(`${this.source}: ${err.message}`);
      throw err;
    }
  }

  /**
   * A graph's float32 output, checked to hold `size` values.
   * @param {Record<string, ort.Tensor>} outputs @param {string} name @param {number} size @param {string} graph
   * @returns {Float32Array}
   */
  output(outputs, name, size, graph) {
    const t = outputs[name];
    if (!t || t.type !== "float32" || t.data.length !== size) {
      const got = t ? `${t.type} ${pyShape(t.dims)}` : "nothing";
      throw new ModelFileError(`${this.source}: the ${graph} graph gave ${got} for ${pyRepr(name)} where ${size} float32 `
        + "values were expected; export it again");
    }
    return /** @type {Float32Array} */ (t.data);
  }

  /**
   * Run the sequence graph on x from `state` (the initial state when null). Raw features are
   * normalised here (`normalizeFeatures`), as Python's `run_sequence` does.
   * @param {ort.Tensor} x (B, T, F) float32 or (B, T) int64
   * @param {Record<string, Float32Array> | null} [state] each (layers, B, hidden)
   * @param {BigInt64Array | null} [lengths] (B,) valid steps per row (default: all T)
   * @returns {Promise<{logits: Float32Array, state: Record<string, Float32Array>}>} the graph's
   *   output: (B, C) after each row's last valid step, or (B, T, C) for a model that answers every
   *   step (see `lastStep`); and the state after each row's last valid step
   */
  async runSequence(x, state = null, lengths = null) {
    const { spec } = this, io = spec.io;
    const [batch, steps] = x.dims;
    const st = state ?? initialState(spec, batch);
    const raw = x.type === "float32" ? /** @type {Float32Array} */ (x.data) : null;
    const normalized = raw && normalizeFeatures(spec, raw);
    const graphX = normalized && normalized !== raw ? new ort.Tensor("float32", normalized, x.dims) : x;
    /** @type {Record<string, ort.Tensor>} */
    const feeds = { [io.seq_input]: graphX };
    for (const s of spec.state) feeds[s.name] = new ort.Tensor("float32", st[s.name], [s.layers, batch, s.hidden]);
    if (io.lengths) {
      feeds[io.lengths] = new ort.Tensor("int64", lengths ?? new BigInt64Array(batch).fill(BigInt(steps)), [batch]);
    } else if (lengths && lengths.some((n) => n !== BigInt(steps))) {
      throw new InputError(`${this.source}: this model reads whole rows only (no lengths input)`);
    }
    const out = await (await this.graph("sequence")).run(feeds);
    const logits = this.output(out, io.output, batch * (perStep(spec) ? steps : 1) * this.classes, "sequence");
    /** @type {Record<string, Float32Array>} */
    const next = {};
    for (const s of spec.state) next[s.name] = this.output(out, s.output, s.layers * batch * s.hidden, "sequence");
    return { logits, state: next };
  }

  /**
   * The sequence graph's output after each row's last valid step (Python's `last_step`): for a
   * model that answers every step, row b's step lengths[b] - 1 (the last step when no lengths);
   * the output itself otherwise.
   * @param {Float32Array} out (B, C), or (B, T, C) for a model that answers every step
   * @param {number} batch @param {number} steps T
   * @param {ArrayLike<number | bigint> | null} [lengths] (B,) valid steps per row
   * @returns {Float32Array} (B, C)
   */
  lastStep(out, batch, steps, lengths = null) {
    if (!perStep(this.spec)) return out;
    const c = this.classes, last = new Float32Array(batch * c);
    for (let b = 0; b < batch; b++) {
      const t = lengths ? Math.max(Number(lengths[b]), 1) - 1 : steps - 1;
      last.set(out.subarray((b * steps + t) * c, (b * steps + t + 1) * c), b * c);
    }
    return last;
  }

  /**
   * Whole feature sequences {data, dims: [B, T, F]} (or [T, F] for one), checked against the spec.
   * @param {unknown} x
   * @returns {{data: Float32Array, dims: number[], single: boolean}}
   */
  #features(x) {
    const f = this.spec.input_size;
    const { data, dims } = tensorInput(x, floatValues);
    const single = dims.length === 2;
    const full = single ? [1, ...dims] : dims;
    if (full.length !== 3 || full[2] !== f || full[1] === 0 || full[0] === 0) {
      throw new InputError(`${this.source}: input has shape ${pyShape(dims)}; expected (B, T, ${f}) or (T, ${f}), T >= 1`);
    }
    return { data, dims: full, single };
  }

  /**
   * Whole token sequences {data, dims: [B, T]}, or the T ids of one (an array, Int32Array or
   * BigInt64Array), checked against the vocabulary (Python's `token_sequences`).
   * @param {unknown} x
   * @returns {{data: BigInt64Array, dims: number[], single: boolean}}
   */
  #tokens(x) {
    const vocab = vocabSize(/** @type {import("./spec.js").TextInput} */ (this.spec.input));
    let tensor;
    if (x !== null && typeof x === "object" && "dims" in x) {
      tensor = tensorInput(x, (d) => tokenIds(d, vocab));
    } else {
      const ids = tokenIds(x, vocab);
      tensor = { data: ids, dims: [ids.length] };
    }
    const single = tensor.dims.length === 1;
    const dims = single ? [1, ...tensor.dims] : tensor.dims;
    if (dims.length !== 2 || dims.includes(0)) {
      throw new InputError(`${this.source}: token ids of shape ${pyShape(tensor.dims)}; expected (B, T) or (T,), T >= 1`);
    }
    return { data: tensor.data, dims, single };
  }

  /**
   * The dims of the sequence graph's output for B sequences of T steps.
   * @param {number} batch @param {number} steps @param {boolean} single one sequence, no batch axis
   */
  #outDims(batch, steps, single) {
    const dims = perStep(this.spec) ? [batch, steps, this.classes] : [batch, this.classes];
    return single ? dims.slice(1) : dims;
  }

  /**
   * The graph's output for whole sequences, every row read whole (Python's `predict_logits`):
   * logits (or values) after the last step, or every step's for a model that answers every step.
   * x: features {data: Float32Array, dims: [B, T, F]} or [T, F] (raw: the spec's normalisation
   * is applied); token ids {data, dims: [B, T]} or [T], or the T ids of one sequence.
   * @param {{data: ArrayLike<number | bigint>, dims: number[]} | ArrayLike<number | bigint>} x
   * @returns {Promise<{data: Float32Array, dims: number[]}>} (B, C) or (C); (B, T, C) or (T, C) per step
   */
  async predictLogits(x) {
    const { data, dims, single } = readsTokens(this.spec) ? this.#tokens(x) : this.#features(x);
    const { logits } = await this.runSequence(new ort.Tensor(data instanceof BigInt64Array ? "int64" : "float32", data, dims));
    return { data: logits, dims: this.#outDims(dims[0], dims[1], single) };
  }

  /**
   * The sequence graph's output for whole sequences from the initial state (Python's
   * `sequence_logits`): features {data, dims: [B, T, F]} (raw: normalised here), or token ids
   * {data, dims: [B, T]} with `lengths` (B,) valid steps per row for a model with a lengths
   * input (default: all T; padding past a row's length is not read).
   * @param {{data: ArrayLike<number | bigint>, dims: number[]}} x
   * @param {ArrayLike<number | bigint> | null} [lengths]
   * @returns {Promise<{data: Float32Array, dims: number[]}>} (B, C), or (B, T, C) for a model that answers every step
   */
  async sequenceLogits(x, lengths = null) {
    const { spec } = this;
    const tokens = readsTokens(spec);
    const vocab = tokens ? vocabSize(/** @type {import("./spec.js").TextInput} */ (spec.input)) : 0;
    const t = tensorInput(x, tokens ? (d) => tokenIds(d, vocab) : floatValues);
    const f = spec.input_size;
    if (tokens ? t.dims.length !== 2 : t.dims.length !== 3 || t.dims[2] !== f) {
      throw new InputError(`${this.source}: input has shape ${pyShape(t.dims)}; expected `
        + `${tokens ? "(B, T) int64 token ids" : `(B, T, ${f}) float32`}`);
    }
    const [batch, steps] = t.dims;
    if (!batch || !steps) throw new InputError(`${this.source}: input has shape ${pyShape(t.dims)}; expected B >= 1 and T >= 1`);
    let lens = null;
    if (lengths !== null && lengths !== undefined) {
      const list = Array.isArray(lengths) || ArrayBuffer.isView(lengths) ? Array.from(lengths) : null;
      const ok = list && list.length === batch && list.every((n) => (typeof n === "bigint" || Number.isInteger(n))
        && Number(n) >= 1 && Number(n) <= steps);
      if (!ok) throw new InputError(`${this.source}: lengths must be ${batch} whole numbers from 1 to ${steps}, one per row`);
      lens = BigInt64Array.from(/** @type {Array<number | bigint>} */ (list), (n) => BigInt(n));
    }
    const input = new ort.Tensor(tokens ? "int64" : "float32", t.data, t.dims);
    const { logits } = await this.runSequence(input, null, lens);
    return { data: logits, dims: this.#outDims(batch, steps, false) };
  }

  /**
   * The answers for whole sequences: class probabilities (the softmax of the logits), or values
   * (Python's `Model.predict`). Feature models take {data, dims: [B, T, F]} (or [T, F] for one;
   * raw features: the spec's normalisation is applied), a model that answers every step gives
   * (B, T, C) (or (T, C)); words models take an array of texts, tokenized with the spec and read
   * whole in length-sorted batches; token models also take token ids {data, dims: [B, T]} (or
   * the T ids of one sequence), every row read whole.
   * @param {{data: ArrayLike<number | bigint>, dims: number[]} | ArrayLike<number | bigint> | string[]} input
   * @returns {Promise<{data: Float32Array, dims: number[]}>} (B, C), or (C) for one sequence
   */
  async predict(input) {
    const texts = typeof input === "string" || (Array.isArray(input) && (!input.length || typeof input[0] === "string"));
    if (this.spec.input.kind === "words" && texts) return predictTexts(this, input);
    const logits = await this.predictLogits(/** @type {any} */ (input));
    return { data: answers(this.spec, logits.data), dims: logits.dims };
  }

  /**
   * Labelled answers, one per input, in order (Python's `Model.classify`): `{source, label,
   * probability, scores, flags}`. Takes what you have: texts (a text model); RGBA images as a
   * canvas gives them (`{data, width, height}`, an image model; flag "unclear"); feature
   * sequences `{data, dims: [T, F]}`, a list of them (lengths may differ) or one `[B, T, F]`.
   * One input or a list of them; always a list of answers.
   * @param {unknown} inputs
   * @returns {Promise<import("./answers.js").Answer[]>}
   */
  async classify(inputs) {
    const { spec } = this;
    const labels = spec.output.names;
    if (spec.output.kind !== "classes") {
      throw new InputError(`${this.source}: this model gives values (${labels.join(", ")}), not classes; use predict() for its values`);
    }
    if (perStep(spec)) throw new InputError(`${this.source}: this model answers every step; use predict() or a stream`);
    const kind = spec.input.kind;
    if (kind === "chars") throw new InputError(`${this.source}: a characters model; use generate / score`);
    if (kind === "words") {
      const texts = listed(typeof inputs === "string" ? [inputs] : inputs, "texts");
      checkTexts(texts);
      /** @type {import("./answers.js").Answer[]} */
      const out = [];
      for (const [start, end] of textChunks(texts)) {
        const got = await classifyTexts(this, texts.slice(start, end));
        if (got.errors.size) {
          throw new InputError(`text ${start + Math.min(...got.errors.keys())} is empty or has no words; expected at least one word`);
        }
        const sources = [], flags = [];
        for (let k = 0; k < end - start; k++) {
          sources.push(`text ${start + k}`);
          flags.push(isLowCoverage(got.known[k], got.words[k]) ? ["low_coverage"] : []);
        }
        out.push(...answersFrom(got.probabilities, labels, sources, flags));
      }
      return out;
    }
    if (kind === "image") {
      const one = inputs !== null && typeof inputs === "object" && !Array.isArray(inputs);
      const images = one ? [inputs] : /** @type {unknown[]} */ (listed(inputs, "images"));
      const { rows, cols } = /** @type {any} */ (spec.input);
      const data = new Float32Array(images.length * rows * cols);
      const sources = [], flags = [];
      for (let i = 0; i < images.length; i++) {
        const got = preprocessImage(/** @type {any} */ (spec), /** @type {any} */ (images[i]), { name: `image ${i}` });
        data.set(got.data, i * rows * cols);
        sources.push(`image ${i}`);
        flags.push(got.unclear ? ["unclear"] : []);
      }
      const probs = await this.predict({ data, dims: [images.length, rows, cols] });
      return answersFrom(probs.data, labels, sources, flags);
    }
    const single = inputs !== null && typeof inputs === "object" && !Array.isArray(inputs);
    /** @type {any[]} */
    const seqs = single ? [inputs] : listed(inputs, "feature sequences");
    /** @type {import("./answers.js").Answer[]} */
    const out = [];
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i];
      const dims = seq?.dims;
      const batch = Array.isArray(dims) && dims.length === 3 ? dims[0] : 1;
      const probs = await this.predict(seq);
      const sources = Array.from({ length: batch }, (_, b) => (batch > 1 || single ? `sequence ${out.length + b}` : `sequence ${i}`));
      out.push(...answersFrom(probs.data, labels, sources));
    }
    return out;
  }

  /**
   * A new stream with its own state; many may run at once on one model.
   * @param {number} [batch] sequences stepped together (default 1)
   */
  stream(batch = 1) {
    return new Stream(this, batch);
  }

  /** A stream of text for a words model: feed chunks as they arrive, read the running result. */
  textStream() {
    return new TextStream(this);
  }
}
