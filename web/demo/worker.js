// The demo's model work, off the page's thread: loads the four built-in models with
// edgeinfer-web and steps their streams. The page (app.js) sends jobs; each job gets a number, and
// a newer job of the same kind supersedes the one running (it stops at its next step).
//
// page -> worker                                   worker -> page
//   {op: "init", threads, pace}                      {op: "model", name, ms, bytes, spec}  (each, as it loads)
//   {op: "pace", pace}                               {op: "ready", threads, isolated, versions}
//   {op: "digit", job, image: {data, width, height}} {op: "digit-input", job, pixels} then
//                                                    {op: "digit-row", job, row, probs} x 28, {op: "digit-done", job, ...}
//   {op: "review", job, text}                        {op: "review", job, words: [{text, start, end, p, unknown}], p}
//   {op: "generate", job, prompt, chars, temperature}{op: "chars", job, text, top, count, ms} ..., {op: "generate-done", job, ...}
//   {op: "motion", job, steps, features}             {op: "motion-step", job, step, probs} x T, {op: "motion-done", job, ...}
//   {op: "stop", job}                                {op: "error", job, kind, name, message}

import { generate, load, preprocessImage, runtimeVersions, textTokenizer } from "/src/index.js";

const MODELS = /** @type {const} */ (["digits", "sentiment", "characters", "motions"]);
const EARLY_EXIT = 0.99; // the early-exit threshold: the first row whose top probability reaches it
// motions: its answers are less peaked (trained to answer from every step; walking tops out near
// 0.97), so its threshold is the README's 0.95: 39 of the 40 test recordings right, 21% of steps read
const MOTION_EXIT = 0.95;
// ms between steps shown; a motion step is 0.1 s of the recording (10 Hz), played back in real time
const PACE = { watch: { row: 35, char: 20, motion: 100 }, full: { row: 0, char: 0, motion: 0 } };

/** @type {Record<string, Promise<import("/src/index.js").Model>>} */
const models = {};
/** @type {Record<string, number>} the running job of each kind */
const current = { digit: 0, review: 0, generate: 0, motion: 0 };
let pace = PACE.watch;

/** @param {string} name */
const model = (name) => /** @type {Promise<import("/src/index.js").Model>} */ (models[name]);
const post = (/** @type {any} */ message, /** @type {Transferable[]} */ transfer = []) => self.postMessage(message, transfer);
const sleep = (/** @type {number} */ ms) => new Promise((done) => setTimeout(done, ms));

// A zero-delay turn of the event loop (setTimeout is clamped to >= 4 ms): lets `stop` and newer
// jobs arrive while a long job runs, since onnxruntime's runs resolve without one.
const channel = new MessageChannel();
/** @type {Array<() => void>} */
const waiting = [];
channel.port1.onmessage = () => waiting.shift()?.();
const turn = () => new Promise((done) => {
  waiting.push(() => done(undefined));
  channel.port2.postMessage(null);
});

/** @param {number} threads */
async function init(threads) {
  for (const name of MODELS) {
    models[name] = (async () => {
      const t0 = performance.now();
      const m = await load(`/models/${name}.onnx`, { numThreads: threads });
      await m.loadSessions(); // both graphs' sessions now, so the first step is not a slow one
      const ms = performance.now() - t0;
      await warmUp(m);
      post({ op: "model", name, ms, bytes: m.byteLength, spec: m.spec });
      return m;
    })();
    // the first load starts onnxruntime (the wasm); the others wait for it, then load together
    if (name === MODELS[0]) await models[name].catch(() => undefined);
  }
  const results = await Promise.allSettled(MODELS.map(model));
  results.forEach((r, i) => {
    if (r.status === "rejected") fail(0, `load ${MODELS[i]}`, r.reason);
  });
  post({ op: "ready", threads, isolated: self.crossOriginIsolated, versions: runtimeVersions() });
}

/**
 * A few dozen steps on a throwaway stream: the browser compiles wasm quickly first and optimizes
 * the code that runs often later, so a cold step can take several times a warm one.
 * @param {import("/src/index.js").Model} m
 */
