// The demo page: drawing, typing and the controls here; every model call in worker.js (a module
// Web Worker), so the page never waits on a model. URL options: ?threads=N (onnxruntime-web wasm
// threads, default 1; more need the page to be cross-origin isolated, which serve.mjs makes it),
// ?pace=full (show results as fast as they come).

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
const params = new URLSearchParams(location.search);
const threads = Math.max(1, Math.min(16, Math.floor(Number(params.get("threads") ?? 1)) || 1));
const ROWS = 28;
const CLASSES = 10;
const INK = "#f8fafc";
const SLATE = "#0f172a";

/** @type {Record<string, any>} each model's spec and load time, once loaded */
const loaded = {};
let jobs = 0;
let pace = params.get("pace") === "full" ? "full" : "watch";
document.querySelector(`input[name=pace][value=${pace}]`).checked = true;

const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
worker.onerror = (event) => status(`The model worker failed to start (${event.message || "see the console"}).`, true);
worker.postMessage({ op: "init", threads, pace });
for (const radio of document.querySelectorAll("input[name=pace]")) {
  radio.addEventListener("change", () => {
    pace = radio.value;
    worker.postMessage({ op: "pace", pace });
  });
}

/** @param {string} text @param {boolean} [bad] */
function status(text, bad = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("bad", bad);
}

