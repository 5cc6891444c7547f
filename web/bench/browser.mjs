// The runtime in Chromium against the Python runtime, in one run on this machine:
//
//   node web/bench/browser.mjs [--steps 2000] [--warmup 2000] [--warm-ms 3000] [--json out.json]
//
// - per-step latency of `Stream.step` (batch 1) for each built-in model, in the page (onnxruntime-web
//   wasm, 1 and 2 threads; 2 threads need the page cross-origin isolated, which serve.mjs makes it:
//   checked), after --warmup calls (and at least --warm-ms of them: the browser optimizes hot wasm
//   code in the background), the median (and mean) of --steps calls each timed alone;
//   against Python's `edgeinfer.load(name).stream().step`, measured the same way (.venv/bin/python);
// - the load time of each model in the page (`load` + both graphs' sessions): first in a fresh page
//   (which includes starting onnxruntime: compiling its wasm), then again with the runtime started;
//   Python's (`load`, a stream and its first step, which creates the step session) beside them;
// - the bytes the demo page downloads until its three models are loaded (every response of the
//   server, summed), and what gzip (level 9) and brotli (quality 11) would make of them.
//
// Needs Chromium (/usr/bin/chromium, or CHROMIUM=path) and web/node_modules (npm ci).

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

import { chromium } from "playwright-core";

import { ROOTS, locate, serve } from "../demo/serve.mjs";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const MODELS = ["digits", "sentiment", "characters"];
const arg = (/** @type {string} */ name, /** @type {string} */ fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};
const STEPS = Number(arg("steps", "2000"));
const WARMUP = Number(arg("warmup", "2000"));
const WARM_MS = Number(arg("warm-ms", "3000"));
const JSON_OUT = arg("json", "");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PYTHON = join(REPO, ".venv", "bin", "python");

if (!existsSync(CHROMIUM)) {
  console.error(`Chromium not found at ${CHROMIUM}: install it (apt-get install chromium) or set CHROMIUM=path`);
  process.exit(1);
}

const loadBefore = loadavg()[0];
/** @type {Map<string, number>} bytes served per path while the demo loads */
const served = new Map();
let counting = false;
const { url, close } = await serve({
  onResponse: (path, status, bytes) => {
    if (counting && status === 200) served.set(path, (served.get(path) ?? 0) + bytes);
  },
});
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
const version = browser.version();

/**
 * Loads and steps in one fresh page. Runs in the page. `again`: load each model a second time
 * (the runtime already started), timed too.
 * @param {{models: string[], threads: number, steps: number, warmup: number, warmMs?: number, time: boolean, again?: boolean}} o
 */
async function pageBench({ models, threads, steps, warmup, warmMs = 0, time, again = false }) {
  // @ts-ignore: a URL of the page's server (demo/serve.mjs), resolved in the browser
  const ei = await import("/src/index.js");
  /** @type {Record<string, any>} */
  const out = { isolated: crossOriginIsolated, threads: ei.ort.env.wasm.numThreads, models: {} };
  for (const name of models) {
    const t0 = performance.now();
    const model = await ei.load(`/models/${name}.onnx`, { numThreads: threads });
    await model.loadSessions();
    const loadMs = performance.now() - t0;
    out.threads = ei.ort.env.wasm.numThreads;
    /** @type {Record<string, any>} */
    const r = { loadMs };
    out.models[name] = r;
    if (again) {
      const t1 = performance.now();
      await (await ei.load(`/models/${name}.onnx`, { numThreads: threads })).loadSessions();
      r.againMs = performance.now() - t1;
    }
    if (!time) continue;
    const stream = model.stream();
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
    const tokens = model.spec.input.kind !== "image";
    const vocab = tokens ? model.spec.input.vocab.length + 2 : 0;
    const inputs = Array.from({ length: 64 }, () => (tokens ? 2 + Math.floor(rand() * (vocab - 2))
      : Float32Array.from({ length: model.spec.input_size }, () => 2 * rand() - 1)));
    // warm: the browser optimizes hot wasm functions in the background, which takes time as well as calls
    const w0 = performance.now();
    for (let i = 0; i < warmup || performance.now() - w0 < warmMs; i++) await stream.step(inputs[i % 64]);
    const times = new Float64Array(steps);
    const start = performance.now();
    for (let i = 0; i < steps; i++) {
      const t = performance.now();
      await stream.step(inputs[i % 64]);
      times[i] = performance.now() - t;
    }
    r.meanUs = ((performance.now() - start) / steps) * 1000;
    times.sort();
    r.medianUs = times[steps >> 1] * 1000;
    r.p90Us = times[Math.floor(steps * 0.9)] * 1000;
  }
  return out;
}

