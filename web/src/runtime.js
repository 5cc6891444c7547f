// The one place that talks to onnxruntime: sessions created with the options asked for, runs
// serialized per session, and every onnxruntime failure turned into a typed error (ModelFileError,
// ProviderError) whose message says what to do.
//
// Two backends, one API and the same results (within the int8 tolerance):
// - "wasm": onnxruntime-web, in browsers and in Node. Its wasm thread count is process-wide and
//   fixed when its first session is created: the first `load` sets it (default 1: right for
//   one-step-at-a-time streaming, deterministic, and what browsers without cross-origin
//   isolation give anyway).
// - "node": onnxruntime-node, the native onnxruntime (an optional dependency), in Node only:
//   10x or more faster per step than wasm on the same file. Threads are per session.
// `backend: "auto"` (the default) takes "node" in Node when onnxruntime-node is installed and no
// browser provider is named, "wasm" otherwise; the environment variable EDGEINFER_WEB_BACKEND
// ("node" or "wasm") sets the default for a process.

import * as ort from "onnxruntime-web";
import { allFinite } from "./arrays.js";
import { InputError, ModelFileError, ProviderError, brief } from "./errors.js";

/** Python's `edgeinfer.core.NON_FINITE`: what a run whose answers are NaN or infinite raises. */
export const NON_FINITE = "the model gave non-finite answers (NaN or infinity) and nothing was kept: the input holds values "
  + "far outside any it was trained on, or a snapshot restored a state no stream reaches";

export { ort };

/** The backends there are. */
export const BACKENDS = /** @type {const} */ (["auto", "node", "wasm"]);

const IN_NODE = typeof process !== "undefined" && !!process.versions?.node;

/** @type {Promise<any | null> | null} onnxruntime-node, once looked for (null: not installed) */
let nativeModule = null;
/** @type {string | null} onnxruntime-node's version, once found */
let nativeVersion = null;

/**
 * onnxruntime-node when it is installed (Node only), else null. Looked for once.
 * @returns {Promise<any | null>}
 */
export function nativeRuntime() {
  if (nativeModule === null) {
    // the name hidden from bundlers, which would pull a native module into browser builds
    const name = "onnxruntime-node";
    nativeModule = !IN_NODE ? Promise.resolve(null)
      : import(/* @vite-ignore */ /* webpackIgnore: true */ name).then((m) => {
        const mod = m.default ?? m;
        nativeVersion = String(mod.env?.versions?.node ?? mod.env?.versions?.common ?? "");
        return mod;
      }, () => null);
  }
  return nativeModule;
}

/**
 * The backend a load with these options gets.
 * @param {RuntimeOptions} options
 * @returns {Promise<"node" | "wasm">}
 */
export async function resolveBackend(options) {
  const asked = checkBackend(options.backend);
  if (asked === "wasm") return "wasm";
  const native = await nativeRuntime();
  if (asked === "node") {
    if (!native) {
      throw new ProviderError(IN_NODE
        ? "backend \"node\" needs onnxruntime-node: npm install onnxruntime-node@" + ort.env.versions.common
          + " (or use backend \"wasm\")"
        : "backend \"node\" runs in Node only; use \"wasm\" in a browser");
    }
    return "node";
  }
  const names = options.executionProviders === undefined ? []
    : checkProviders(options.executionProviders).map((p) => (typeof p === "string" ? p : p.name));
  const browserOnly = names.some((n) => ["wasm", "webgpu", "webgl", "webnn"].includes(n));
  return native && !browserOnly ? "node" : "wasm";
}

/** @param {unknown} backend @returns {"auto" | "node" | "wasm"} */
function checkBackend(backend) {
  const fromEnv = IN_NODE ? process.env.EDGEINFER_WEB_BACKEND : undefined;
  const value = backend ?? (fromEnv || "auto");
  if (!BACKENDS.includes(/** @type {any} */ (value))) {
    const where = backend === undefined ? "EDGEINFER_WEB_BACKEND" : "backend";
    throw new InputError(`${where} must be "auto", "node" or "wasm", got ${brief(value)}`);
  }
  return /** @type {"auto" | "node" | "wasm"} */ (value);
}

/** @type {number | null} the wasm thread count fixed by the first session; null before it */
let fixedThreads = null;