const pct = (/** @type {number} */ p, /** @type {number} */ digits = 1) => `${(100 * p).toFixed(digits)}%`;
const kb = (/** @type {number} */ n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`);
const secs = (/** @type {number} */ ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);

/** @type {Record<string, (msg: any) => void>} */
const handlers = {
  model(msg) {
    loaded[msg.name] = msg;
    const s = msg.spec;
    $(`${msg.name}-meta`).textContent = `${s.cell.toUpperCase()} · ${s.layers} layer${s.layers > 1 ? "s" : ""} · `
      + `${s.hidden} units · ${s.precision} · ${kb(msg.bytes)} · loaded in ${secs(msg.ms)}`;
    $(msg.name).dataset.state = "idle";
    if (msg.name === "sentiment") reviewChanged(true);
    if (msg.name === "motions") clearMotion();
  },
  ready(msg) {
    const names = Object.keys(loaded);
    if (names.length < 4) return;
    status(`Ready: ${names.length} models loaded.`);
    $("runtime").textContent = `onnxruntime-web ${msg.versions.web} · WebAssembly · ${msg.threads} thread${msg.threads > 1 ? "s" : ""}`
      + ` · ${msg.isolated ? "cross-origin isolated" : "not cross-origin isolated (one thread only)"} · load times: `
      + names.map((n) => `${n} ${secs(loaded[n].ms)}`).join(", ") + " (the first includes starting the runtime)";
  },
  error(msg) {
    const where = { digit: "digit-error", review: "review-error", generate: "gen-error", motion: "motion-error" }[msg.kind];
    if (where && msg.job && msg.job !== current[msg.kind]) return; // an old job's failure
    if (where) {
      const el = $(where);
      el.textContent = msg.message;
      el.hidden = false;
      if (msg.kind === "generate") generationEnded();
      if (msg.kind === "digit") $("digits").dataset.state = "error";
      if (msg.kind === "review") $("sentiment").dataset.state = "error";
      if (msg.kind === "motion") motionEnded("error");
    } else {
      status(`${msg.kind}: ${msg.message}`, true);
    }
  },
  "digit-input": (msg) => msg.job === current.digit && showInput(msg),
  "digit-row": (msg) => msg.job === current.digit && showRow(msg),
  "digit-done": (msg) => msg.job === current.digit && digitDone(msg),
  review: (msg) => msg.job === current.review && showReview(msg),
  chars: (msg) => msg.job === current.generate && showChars(msg),
  "generate-done": (msg) => msg.job === current.generate && generateDone(msg),
  "motion-step": (msg) => msg.job === current.motion && showMotionStep(msg),
  "motion-done": (msg) => msg.job === current.motion && motionDone(msg),
};
worker.onmessage = (event) => handlers[event.data.op]?.(event.data);

/** The latest job of each kind: results of older ones are ignored. */
const current = { digit: 0, review: 0, generate: 0, motion: 0 };

/** A canvas sized to its CSS box at the device's pixel ratio; returns its 2D context. @param {HTMLCanvasElement} canvas */
function fit(canvas, width = canvas.clientWidth, height = canvas.clientHeight) {
  const ratio = Math.min(2, window.devicePixelRatio || 1);
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d", { willReadFrequently: canvas.id === "pad" }));
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return ctx;
}

// ---- 1. digits ------------------------------------------------------------------------------

const pad = /** @type {HTMLCanvasElement} */ ($("pad"));
const padCtx = fit(pad);
const heat = /** @type {HTMLCanvasElement} */ ($("heat"));
const heatCtx = fit(heat);
const overlay = /** @type {HTMLCanvasElement} */ ($("input-overlay"));
const overlayCtx = fit(overlay);
const inputCtx = /** @type {CanvasRenderingContext2D} */ ($("input").getContext("2d"));
/** @type {Float32Array[]} probabilities after each row of the current drawing */
let rowProbs = [];
let inked = false;

for (let c = 0; c < CLASSES; c++) {
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.innerHTML = "<i></i>";
  $("bars").append(bar);
}

function clearPad() {
  padCtx.fillStyle = SLATE;
  padCtx.fillRect(0, 0, pad.clientWidth, pad.clientHeight);
  inked = false;
  $("pad-empty").hidden = false;
}

function clearReading() {
  rowProbs = [];
  inputCtx.clearRect(0, 0, 28, 28);
  overlayCtx.clearRect(0, 0, overlay.clientWidth, overlay.clientHeight);
  drawHeat(-1);
  showBars(null);
  $("digit-label").textContent = ""; // empty: the stylesheet shows "no answer yet"
  $("digit-label").classList.remove("sure");
  $("digit-prob").textContent = "";
  $("digit-rows").textContent = "";
  $("digit-exit").textContent = "";
  $("digit-error").hidden = true;
}

clearPad();
clearReading();

/** @type {{x: number, y: number} | null} */
let last = null;
const brush = () => pad.clientWidth * 0.075;

/** @param {PointerEvent} e */
function point(e) {
  const box = pad.getBoundingClientRect();
  return { x: e.clientX - box.left, y: e.clientY - box.top };
}

/** @param {{x: number, y: number}} a @param {{x: number, y: number}} b */
function segment(a, b) {
  padCtx.strokeStyle = INK;
  padCtx.lineWidth = brush();
  padCtx.lineCap = "round";
  padCtx.lineJoin = "round";
  padCtx.beginPath();
  padCtx.moveTo(a.x, a.y);
  padCtx.lineTo(b.x, b.y);
  padCtx.stroke();
}

pad.addEventListener("pointerdown", (e) => {
  if (e.button !== 0) return;
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  last = point(e);
  segment(last, last);
  inked = true;
  $("pad-empty").hidden = true;
});
pad.addEventListener("pointermove", (e) => {
  if (!last) return;
  const events = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
  for (const ev of events.length ? events : [e]) {
    const p = point(ev);
    segment(last, p);
    last = p;
  }
});
const strokeEnd = () => {
  if (!last) return;
  last = null;
  classify();
};
pad.addEventListener("pointerup", strokeEnd);
pad.addEventListener("pointercancel", strokeEnd);
$("clear").addEventListener("click", () => {
  worker.postMessage({ op: "stop", kind: "digit", job: current.digit }); // a reading in progress stops
  current.digit = ++jobs;
  clearPad();
  clearReading();
  $("digits").dataset.state = "idle";
});

/** Send the drawing (RGBA, as the canvas holds it) to be read. */
function classify() {
  if (!inked) return;
  const image = padCtx.getImageData(0, 0, pad.width, pad.height);
  current.digit = ++jobs;
  clearReading();
  $("digits").dataset.state = "running";
  worker.postMessage({ op: "digit", job: current.digit, image: { data: image.data, width: image.width, height: image.height } },
    [image.data.buffer]);
}

/** The preprocessed input (normalised floats) drawn back as gray pixels. @param {any} msg */
function showInput(msg) {
  const { mean, std } = loaded.digits.spec.input;
  const img = inputCtx.createImageData(msg.cols, msg.rows);
  for (let i = 0; i < msg.pixels.length; i++) {
    const v = Math.max(0, Math.min(1, msg.pixels[i] * std + mean));
    const g = Math.round(15 + v * 233); // slate to near white, like the pad
    img.data.set([g, g, Math.round(23 + v * 229), 255], 4 * i);
  }
  inputCtx.putImageData(img, 0, 0);
}

/** The current row on the input (a band) and the early-exit row (a line). @param {number} row @param {number} exit */
function drawOverlay(row, exit) {
  const w = overlay.clientWidth, h = overlay.clientHeight, rh = h / ROWS;
  overlayCtx.clearRect(0, 0, w, h);
  if (row >= 0 && row < ROWS - 1) {
    overlayCtx.fillStyle = "rgba(15, 23, 42, 0.55)"; // rows not read yet are dimmed
    overlayCtx.fillRect(0, (row + 1) * rh, w, h - (row + 1) * rh);
    overlayCtx.fillStyle = "rgba(250, 204, 21, 0.35)";
    overlayCtx.fillRect(0, row * rh, w, rh);
  }
  if (exit >= 0) exitLine(overlayCtx, w, (exit + 1) * rh);
}

/** @param {CanvasRenderingContext2D} ctx @param {number} w @param {number} y */
function exitLine(ctx, w, y) {
  ctx.save();
  ctx.strokeStyle = "#f59e0b";
  ctx.lineWidth = 2;
  ctx.setLineDash([5, 3]);
  ctx.beginPath();
  ctx.moveTo(0, y);
  ctx.lineTo(w, y);
  ctx.stroke();
  ctx.restore();
}

/** The heat map: one row per image row, one column per digit, shaded by probability. @param {number} exit */
function drawHeat(exit) {
  const w = heat.clientWidth, h = heat.clientHeight, cw = w / CLASSES, rh = h / ROWS;
  heatCtx.fillStyle = "#f8fafc";
  heatCtx.fillRect(0, 0, w, h);
  heatCtx.strokeStyle = "#e2e8f0";
  heatCtx.lineWidth = 1;
  for (let c = 1; c < CLASSES; c++) {
    heatCtx.beginPath();
    heatCtx.moveTo(Math.round(c * cw) + 0.5, 0);
    heatCtx.lineTo(Math.round(c * cw) + 0.5, h);
    heatCtx.stroke();
  }
  rowProbs.forEach((probs, r) => {
    for (let c = 0; c < CLASSES; c++) {
      const p = probs[c];
      if (p < 0.004) continue;
      heatCtx.fillStyle = `rgba(79, 70, 229, ${Math.min(1, 0.12 + 0.88 * p).toFixed(3)})`;
      heatCtx.fillRect(c * cw + 1, r * rh + 0.5, cw - 2, rh - 1);
    }
  });
  if (exit >= 0) exitLine(heatCtx, w, (exit + 1) * rh);
}

/** @param {Float32Array | null} probs */
function showBars(probs) {
  const top = probs ? probs.indexOf(Math.max(...probs)) : -1;
  [...$("bars").children].forEach((bar, c) => {
    const p = probs ? probs[c] : 0;
    bar.firstChild.style.height = `${(100 * p).toFixed(1)}%`;
    bar.classList.toggle("top", c === top);
    bar.title = probs ? `${c}: ${pct(p, 2)}` : "";
  });
}

/** @param {any} msg */
function showRow(msg) {
  rowProbs[msg.row] = msg.probs;
  drawHeat(-1);
  drawOverlay(msg.row, -1);
  showBars(msg.probs);
  const top = msg.probs.indexOf(Math.max(...msg.probs));
  $("digit-label").textContent = String(loaded.digits.spec.output.names[top]);
  $("digit-prob").textContent = pct(msg.probs[top], 2);
  $("digit-rows").textContent = `after row ${msg.row + 1} of ${ROWS}`;
}

/** @param {any} msg */
function digitDone(msg) {
  drawHeat(msg.exit);
  drawOverlay(-1, msg.exit);
  showBars(msg.probs);
  const label = $("digit-label");
  label.textContent = String(loaded.digits.spec.output.names[msg.label]);
  label.classList.add("sure");
  $("digit-prob").textContent = pct(msg.probs[msg.label], 2);
  $("digit-rows").textContent = `after all ${ROWS} rows · ${(1000 * msg.stepMs).toFixed(0)} µs per step`;
  const top = Math.max(...msg.probs);
  $("digit-exit").innerHTML = (msg.unclear
    ? "<b>Unclear drawing</b>: the ink does not stand out as a digit's would; the answer may be a guess. " : "")
    + (msg.exit >= 0
      ? `<b>Sure at row ${msg.exit + 1}</b> (top ≥ ${msg.threshold}): an early exit would skip the last ${ROWS - 1 - msg.exit} row${ROWS - 1 - msg.exit === 1 ? "" : "s"}.`
      : `Never reached ${msg.threshold} (top ${top.toFixed(3)} after all rows): no early exit.`);
  $("digits").dataset.state = "done";
}

// ---- 2. sentiment ---------------------------------------------------------------------------

const review = /** @type {HTMLTextAreaElement} */ ($("review"));
review.value = "The first hour is slow and the dialogue is clumsy, but the ending is wonderful: "
  + "moving, funny and beautifully acted. I loved it!";
/** @type {any} the latest result shown */
let reviewResult = null;
let reviewTimer = 0;
let replayTimer = 0;

/** @param {boolean} [animate] */
function reviewChanged(animate = false) {
  clearTimeout(reviewTimer);
  reviewTimer = window.setTimeout(() => {
    current.review = ++jobs;
    $("sentiment").dataset.state = "running";
    worker.postMessage({ op: "review", job: current.review, text: review.value, animate });
    pendingAnimate = animate;
  }, animate ? 0 : 120);
}
let pendingAnimate = false;
review.addEventListener("input", () => reviewChanged());
$("replay").addEventListener("click", () => reviewResult && playReview(reviewResult, true));

/** @param {any} msg */
function showReview(msg) {
  $("review-error").hidden = true;
  reviewResult = msg;
  playReview(msg, pendingAnimate && pace === "watch");
  pendingAnimate = false;
}

/** Show the first n words' results, all at once or one word at a time. @param {any} msg @param {boolean} animate */
function playReview(msg, animate) {
  clearTimeout(replayTimer);
  const total = msg.words.length;
  if (!animate || pace === "full" || total === 0) {
    renderReview(msg, total);
    $("sentiment").dataset.state = "done";
    return;
  }
  $("sentiment").dataset.state = "running";
  let n = 0;
  const tick = () => {
    n += 1;
    renderReview(msg, n);
    if (n < total) replayTimer = window.setTimeout(tick, Math.max(40, Math.min(140, 3000 / total)));
    else $("sentiment").dataset.state = "done";
  };
  tick();
}

/** A word's tint: green when it raised the probability, red when it lowered it. @param {number} delta */
function tint(delta) {
  const a = Math.min(0.85, 0.1 + Math.abs(delta) * 2.6);
  return delta >= 0 ? `rgba(22, 163, 74, ${a.toFixed(3)})` : `rgba(220, 38, 38, ${a.toFixed(3)})`;
}

const MIN_KNOWN_FRACTION = 0.6; // as edgeinfer/tasks/sentiment.py

/** @param {any} msg @param {number} n words shown */
function renderReview(msg, n) {
  const words = msg.words.slice(0, n);
  const p = n ? words[n - 1].p : null;
  $("review-p").textContent = p === null ? "" : pct(p, 2);
  $("review-p").classList.toggle("pos", p !== null && p >= 0.5);
  $("review-p").classList.toggle("neg", p !== null && p < 0.5);
  $("meter-fill").style.width = p === null ? "0" : `${(100 * p).toFixed(2)}%`;
  $("meter-fill").style.background = p === null ? "" : p >= 0.5 ? "var(--up)" : "var(--down)";
  $("review-label").textContent = p === null ? "no words yet"
    : `${p >= 0.5 ? "positive" : "negative"} after ${n} word${n === 1 ? "" : "s"}${n < msg.words.length ? ` of ${msg.words.length}` : ""}`;
  const total = msg.words.length;
  const known = msg.words.filter((/** @type {any} */ w) => !w.unknown).length;
  // the CLI's low-coverage rule (is_low_coverage): no known word, or under 60% of them known
  const low = n === total && total > 0 && (known === 0 || known < MIN_KNOWN_FRACTION * total);
  $("review-warning").hidden = !low;
  $("review-warning").textContent = low ? `Only ${known} of ${total} word${total === 1 ? "" : "s"} in the model's `
    + "vocabulary: the answer is little more than a guess." : "";

  const box = $("tinted");
  box.replaceChildren();
  const text = review.value;
  let at = 0;
  words.forEach((/** @type {any} */ w, /** @type {number} */ i) => {
    const before = i ? words[i - 1].p : 0.5;
    const span = document.createElement("span");
    span.className = `w${w.unknown ? " unk" : ""}`;
    span.style.background = tint(w.p - before);
    span.dataset.i = String(i);
    const delta = w.p - before;
    span.title = `${w.text}: ${pct(before)} → ${pct(w.p)} (${delta >= 0 ? "+" : "−"}${pct(Math.abs(delta))})`
      + (w.unknown ? ", not in the model's vocabulary" : "");
    if (msg.placed && w.start >= 0) {
      if (w.start > at) box.append(text.slice(at, w.start));
      span.textContent = text.slice(w.start, w.end);
      at = w.end;
    } else {
      if (i) box.append(" ");
      span.textContent = w.text;
    }
    box.append(span);
  });
  if (msg.placed && n === msg.words.length && at < text.length) box.append(text.slice(at));
  drawChart(words, -1);
}