/** @param {Record<string, any>} args */
async function inPage(args) {
  const page = await browser.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${url}test/harness.html`);
  try {
    return await page.evaluate(pageBench, /** @type {any} */ (args));
  } finally {
    await page.close();
    if (errors.length) console.error(errors.join("\n"));
  }
}

// 1. the demo's downloads
counting = true;
const demo = await browser.newPage();
const t0 = Date.now();
await demo.goto(url);
await demo.waitForFunction(() => /^Ready/.test(document.getElementById("status")?.textContent ?? ""), null, { timeout: 120_000 });
const demoReadyMs = Date.now() - t0;
const demoStatus = await demo.textContent("#runtime");
await demo.close();
counting = false;
/** @type {Array<{path: string, bytes: number, gzip: number, brotli: number}>} */
const downloads = [];
for (const [path, bytes] of [...served].sort((a, b) => b[1] - a[1])) {
  const found = await locate(path);
  let body = found ? readFileSync(found.file) : Buffer.alloc(0);
  if (found?.prefix === "/src/") body = Buffer.from(await (await fetch(new URL(path, url))).arrayBuffer());
  downloads.push({
    path, bytes,
    gzip: gzipSync(body, { level: 9 }).length,
    brotli: brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } }).length,
  });
}
const total = (/** @type {"bytes" | "gzip" | "brotli"} */ k) => downloads.reduce((n, d) => n + d[k], 0);

// 2. load times: each model first in a fresh page (which includes starting onnxruntime), then again
/** @type {Record<string, {loadMs: number, againMs: number}>} */
const cold = {};
for (const name of MODELS) cold[name] = (await inPage({ models: [name], threads: 1, steps: 0, warmup: 0, time: false, again: true })).models[name];

// 3. per-step latency, 1 and 2 threads (one page each: the thread count is fixed per page)
/** @type {Record<number, any>} */
const browserRuns = {};
for (const threads of [1, 2]) browserRuns[threads] = await inPage({ models: MODELS, threads, steps: STEPS, warmup: WARMUP, warmMs: WARM_MS, time: true });
await browser.close();
await close();

// 4. Python, the same way
const py = spawnSync(PYTHON, ["-c", `
import json, time
import numpy as np
import edgeinfer
out = {}
rng = np.random.default_rng(0)
for name in ${JSON.stringify(MODELS)}:
    t0 = time.perf_counter()
    model = edgeinfer.load(name)
    stream = model.stream()
    spec = model.spec
    if spec.input.kind == "image":
        xs = [rng.uniform(-1, 1, spec.input_size).astype(np.float32) for _ in range(64)]
    else:
        xs = [int(i) for i in rng.integers(2, spec.input.vocab_size, 64)]
    step = stream.step
    step(xs[0])  # the step graph's session is created at the first step
    load_ms = (time.perf_counter() - t0) * 1e3
    for i in range(${WARMUP}):
        step(xs[i % 64])
    times = []
    start = time.perf_counter()
    for i in range(${STEPS}):
        t = time.perf_counter_ns()
        step(xs[i % 64])
        times.append(time.perf_counter_ns() - t)
    mean = (time.perf_counter() - start) / ${STEPS} * 1e6
    times.sort()
    out[name] = {"medianUs": times[len(times) // 2] / 1e3, "meanUs": mean, "loadMs": load_ms}
print(json.dumps(out))
`], { encoding: "utf8", cwd: REPO });
if (py.status !== 0) {
  console.error(`Python measurement failed:\n${py.stderr}`);
  process.exit(1);
}
/** @type {Record<string, {medianUs: number, meanUs: number, loadMs: number}>} */
const python = JSON.parse(py.stdout.trim().split("\n").pop() ?? "{}");

// report
const f = (/** @type {number} */ x, d = 0) => x.toFixed(d);
const mb = (/** @type {number} */ n) => `${(n / 1e6).toFixed(2)} MB`;
const lines = [];
lines.push(`Chromium ${version} · onnxruntime-web wasm · ${STEPS} steps each after ${WARMUP} warm-up (and >= ${WARM_MS} ms)`);
lines.push(`this machine: ${availableParallelism()} cores, load average ${loadBefore.toFixed(1)} before and ${loadavg()[0].toFixed(1)} after`);
lines.push(`cross-origin isolated: ${browserRuns[2].isolated} (threads in effect: ${browserRuns[1].threads} and ${browserRuns[2].threads})`);
lines.push("");
lines.push("| model | step, Python (µs) | step, Chromium 1 thread (µs) | × Python | step, Chromium 2 threads (µs) | × Python "
  + "| load in the page: first model / runtime started | load, Python |");
lines.push("|---|---:|---:|---:|---:|---:|---:|---:|");
for (const name of MODELS) {
  const p = python[name].medianUs, one = browserRuns[1].models[name], two = browserRuns[2].models[name];
  lines.push(`| ${name} | ${f(p, 1)} | ${f(one.medianUs)} | ${f(one.medianUs / p, 1)}× | ${f(two.medianUs)} | ${f(two.medianUs / p, 1)}× `
    + `| ${f(cold[name].loadMs)} ms / ${f(cold[name].againMs)} ms | ${f(python[name].loadMs)} ms |`);
}
lines.push("");
lines.push("(medians; means: " + MODELS.map((n) => `${n} Python ${f(python[n].meanUs, 1)}, 1 thread ${f(browserRuns[1].models[n].meanUs)}, `
  + `2 threads ${f(browserRuns[2].models[n].meanUs)}`).join("; ") + " µs)");
lines.push("");
lines.push(`The demo until its three models are loaded (${(demoReadyMs / 1000).toFixed(1)} s here): ${downloads.length} responses, `
  + `${mb(total("bytes"))} (gzip -9 ${mb(total("gzip"))}, brotli 11 ${mb(total("brotli"))})`);
lines.push("");
lines.push("| file | bytes | gzip | brotli |");
lines.push("|---|---:|---:|---:|");
for (const d of downloads) lines.push(`| ${d.path} | ${d.bytes.toLocaleString("en")} | ${d.gzip.toLocaleString("en")} | ${d.brotli.toLocaleString("en")} |`);
lines.push(`| total | ${total("bytes").toLocaleString("en")} | ${total("gzip").toLocaleString("en")} | ${total("brotli").toLocaleString("en")} |`);
console.log(lines.join("\n"));
console.log(`\n${demoStatus}`);
if (JSON_OUT) {
  writeFileSync(JSON_OUT, JSON.stringify({ python, browser: browserRuns, cold, downloads, demoReadyMs, roots: ROOTS.map(([p]) => p) }, null, 1));
}
