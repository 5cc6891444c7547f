// The one place that talks to onnxruntime-web: sessions created with the options asked for, runs
// serialized per session, and every onnxruntime failure turned into a typed error (ModelFileError,
// ProviderError) whose message says what to do.
//
// onnxruntime-web runs in Node too (its wasm backend), so Node and the browser run the same code.
// Its wasm thread count is process-wide and fixed when its first session is created: the first
// `load` sets it (default 1: right for one-step-at-a-time streaming, deterministic, and what
// browsers without cross-origin isolation give anyway).

import * as ort from "onnxruntime-web";
import { InputError, ModelFileError, ProviderError, brief } from "./errors.js";

export { ort };

/** @type {number | null} the wasm thread count fixed by the first session; null before it */
let fixedThreads = null;

/** onnxruntime-web's own version (its `env.versions`). */
export function runtimeVersions() {
  return { ...ort.env.versions };
}

/**
 * Check and apply a load's `numThreads` before any session exists.
 * @param {number | undefined} numThreads
 * @param {boolean} [apply] false: only check
 */
function applyThreads(numThreads, apply = true) {
  if (numThreads !== undefined && (!Number.isInteger(numThreads) || numThreads < 0 || numThreads > 1024)) {
    throw new InputError(`numThreads must be a whole number from 0 (onnxruntime decides) to 1024, got ${brief(numThreads)}`);
  }
  if (fixedThreads !== null && numThreads !== undefined && numThreads !== fixedThreads) {
    throw new InputError(`numThreads ${numThreads} asked for, but onnxruntime-web fixed its thread count at `
      + `${fixedThreads} when its first session was created (threads are process-wide there); load every model `
      + "with the same numThreads");
  }
  if (fixedThreads === null && apply) {
    if (numThreads !== undefined) ort.env.wasm.numThreads = numThreads;
    else if (ort.env.wasm.numThreads === undefined) ort.env.wasm.numThreads = 1;
    fixedThreads = ort.env.wasm.numThreads ?? 0;
  }
}

/**
 * Check the execution providers asked for: names (`wasm`, `webgpu`, ...) or onnxruntime-web's
 * provider option objects ({name, ...}).
 * @param {unknown} providers
 * @returns {Array<string | {name: string}>}
 */
function checkProviders(providers) {
  if (providers === undefined) return ["wasm"];
  const list = Array.isArray(providers) ? providers : [providers];
  const ok = list.length > 0 && list.every((p) => typeof p === "string"
    || (p !== null && typeof p === "object" && typeof (/** @type {any} */ (p)).name === "string"));
  if (!ok) {
    throw new ProviderError(`executionProviders must be provider names such as "wasm" or "webgpu" (or option objects `
      + `with a name), got ${brief(providers)}`);
  }
  return list;
}

/** The first line of an onnxruntime message, without its build-path prefix. @param {unknown} err */
function firstLine(err) {
  const text = String(err instanceof Error ? err.message : err).trim();
  const line = (text.split("\n")[0] || (err instanceof Error ? err.name : "error"))
    .replace(/^.*ERROR_MESSAGE: /, "").replace(/^\/\S+:\d+ \S.*?\) /, "");
  return line.slice(0, 200);
}

/** One graph's onnxruntime session, run by name, one run at a time. */
export class Graph {
  /**
   * @param {ort.InferenceSession} session
   * @param {string} source the model, for messages
   * @param {string} graph "sequence" or "step"
   */
  constructor(session, source, graph) {
    this.session = session;
    this.source = source;
    this.graph = graph;
    /** @type {Promise<unknown>} */
    this.tail = Promise.resolve();
  }

  /** @returns {readonly string[]} */
  get inputNames() {
    return this.session.inputNames;
  }

  /** @returns {readonly string[]} */
  get outputNames() {
    return this.session.outputNames;
  }

  /**
   * The declared shape of an output, when onnxruntime-web gives it (dims: numbers or names).
   * @param {string} name
   * @returns {ReadonlyArray<number | string> | null}
   */
  outputShape(name) {
    const meta = /** @type {any} */ (this.session).outputMetadata;
    const entry = Array.isArray(meta) ? meta.find((/** @type {any} */ m) => m.name === name) : undefined;
    return entry && entry.isTensor && Array.isArray(entry.shape) ? entry.shape : null;
  }

  /**
   * Run the graph. Runs of one session never overlap (some onnxruntime-web backends refuse
   * that): a run waits for the one before it. Failures are ModelFileErrors: inputs are checked
   * before a run, so what fails is the file.
   * @param {Record<string, ort.Tensor>} feeds
   * @returns {Promise<Record<string, ort.Tensor>>}
   */
  run(feeds) {
    const go = async () => {
      try {
        return /** @type {Record<string, ort.Tensor>} */ (await this.session.run(feeds));
      } catch (err) {
        throw new ModelFileError(`${this.source}: onnxruntime could not run the ${this.graph} graph (${firstLine(err)}); `
          + "the file may be damaged: export it again");
      }
    };
    const result = this.tail.then(go, go);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Free the session's memory; the graph cannot run afterwards. */
  async release() {
    await this.tail;
    await this.session.release();
  }
}

/**
 * @typedef {{executionProviders?: Array<string | {name: string}> | string, numThreads?: number}} RuntimeOptions
 */

/**
 * Check a load's runtime options now (before any file is read), so a bad option is reported as such.
 * @param {RuntimeOptions} options
 */
export function checkRuntimeOptions(options) {
  checkProviders(options.executionProviders);
  applyThreads(options.numThreads, false);
}

/**
 * An onnxruntime-web session on serialized model bytes.
 * @param {Uint8Array} bytes
 * @param {string} source the model, for messages
 * @param {"sequence" | "step"} graph
 * @param {RuntimeOptions} options
 * @param {Array<{path: string, data: Uint8Array}>} [externalData] in-memory files the graph's
 *   external references name (format 4: the model file itself, as `edgeinfer-self`)
 * @returns {Promise<Graph>}
 */
export async function createGraph(bytes, source, graph, options, externalData) {
  const providers = checkProviders(options.executionProviders);
  applyThreads(options.numThreads);
  /** @type {ort.InferenceSession.SessionOptions} */
  const sessionOptions = { executionProviders: /** @type {any} */ (providers), logSeverityLevel: 4 };
  if (externalData) sessionOptions.externalData = externalData;
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, sessionOptions);
  } catch (err) {
    const line = firstLine(err);
    if (/no available backend|backend not found|execution provider/i.test(line)) {
      const names = providers.map((p) => (typeof p === "string" ? p : p.name)).join(", ");
      throw new ProviderError(`execution provider ${names} is not available here (onnxruntime-web: ${line}); `
        + "use \"wasm\", which runs everywhere");
    }
    throw new ModelFileError(`${source} (${graph} graph): onnxruntime cannot load this model (${line})`);
  }
  return new Graph(session, source, graph);
}