/** P(positive) after each word, as a line over a 50% guide. @param {any[]} words @param {number} mark */
function drawChart(words, mark) {
  const svg = $("chart");
  const W = svg.clientWidth || 800, H = svg.clientHeight || 140, padL = 42, padR = 10, padT = 8, padB = 18;
  const total = Math.max(reviewResult ? reviewResult.words.length : words.length, 2);
  const x = (/** @type {number} */ i) => padL + (W - padL - padR) * (total === 1 ? 0.5 : i / (total - 1));
  const y = (/** @type {number} */ p) => padT + (H - padT - padB) * (1 - p);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const parts = [];
  for (const [p, label] of [[1, "100%"], [0.5, "50%"], [0, "0%"]]) {
    parts.push(`<line x1="${padL}" x2="${W - padR}" y1="${y(p)}" y2="${y(p)}" class="${p === 0.5 ? "mid" : "grid"}"/>`,
      `<text x="${padL - 6}" y="${y(p) + 4}" class="axis" text-anchor="end">${label}</text>`);
  }
  if (mark >= 0 && mark < words.length) {
    parts.push(`<line x1="${x(mark).toFixed(1)}" x2="${x(mark).toFixed(1)}" y1="${padT}" y2="${H - padB}" class="guide"/>`);
  }
  if (words.length) {
    const pts = words.map((w, i) => `${x(i).toFixed(1)},${y(w.p).toFixed(1)}`);
    parts.push(`<path d="M${x(0).toFixed(1)},${y(0.5)} L${pts.join(" L")} L${x(words.length - 1).toFixed(1)},${y(0.5)} Z" class="area"/>`);
    parts.push(`<polyline points="${pts.join(" ")}" class="line"/>`);
    words.forEach((w, i) => {
      const before = i ? words[i - 1].p : 0.5;
      const r = i === mark ? 5.5 : total > 80 ? 2 : 3.2;
      parts.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(w.p).toFixed(1)}" r="${r}" class="${w.p >= before ? "up" : "down"}${i === mark ? " mark" : ""}"/>`);
    });
  }
  parts.push(`<text x="${W - padR}" y="${H - 4}" class="axis" text-anchor="end">words →</text>`);
  svg.innerHTML = parts.join("");
}