/** onnxruntime's versions: onnxruntime-web's `env.versions`, plus `node` (onnxruntime-node's
 * version) once a load has looked for it and found it. */
export function runtimeVersions() {
  return nativeVersion ? { ...ort.env.versions, node: nativeVersion } : { ...ort.env.versions };
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
  if (!apply) return; // only the range: whether the wasm count is fixed matters when a wasm session is made
  if (fixedThreads !== null && numThreads !== undefined && numThreads !== fixedThreads) {
    throw new InputError(`numThreads ${numThreads} asked for, but onnxruntime-web fixed its thread count at `
      + `${fixedThreads} when its first session was created (threads are process-wide there); load every model `
      + "with the same numThreads");
  }
  if (fixedThreads === null) {
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
   * before a run, so what fails is the file. Answers that are not finite are an InputError
   * (NON_FINITE), never a result, as Python's `LoadedModel.run` does.
   * @param {Record<string, ort.Tensor>} feeds
   * @param {readonly string[]} [finite] the outputs that must be finite (default: every float32 output)
   * @returns {Promise<Record<string, ort.Tensor>>}
   */
  run(feeds, finite) {
    const go = async () => {
      let out;
      try {
        out = /** @type {Record<string, ort.Tensor>} */ (await this.session.run(feeds));
      } catch (err) {
        throw new ModelFileError(`${this.source}: onnxruntime could not run the ${this.graph} graph (${firstLine(err)}); `
          + "the file may be damaged: export it again");
      }
      for (const name of finite ?? Object.keys(out)) {
        const t = out[name];
        if (t && t.type === "float32" && !allFinite(/** @type {Float32Array} */ (t.data))) {
          throw new InputError(`${this.source}: ${NON_FINITE}`);
        }
      }
      return out;
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
 * @typedef {{executionProviders?: Array<string | {name: string}> | string, numThreads?: number,
 *   backend?: "auto" | "node" | "wasm"}} RuntimeOptions
 */

/**
 * Check a load's runtime options now (before any file is read), so a bad option is reported as such.
 * @param {RuntimeOptions} options
 */
export function checkRuntimeOptions(options) {
  checkBackend(options.backend);
  checkProviders(options.executionProviders);
  applyThreads(options.numThreads, false);
}

/**
 * An onnxruntime session on serialized model bytes, on the backend `resolveBackend` chose.
 * @param {Uint8Array} bytes
 * @param {string} source the model, for messages
 * @param {"sequence" | "step"} graph
 * @param {RuntimeOptions} options
 * @param {"node" | "wasm"} backend
 * @param {Array<{path: string, data: Uint8Array}>} [externalData] in-memory files the graph's
 *   external references name (format 4: the model file itself, as `edgeinfer-self`)
 * @returns {Promise<Graph>}
 */
export async function createGraph(bytes, source, graph, options, backend, externalData) {
  const native = backend === "node" ? await nativeRuntime() : null;
  /** @type {any} */
  const sessionOptions = { logSeverityLevel: 4 };
  /** @type {Array<string | {name: string}>} */
  let providers;
  if (native) {
    providers = options.executionProviders === undefined ? ["cpu"] : checkProviders(options.executionProviders);
    sessionOptions.intraOpNumThreads = options.numThreads ?? 1;
    sessionOptions.interOpNumThreads = 1;
  } else {
    providers = checkProviders(options.executionProviders);
    applyThreads(options.numThreads);
  }
  sessionOptions.executionProviders = providers;
  if (externalData) sessionOptions.externalData = externalData;
  const api = native ?? ort;
  let session;
  try {
    session = await api.InferenceSession.create(bytes, sessionOptions);
  } catch (err) {
    const line = firstLine(err);
    if (/no available backend|backend not found|execution provider/i.test(line)) {
      const names = providers.map((p) => (typeof p === "string" ? p : p.name)).join(", ");
      throw new ProviderError(`execution provider ${names} is not available here (onnxruntime-${backend === "node" ? "node" : "web"}: `
        + `${line}); use ${backend === "node" ? "\"cpu\"" : "\"wasm\""}, which runs everywhere`);
    }
    throw new ModelFileError(`${source} (${graph} graph): onnxruntime cannot load this model (${line})`);
  }
  return new Graph(session, source, graph);
}
