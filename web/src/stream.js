// A stream: one sequence (or a fixed batch of them) stepped through a model, state carried
// along (a port of edgeinfer/stream.py). The state lives here, never in the shared session, so
// one loaded model serves many streams. A stream is for one caller at a time: a call made while
// another is still running (an un-awaited step) is refused with an InputError, never interleaved.

import { checkFinite, floatValues, pyShape, tensorInput, tokenIds } from "./arrays.js";
import { InputError, brief } from "./errors.js";
import { ort } from "./runtime.js";
import {
  MAX_SNAPSHOT_BYTES, MEMBER_OVERHEAD, SNAPSHOT_MAGIC, Snapshot, checkReachable, checkedParts,
} from "./snapshot.js";
import { answers, commas, initialState, normalizeFeatures, readsTokens, vocabSize } from "./spec.js";

export const MAX_STREAM_BATCH = 1 << 16;
const IN_USE = "this stream is in use by another call (a step, feed or restore still running); a stream is for one "
  + "caller at a time: await each call before the next, or open one stream per task (they can share one model)";

/**
 * Steps a model one time step per call; `feed` reads a chunk of steps in one call. Each returns
 * the answers after the step: class probabilities, or values (spec.output.kind). Raw features
 * are normalised with the spec's mean and std before the graphs read them.
 */
export class Stream {
  /** @type {Record<string, ort.Tensor>} the state now, each (layers, batch, hidden) */
  #state = {};
  /** @type {Float32Array | null} the graph's output (batch, classes) after the latest step: logits, or values */
  #logits = null;
  #busy = false;

  /**
   * @param {import("./model.js").Model} model
   * @param {number} [batch]
   */
  constructor(model, batch = 1) {
    if (!Number.isInteger(batch) || batch < 1 || batch > MAX_STREAM_BATCH) {
      throw new InputError(`stream batch must be a whole number from 1 to ${commas(MAX_STREAM_BATCH)}, got ${brief(batch)}`);
    }
    this.model = model;
    this.batch = batch;
    this.tokens = readsTokens(model.spec);
    this.vocab = this.tokens ? vocabSize(/** @type {any} */ (model.spec.input)) : 0;
    /** Steps read so far. */
    this.steps = 0;
    this.#setState(initialState(model.spec, batch));
  }