$("tinted").addEventListener("pointerover", (/** @type {PointerEvent} */ e) => {
  const i = Number(/** @type {HTMLElement} */ (e.target).dataset?.i ?? -1);
  if (!reviewResult || i < 0 || Number.isNaN(i)) return;
  const words = reviewResult.words, w = words[i], before = i ? words[i - 1].p : 0.5, d = w.p - before;
  drawChart(words, i);
  $("chart-caption").textContent = `“${w.text}” (word ${i + 1}): ${pct(before)} → ${pct(w.p)}, `
    + `${d >= 0 ? "up" : "down"} ${pct(Math.abs(d))}${w.unknown ? " (not in the model's vocabulary: read as unknown)" : ""}`;
});
$("tinted").addEventListener("pointerleave", () => {
  if (reviewResult) drawChart(reviewResult.words, -1);
  $("chart-caption").textContent = "Point at a word to see how it moved the probability.";
});
drawChart([], -1);

// ---- 3. characters --------------------------------------------------------------------------

const temperature = /** @type {HTMLInputElement} */ ($("temperature"));
const showTemp = () => {
  const t = Number(temperature.value);
  $("temp-value").textContent = t === 0 ? "0 (greedy)" : t.toFixed(2);
};
temperature.addEventListener("input", showTemp);
showTemp();
const genText = /** @type {HTMLElement} */ ($("gen-text"));
let generated = 0;