async function warmUp(m) {
  const stream = m.stream();
  const kind = m.spec.input.kind;
  const x = kind === "image" || kind === "features" ? new Float32Array(m.spec.input_size) : 2;
  const t0 = performance.now();
  for (let i = 0; i < 200 && performance.now() - t0 < 60; i++) await stream.step(x);
}

/** @param {number} job @param {string} kind @param {unknown} err */
function fail(job, kind, err) {
  const e = err instanceof Error ? err : new Error(String(err));
  post({ op: "error", job, kind, name: e.name, message: e.message });
}

/**
 * Digits: preprocess the drawing like Python's load_digit, then read it one row per step, the
 * probabilities after each row sent as they come.
 * @param {number} job @param {{data: Uint8ClampedArray, width: number, height: number}} image
 */
async function digit(job, image) {
  const m = await model("digits");
  if (job !== current.digit) return;
  const x = preprocessImage(m.spec, image);
  const [rows, cols] = x.dims;
  post({ op: "digit-input", job, pixels: x.data.slice(), rows, cols });
  const stream = m.stream();
  let exit = -1;
  const t0 = performance.now();
  let stepMs = 0;
  for (let r = 0; r < rows; r++) {
    const s0 = performance.now();
    const probs = await stream.step(x.data.subarray(r * cols, (r + 1) * cols));
    stepMs += performance.now() - s0;
    if (job !== current.digit) return;
    if (exit < 0 && Math.max(...probs) >= EARLY_EXIT) exit = r;
    post({ op: "digit-row", job, row: r, probs: Float32Array.from(probs) });
    if (pace.row) await sleep(pace.row);
    else await turn();
    if (job !== current.digit) return;
  }
  const probs = stream.probabilities;
  const label = probs.indexOf(Math.max(...probs));
  post({ op: "digit-done", job, label, probs, exit, threshold: EARLY_EXIT, stepMs: stepMs / rows, ms: performance.now() - t0,
    unclear: x.unclear });
}