  /** @param {Record<string, Float32Array>} state */
  #setState(state) {
    for (const s of this.model.spec.state) {
      this.#state[s.name] = new ort.Tensor("float32", state[s.name], [s.layers, this.batch, s.hidden]);
    }
  }

  /**
   * Run `work` as the only call in progress on this stream.
   * @template T @param {() => Promise<T>} work @returns {Promise<T>}
   */
  async #exclusive(work) {
    if (this.#busy) throw new InputError(IN_USE);
    this.#busy = true;
    try {
      return await work();
    } finally {
      this.#busy = false;
    }
  }

  /** True while a call is running. */
  get busy() {
    return this.#busy;
  }

  /** Back to the initial state, as if nothing had been read. */
  reset() {
    if (this.#busy) throw new InputError(IN_USE);
    this.#setState(initialState(this.model.spec, this.batch));
    this.#logits = null;
    this.steps = 0;
  }

  /**
   * A copy of the state now, keyed by input name.
   * @returns {Record<string, {data: Float32Array, dims: number[]}>} each (layers, batch, hidden)
   */
  get state() {
    /** @type {Record<string, {data: Float32Array, dims: number[]}>} */
    const out = {};
    for (const [k, t] of Object.entries(this.#state)) out[k] = { data: Float32Array.from(/** @type {Float32Array} */ (t.data)), dims: [...t.dims] };
    return out;
  }

  /** A copy of the graph's output (batch × classes, row-major: logits, or values) after the latest step; null before the first. */
  get logits() {
    return this.steps && this.#logits ? this.#logits.slice() : null;
  }

  /** The answers after the latest step: class probabilities, or values (batch × classes). */
  get probabilities() {
    if (!this.steps || !this.#logits) throw new InputError("the stream has read nothing yet; call step() or feed() first");
    return answers(this.model.spec, this.#logits);
  }

  /**
   * One step's input as a tensor: F features per sequence, or one token id per sequence.
   * @param {unknown} x
   */
  #stepInput(x) {
    const { batch } = this;
    if (this.tokens) {
      if (batch === 1 && ((typeof x === "number" && Number.isInteger(x)) || typeof x === "bigint")) {
        const id = BigInt(x);
        if (id < 0n || id >= BigInt(this.vocab)) throw new InputError(`token id out of range; expected 0 <= id < ${this.vocab}`);
        return new ort.Tensor("int64", BigInt64Array.of(id), [1]);
      }
      const ids = tokenIds(x, this.vocab);
      if (ids.length !== batch) {
        throw new InputError(`stream input has ${ids.length} token ids; expected ${batch}, one per sequence`);
      }
      return new ort.Tensor("int64", ids, [batch]);
    }
    const f = this.model.spec.input_size;
    let data;
    if (x instanceof Float32Array) {
      checkFinite(x);
      data = x;
    } else {
      data = floatValues(x !== null && typeof x === "object" && "data" in x ? /** @type {any} */ (x).data : x);
    }
    if (data.length !== batch * f) {
      throw new InputError(`stream input has ${data.length} values; expected ${batch * f} float32 `
        + `(${batch === 1 ? `${f} features` : `${batch} sequences × ${f} features`})`);
    }
    const normalized = normalizeFeatures(this.model.spec, data); // a copy when it normalises
    return new ort.Tensor("float32", normalized === data ? data.slice() : normalized, [batch, f]);
  }

  /**
   * Read one time step: x is F features (a Float32Array; batch × F for a batch), or a token id
   * (a number or bigint; an array of batch ids for a batch). Runs the step graph; raw features
   * are normalised first.
   * @param {Float32Array | number[] | number | bigint | BigInt64Array | Int32Array} x
   * @returns {Promise<Float32Array>} the answers: probabilities, or values (batch × classes)
   */
  step(x) {
    return this.#exclusive(() => this.#step(this.#stepInput(x)));
  }

  /** @param {ort.Tensor} input what the step graph reads (normalised features) @returns {Promise<Float32Array>} */
  async #step(input) {
    const model = this.model, spec = model.spec, io = spec.io, classes = model.classes;
    /** @type {Record<string, ort.Tensor>} */
    const feeds = { [io.step_input]: input, ...this.#state };
    // the logits must be finite (as Python's step checks them): else InputError, and nothing moves
    const out = await (await model.graph("step")).run(feeds, [io.output]);
    const logits = model.output(out, io.output, this.batch * classes, "step");
    /** @type {Record<string, ort.Tensor>} */
    const next = {};
    for (const s of spec.state) {
      model.output(out, s.output, s.layers * this.batch * s.hidden, "step");
      next[s.name] = out[s.output];
    }
    const probs = io.step_probabilities ? model.output(out, io.step_probabilities, this.batch * classes, "step") : null;
    this.#state = next;
    this.#logits = logits;
    this.steps += 1;
    return probs ?? answers(spec, logits); // the graph's softmax; values, or files without it: computed here
  }

  /**
   * A chunk of steps as the sequence graph's input: features {data, dims: [T, F]} (or
   * [batch, T, F]); token ids as an array (T ids, batch 1) or {data, dims: [batch, T]}.
   * @param {unknown} chunk
   */
  #chunk(chunk) {
    const { batch } = this;
    if (this.tokens) {
      const tensor = chunk !== null && typeof chunk === "object" && "dims" in chunk
        ? tensorInput(chunk, (d) => tokenIds(d, this.vocab))
        : { data: tokenIds(chunk, this.vocab), dims: [/** @type {ArrayLike<unknown>} */ (chunk).length] };
      const dims = tensor.dims.length === 1 && batch === 1 ? [1, ...tensor.dims] : tensor.dims;
      if (dims.length !== 2 || dims[0] !== batch) {
        throw new InputError(`stream input has shape ${pyShape(tensor.dims)}; expected (${batch}, T)`
          + `${batch === 1 ? " or (T)" : ""} int64 token ids`);
      }
      return new ort.Tensor("int64", tensor.data, dims);
    }
    const f = this.model.spec.input_size;
    const tensor = tensorInput(chunk, floatValues);
    const dims = tensor.dims.length === 2 && batch === 1 ? [1, ...tensor.dims] : tensor.dims;
    if (dims.length !== 3 || dims[0] !== batch || dims[2] !== f) {
      throw new InputError(`stream input has shape ${pyShape(tensor.dims)}; expected (${batch}, T, ${f})`
        + `${batch === 1 ? ` or (T, ${f})` : ""} float32`);
    }
    return new ort.Tensor("float32", tensor.data.slice(), dims);
  }

  /**
   * Read many steps at once in one call of the sequence graph, from the stream's state; the
   * result equals calling `step` for each.
   * @param {{data: Float32Array | number[], dims: number[]} | ArrayLike<number | bigint>
   *   | {data: ArrayLike<number | bigint>, dims: number[]}} chunk
   * @returns {Promise<Float32Array>} the answers after the chunk's last step (batch × classes)
   */
  feed(chunk) {
    return this.#exclusive(async () => {
      const x = this.#chunk(chunk);
      if (x.dims[1] === 0) throw new InputError("stream chunk has no time steps; expected T >= 1");
      /** @type {Record<string, Float32Array>} */
      const state = {};
      for (const [k, t] of Object.entries(this.#state)) state[k] = /** @type {Float32Array} */ (t.data);
      const { logits, state: next } = await this.model.runSequence(x, state); // normalises raw features
      this.#setState(next);
      this.#logits = this.model.lastStep(logits, this.batch, x.dims[1]);
      this.steps += x.dims[1];
      return answers(this.model.spec, this.#logits);
    });
  }

  /**
   * Read a chunk step by step through the step graph; the answers after every step (the
   * anytime view: digits after each row, sentiment after each word).
   * @param {unknown} chunk as for `feed`
   * @returns {Promise<{data: Float32Array, dims: number[]}>} (batch, T, classes)
   */
  trace(chunk) {
    return this.#exclusive(async () => {
      const x = this.#chunk(chunk);
      const [batch, steps] = x.dims;
      const width = x.dims.length === 3 ? x.dims[2] : 1;
      const classes = this.model.classes;
      const out = new Float32Array(batch * steps * classes);
      const data = this.tokens ? /** @type {any} */ (x.data) : normalizeFeatures(this.model.spec, /** @type {Float32Array} */ (x.data));
      for (let t = 0; t < steps; t++) {
        const row = this.tokens ? new BigInt64Array(batch) : new Float32Array(batch * width);
        for (let b = 0; b < batch; b++) {
          for (let i = 0; i < width; i++) row[b * width + i] = data[(b * steps + t) * width + i];
        }
        const dims = this.tokens ? [batch] : [batch, width];
        const p = await this.#step(new ort.Tensor(this.tokens ? "int64" : "float32", row, dims));
        for (let b = 0; b < batch; b++) out.set(p.subarray(b * classes, (b + 1) * classes), (b * steps + t) * classes);
      }
      return { data: out, dims: [batch, steps, classes] };
    });
  }

  /**
   * The stream's state now as snapshot bytes (Python's `Snapshot.to_bytes` format): restore them
   * here, in another stream of this model, or in the Python runtime.
   * @returns {Uint8Array}
   */
  snapshot() {
    if (this.#busy) throw new InputError(IN_USE);
    return this.snapshotObject().toBytes();
  }

  /** The stream's state now as a Snapshot object (arrays copied). */
  snapshotObject() {
    if (this.#busy) throw new InputError(IN_USE);
    const logits = this.logits;
    return new Snapshot(this.model.fingerprint, this.state, logits ? { data: logits, dims: [this.batch, this.model.classes] } : null,
      this.steps);
  }

  /**
   * Continue from a snapshot (its bytes, or a Snapshot) of a stream of this same model file and
   * batch size; InputError for anything else, the stream unchanged.
   * @param {Uint8Array | ArrayBuffer | Snapshot} snapshot
   */
  restore(snapshot) {
    return this.#exclusive(async () => {
      const snap = await this.#checked(snapshot);
      /** @type {Record<string, Float32Array>} */
      const state = {};
      for (const [k, t] of Object.entries(snap.state)) state[k] = Float32Array.from(t.data);
      this.#setState(state);
      this.#logits = snap.logits ? Float32Array.from(snap.logits.data) : null;
      this.steps = snap.logits ? snap.steps : 0;
    });
  }

  /** @param {unknown} snapshot @returns {Promise<Snapshot>} */
  async #checked(snapshot) {
    const { spec } = this.model, batch = this.batch, classes = this.model.classes;
    let snap;
    if (snapshot instanceof Snapshot) { // its parts checked as parsed bytes' are (Python's checked_snapshot)
      snap = checkedParts({ magic: SNAPSHOT_MAGIC, model: snapshot.model, steps: snapshot.steps }, snapshot.state,
        snapshot.logits, []);
    } else if (snapshot instanceof Uint8Array || snapshot instanceof ArrayBuffer) {
      const need = spec.state.reduce((n, s) => n + 4 * s.layers * batch * s.hidden, 0) + 4 * batch * classes;
      snap = await Snapshot.fromBytes(snapshot, Math.min(MAX_SNAPSHOT_BYTES, need + (spec.state.length + 2) * MEMBER_OVERHEAD));
    } else {
      throw new InputError(`expected a Snapshot or its bytes (a Uint8Array), got ${brief(snapshot)}`);
    }
    if (snap.model !== this.model.fingerprint) {
      throw new InputError(`snapshot was taken from another model (sha256 ${snap.model.slice(0, 12)}...); this stream runs `
        + `${this.model.source} (${this.model.fingerprint.slice(0, 12)}...)`);
    }
    const names = Object.keys(snap.state).sort().join("\0");
    const fits = names === spec.state.map((s) => s.name).sort().join("\0") && spec.state.every((s) => {
      const t = snap.state[s.name];
      return t.dims.length === 3 && t.dims[0] === s.layers && t.dims[1] === batch && t.dims[2] === s.hidden
        && t.data.length === s.layers * batch * s.hidden && t.data.every(Number.isFinite);
    });
    if (!fits) throw new InputError(`snapshot state does not fit a stream of batch ${batch}`);
    const l = snap.logits;
    if (l && (l.dims.length !== 2 || l.dims[0] !== batch || l.dims[1] !== classes || l.data.length !== batch * classes
      || !l.data.every(Number.isFinite))) {
      throw new InputError(`snapshot logits do not fit a stream of batch ${batch}`);
    }
    if (!Number.isInteger(snap.steps) || snap.steps < 0) throw new InputError("snapshot step count is not a whole number >= 0");
    checkReachable(spec, snap);
    return snap;
  }

  /** An independent copy that continues from this point. */
  async fork() {
    const other = new Stream(this.model, this.batch);
    await other.restore(this.snapshotObject());
    return other;
  }
}