$("gen-form").addEventListener("submit", (/** @type {Event} */ e) => {
  e.preventDefault();
  if (!loaded.characters) return;
  const prompt = $("prompt").value;
  const chars = Math.max(1, Math.min(20000, Math.floor(Number($("gen-length").value)) || 600));
  current.generate = ++jobs;
  generated = 0;
  $("gen-prompt").textContent = prompt;
  const vocab = new Set(/** @type {string[]} */ (loaded.characters.spec.input.vocab));
  const unknown = [...new Set([...prompt].filter((c) => !vocab.has(c)))];
  $("gen-warning").hidden = !unknown.length;
  $("gen-warning").textContent = unknown.length ? `Prompt characters outside the model's vocabulary, read as unknown: ${unknown.map((c) => JSON.stringify(c)).join(" ")}` : "";
  genText.textContent = "";
  $("candidates").replaceChildren();
  $("gen-stats").textContent = "";
  $("gen-error").hidden = true;
  $("caret").hidden = false;
  $("generate").disabled = true;
  $("stop").disabled = false;
  $("characters").dataset.state = "running";
  worker.postMessage({ op: "generate", job: current.generate, prompt, chars, temperature: Number(temperature.value) });
});
$("stop").addEventListener("click", () => worker.postMessage({ op: "stop", kind: "generate", job: current.generate }));