/** Words of the text with their places in it, for tinting (null when they cannot be placed). */
const TOKEN = /[\p{L}\p{N}]+(?:'[\p{L}\p{N}]+)?|[!?]/gu;

/**
 * Where each of the model's words is in the text: the tokenizer's pattern run on the text as
 * typed (line breaks `<br />` and curly quotes made plain at the same length). Null when these
 * places do not give exactly the model's words (lower-casing can split a few rare letters).
 * @param {string} text @param {string[]} words @param {boolean} lowercase
 * @returns {Array<[number, number]> | null}
 */
function places(text, words, lowercase) {
  const plain = text.replace(/<br\s*\/?>/gi, (m) => " ".repeat(m.length)).replace(/[\u2018\u2019]/g, "'");
  const spans = [...plain.matchAll(TOKEN)];
  if (spans.length !== words.length) return null;
  const ok = spans.every((m, i) => (lowercase ? m[0].toLowerCase() : m[0]) === words[i]);
  return ok ? spans.map((m) => [/** @type {number} */ (m.index), /** @type {number} */ (m.index) + m[0].length]) : null;
}

/**
 * Sentiment: the text read word by word through the step graph (TextStream.trace), the
 * probability of "positive" after each word.
 * @param {number} job @param {string} text
 */
async function review(job, text) {
  const m = await model("sentiment");
  if (job !== current.review) return;
  const tok = textTokenizer(m);
  const words = tok.words(text);
  const positive = m.spec.output.names.indexOf("positive");
  if (!words.length) return post({ op: "review", job, words: [], p: null });
  const ids = tok.encodeWords(words);
  const spans = places(text, words, tok.input.lowercase);
  const stream = m.stream();
  const out = [];
  const t0 = performance.now();
  for (let i = 0; i < words.length; i++) {
    const probs = await stream.step(ids[i]);
    out.push({
      text: words[i], start: spans ? spans[i][0] : -1, end: spans ? spans[i][1] : -1,
      p: probs[positive], unknown: ids[i] === tok.input.unk_id,
    });
    if (i % 64 === 63) {
      await turn();
      if (job !== current.review) return;
    }
  }
  post({ op: "review", job, words: out, p: out[out.length - 1].p, placed: !!spans, ms: performance.now() - t0 });
}

/**
 * Characters: `generate` from the prompt, characters sent in small batches with the model's top
 * candidates for the latest one.
 * @param {number} job @param {{prompt: string, chars: number, temperature: number}} options
 */
async function write(job, { prompt, chars, temperature }) {
  const m = await model("characters");
  if (job !== current.generate) return;
  const stream = m.stream();
  const vocab = /** @type {any} */ (m.spec.input);
  const names = ["", ""].concat(vocab.vocab); // ids 0 and 1: padding and unknown (never produced)
  const it = generate(m, { prompt, maxChars: chars, temperature, stream });
  let text = "", count = 0, flushed = performance.now(), modelMs = 0;
  const t0 = performance.now();
  let stopped = false;
  for (;;) {
    const s0 = performance.now();
    const next = await it.next();
    modelMs += performance.now() - s0;
    if (next.done) break;
    text += next.value;
    count += 1;
    const now = performance.now();
    if (pace.char || now - flushed > 30 || count === chars) {
      const p = stream.probabilities;
      const top = [...p.keys()].sort((a, b) => p[b] - p[a]).slice(0, 5).map((i) => [names[i] ?? "", p[i]]);
      post({ op: "chars", job, text, top, count });
      text = "";
      flushed = now;
      if (pace.char) await sleep(pace.char);
      else await turn();
    }
    if (job !== current.generate) {
      stopped = true;
      break;
    }
  }
  await it.return(undefined);
  post({ op: "generate-done", job, count, stopped, ms: performance.now() - t0, stepMs: modelMs / Math.max(count, 1) });
}

/**
 * Motions: a recording played back one step (0.1 s of six sensor channels, raw: the runtime
 * applies the file's normalisation) at a time, the class probabilities after each step.
 * @param {number} job @param {Float32Array} steps (T * F) @param {number} features
 */
async function motion(job, steps, features) {
  const m = await model("motions");
  if (job !== current.motion) return;
  const total = steps.length / features;
  const stream = m.stream();
  let exit = -1, stepMs = 0;
  const t0 = performance.now();
  for (let t = 0; t < total; t++) {
    const s0 = performance.now();
    const probs = await stream.step(steps.subarray(t * features, (t + 1) * features));
    stepMs += performance.now() - s0;
    if (job !== current.motion) return;
    if (exit < 0 && Math.max(...probs) >= MOTION_EXIT) exit = t;
    post({ op: "motion-step", job, step: t, probs: Float32Array.from(probs) });
    if (pace.motion) await sleep(pace.motion);
    else await turn();
    if (job !== current.motion) return;
  }
  const probs = stream.probabilities;
  const label = probs.indexOf(Math.max(...probs));
  post({ op: "motion-done", job, label, probs, exit, threshold: MOTION_EXIT, stepMs: stepMs / total,
    ms: performance.now() - t0 });
}

self.onmessage = (/** @type {MessageEvent} */ event) => {
  const msg = event.data;
  const run = (/** @type {string} */ kind, /** @type {() => Promise<unknown>} */ work) => {
    current[kind] = msg.job;
    work().catch((err) => fail(msg.job, kind, err));
  };
  switch (msg.op) {
    case "init":
      pace = PACE[msg.pace] ?? PACE.watch;
      init(msg.threads).catch((err) => fail(0, "init", err));
      break;
    case "pace":
      pace = PACE[msg.pace] ?? PACE.watch;
      break;
    case "digit":
      run("digit", () => digit(msg.job, msg.image));
      break;
    case "review":
      run("review", () => review(msg.job, msg.text));
      break;
    case "generate":
      run("generate", () => write(msg.job, msg));
      break;
    case "motion":
      run("motion", () => motion(msg.job, msg.steps, msg.features));
      break;
    case "stop":
      if (current[msg.kind] === msg.job) current[msg.kind] = 0;
      break;
    default:
      fail(msg.job ?? 0, "message", new Error(`unknown op ${msg.op}`));
  }
};