const visible = (/** @type {string} */ c) => (c === "\n" ? "⏎" : c === " " ? "␣" : c === "" ? "·" : c);

/** @param {any} msg */
function showChars(msg) {
  const out = $("output");
  const atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 24;
  genText.append(msg.text);
  generated = msg.count;
  if (atEnd) out.scrollTop = out.scrollHeight;
  const chips = msg.top.map(([c, p]) => {
    const chip = document.createElement("span");
    chip.className = "cand";
    chip.innerHTML = `<b></b><i></i>`;
    chip.firstChild.textContent = visible(c);
    chip.lastChild.textContent = pct(p, 0);
    chip.style.setProperty("--p", String(p));
    return chip;
  });
  $("candidates").replaceChildren(Object.assign(document.createElement("span"), { className: "cand-title", textContent: "next-character candidates:" }), ...chips);
  $("gen-stats").textContent = `${generated.toLocaleString("en")} characters`;
}

function generationEnded() {
  $("caret").hidden = true;
  $("generate").disabled = false;
  $("stop").disabled = true;
}

/** @param {any} msg */
function generateDone(msg) {
  generationEnded();
  $("gen-stats").textContent = `${msg.count.toLocaleString("en")} characters${msg.stopped ? " (stopped)" : ""} · `
    + `${(1000 * msg.stepMs).toFixed(0)} µs of model time per character`;
  $("characters").dataset.state = "done";
}

// ---- 4. motions ----------------------------------------------------------------------------

const CHANNEL_COLOURS = ["#4f46e5", "#0891b2", "#16a34a", "#d97706", "#db2777", "#64748b"];
const signal = /** @type {HTMLCanvasElement} */ ($("signal"));
const signalCtx = fit(signal);
const motionHeat = /** @type {HTMLCanvasElement} */ ($("motion-heat"));
const motionHeatCtx = fit(motionHeat);
/** @type {Array<{id: string, label: string, channels: string[], steps: Float32Array, features: number}>} */
let recordings = [];
/** @type {Float32Array[]} probabilities after each step of the recording playing */
let stepProbs = [];
let motionExit = -1;

/**
 * The recordings of a CSV with one row per step: recording, step, activity, then the channels.
 * @param {string} text
 */
function parseRecordings(text) {
  const lines = text.trim().split(/\r?\n/);
  const header = lines[0].split(",");
  const channels = header.slice(3);
  /** @type {Map<string, {id: string, label: string, rows: number[]}>} */
  const byId = new Map();
  for (const line of lines.slice(1)) {
    const cells = line.split(",");
    let rec = byId.get(cells[0]);
    if (!rec) byId.set(cells[0], rec = { id: cells[0], label: cells[2], rows: [] });
    rec.rows.push(...cells.slice(3).map(Number));
  }
  return [...byId.values()].map((r) => ({ id: r.id, label: r.label, channels, steps: Float32Array.from(r.rows),
    features: channels.length }));
}

fetch("/samples/basicmotions-test.csv").then((r) => {
  if (!r.ok) throw new Error(`the recordings: HTTP ${r.status}`);
  return r.text();
}).then((text) => {
  recordings = parseRecordings(text);
  const select = $("recording");
  for (const rec of recordings) select.append(new Option(`${rec.id} · ${rec.label}`, rec.id));
  select.value = recordings.find((r) => r.label === "walking")?.id ?? recordings[0].id;
  $("signal-legend").innerHTML = recordings[0].channels.map((c, i) => `<span style="--c: ${CHANNEL_COLOURS[i % 6]}">${c}</span>`).join("");
  clearMotion();
}).catch((err) => {
  $("motion-error").textContent = `Could not load the recordings (${err.message}).`;
  $("motion-error").hidden = false;
});

const recording = () => recordings.find((r) => r.id === $("recording").value);

function clearMotion() {
  stepProbs = [];
  motionExit = -1;
  drawSignal(0);
  drawMotionHeat();
  showMotionBars(null);
  $("motion-label").textContent = "";
  $("motion-label").classList.remove("sure");
  for (const id of ["motion-prob", "motion-steps", "motion-exit", "motion-truth"]) $(id).textContent = "";
  $("motion-error").hidden = true;
}

/** The channels of the recording up to `upto` steps, each scaled to its own range. @param {number} upto */
function drawSignal(upto) {
  const w = signal.clientWidth, h = signal.clientHeight;
  signalCtx.clearRect(0, 0, w, h);
  const rec = recording();
  if (!rec) return;
  const total = rec.steps.length / rec.features, dx = w / Math.max(1, total - 1);
  for (let c = 0; c < rec.features; c++) {
    let lo = Infinity, hi = -Infinity;
    for (let t = 0; t < total; t++) {
      const v = rec.steps[t * rec.features + c];
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const span = hi - lo || 1;
    signalCtx.strokeStyle = CHANNEL_COLOURS[c % 6];
    signalCtx.lineWidth = 1.4;
    signalCtx.beginPath();
    for (let t = 0; t < upto; t++) {
      const y = h - 6 - ((rec.steps[t * rec.features + c] - lo) / span) * (h - 12);
      if (t === 0) signalCtx.moveTo(0, y);
      else signalCtx.lineTo(t * dx, y);
    }
    signalCtx.stroke();
  }
  if (motionExit >= 0) {
    signalCtx.strokeStyle = "#d97706";
    signalCtx.setLineDash([4, 3]);
    signalCtx.beginPath();
    signalCtx.moveTo(motionExit * dx + 0.5, 0);
    signalCtx.lineTo(motionExit * dx + 0.5, h);
    signalCtx.stroke();
    signalCtx.setLineDash([]);
  }
}

/** The probability of each class (a row each) after each step (a column each). */
function drawMotionHeat() {
  const w = motionHeat.clientWidth, h = motionHeat.clientHeight;
  motionHeatCtx.fillStyle = "#f8fafc";
  motionHeatCtx.fillRect(0, 0, w, h);
  const rec = recording();
  const names = loaded.motions?.spec.output.names ?? [];
  if (!rec || !names.length) return;
  const total = rec.steps.length / rec.features, cw = w / total, rh = h / names.length;
  stepProbs.forEach((probs, t) => {
    for (let k = 0; k < names.length; k++) {
      if (probs[k] < 0.004) continue;
      motionHeatCtx.fillStyle = `rgba(79, 70, 229, ${Math.min(1, 0.12 + 0.88 * probs[k]).toFixed(3)})`;
      motionHeatCtx.fillRect(t * cw, k * rh + 0.5, Math.max(1, cw - 0.5), rh - 1);
    }
  });
  motionHeatCtx.fillStyle = "#334155";
  motionHeatCtx.font = "11px system-ui, sans-serif";
  names.forEach((name, k) => motionHeatCtx.fillText(name, 4, k * rh + rh / 2 + 4));
  if (motionExit >= 0) {
    motionHeatCtx.strokeStyle = "#d97706";
    motionHeatCtx.setLineDash([4, 3]);
    motionHeatCtx.beginPath();
    motionHeatCtx.moveTo((motionExit + 1) * cw + 0.5, 0);
    motionHeatCtx.lineTo((motionExit + 1) * cw + 0.5, h);
    motionHeatCtx.stroke();
    motionHeatCtx.setLineDash([]);
  }
}

/** @param {Float32Array | null} probs */
function showMotionBars(probs) {
  const names = loaded.motions?.spec.output.names ?? [];
  const bars = $("motion-bars");
  if (bars.children.length !== 3 * names.length) {
    bars.innerHTML = names.map((n) => `<span>${n}</span><span class="track"><i></i></span><span class="num"></span>`).join("");
  }
  const top = probs ? probs.indexOf(Math.max(...probs)) : -1;
  names.forEach((_, k) => {
    const track = bars.children[3 * k + 1];
    track.classList.toggle("lead", k === top);
    track.firstChild.style.width = `${(100 * (probs ? probs[k] : 0)).toFixed(1)}%`;
    bars.children[3 * k + 2].textContent = probs ? pct(probs[k]) : "";
  });
}

function playMotion() {
  const rec = recording();
  if (!rec || !loaded.motions) return;
  clearMotion();
  current.motion = ++jobs;
  $("motions").dataset.state = "running";
  $("play").disabled = true;
  const steps = rec.steps.slice();
  worker.postMessage({ op: "motion", job: current.motion, steps, features: rec.features }, [steps.buffer]);
}

/** @param {string} state */
function motionEnded(state) {
  $("play").disabled = false;
  $("motions").dataset.state = state;
}

/** @param {any} msg */
function showMotionStep(msg) {
  const rec = recording();
  if (!rec) return;
  stepProbs[msg.step] = msg.probs;
  drawSignal(msg.step + 1);
  drawMotionHeat();
  showMotionBars(msg.probs);
  const top = msg.probs.indexOf(Math.max(...msg.probs));
  $("motion-label").textContent = loaded.motions.spec.output.names[top];
  $("motion-prob").textContent = pct(msg.probs[top], 2);
  const total = rec.steps.length / rec.features;
  $("motion-steps").textContent = `after step ${msg.step + 1} of ${total} (${((msg.step + 1) / 10).toFixed(1)} s)`;
}

/** @param {any} msg */
function motionDone(msg) {
  const rec = recording();
  const names = loaded.motions.spec.output.names;
  const total = rec ? rec.steps.length / rec.features : stepProbs.length;
  motionExit = msg.exit;
  drawSignal(total);
  drawMotionHeat();
  showMotionBars(msg.probs);
  $("motion-label").textContent = names[msg.label];
  $("motion-label").classList.add("sure");
  $("motion-prob").textContent = pct(msg.probs[msg.label], 2);
  $("motion-steps").textContent = `after all ${total} steps · ${(1000 * msg.stepMs).toFixed(0)} µs per step`;
  $("motion-exit").innerHTML = msg.exit >= 0
    ? `<b>Sure at step ${msg.exit + 1}</b> (top ≥ ${msg.threshold}): an early exit would skip the last ${total - 1 - msg.exit} step${total - 1 - msg.exit === 1 ? "" : "s"}.`
    : `Never reached ${msg.threshold} (top ${Math.max(...msg.probs).toFixed(3)} after all steps): no early exit.`;
  $("motion-truth").textContent = rec ? `recorded: ${rec.label} ${rec.label === names[msg.label] ? "✓" : "✗"}` : "";
  motionEnded("done");
}

$("play").addEventListener("click", playMotion);
$("next-recording").addEventListener("click", () => {
  const select = $("recording");
  select.selectedIndex = (select.selectedIndex + 1) % Math.max(1, select.options.length);
  playMotion();
});
$("recording").addEventListener("change", () => {
  current.motion = 0;
  motionEnded(loaded.motions ? "idle" : "loading");
  clearMotion();
});

window.addEventListener("resize", () => {
  if (reviewResult) drawChart(reviewResult.words, -1);
});
