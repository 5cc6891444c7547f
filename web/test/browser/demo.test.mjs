// The demo page (web/demo/) in Chromium, used as a person would: a "7" drawn on the pad with
// pointer events is read row by row and shown as 7 with its probability and early-exit row (the
// pixels the page drew are written out: the pytest driver checks them against Python); a typed
// review's probability of positive is Python's within 1e-3; 50 greedy characters (temperature 0)
// are Python's text; a held-out walking recording played in the motions panel ends on Python's
// label, probability and early-exit step; Stop stops a long generation; nothing runs on the
// page's own thread.
//
// EDGEINFER_DEMO_SCREENSHOT=docs/demo.png also saves a screenshot of the page after drawing,
// typing and generating (this test alone: node --test web/test/browser/demo.test.mjs). docs/demo.png
// is that screenshot in 256 colours (no visible change, a third of the bytes):
//   .venv/bin/python -c "from PIL import Image; im = Image.open('docs/demo.png').convert('RGB');
//     im.quantize(256, Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE).save('docs/demo.png', optimize=True)"

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { NEED_REFS, newPage, refs, start, writeOut } from "./browser.js";

const SCREENSHOT = process.env.EDGEINFER_DEMO_SCREENSHOT || "";
/** @type {Awaited<ReturnType<typeof start>> | null} */
let env = null;

before(async () => {
  if (!NEED_REFS.skip || SCREENSHOT) env = await start();
});
after(async () => env?.close());

/** @param {import("playwright-core").Page} page @param {string} section @param {string} state */
const waitState = (page, section, state, timeout = 60_000) => page.waitForFunction(
  ([id, s]) => document.getElementById(id)?.dataset.state === s, [section, state], { timeout });

/** The demo, its three models loaded. */
async function openDemo() {
  const { page, errors } = await newPage(/** @type {any} */ (env).browser);
  await page.goto(/** @type {any} */ (env).url);
  await page.waitForFunction(() => /^Ready/.test(document.getElementById("status")?.textContent ?? ""), null, { timeout: 90_000 });
  return { page, errors };
}

/**
 * Draw a stroke on the pad: points in [0, 1] of its box, with pointer (mouse) events in between.
 * @param {import("playwright-core").Page} page @param {Array<[number, number]>} points
 */
async function stroke(page, points) {
  await page.locator("#pad").scrollIntoViewIfNeeded();
  const box = await page.locator("#pad").boundingBox();
  assert.ok(box);
  const at = (/** @type {[number, number]} */ [x, y]) => /** @type {[number, number]} */ ([box.x + x * box.width, box.y + y * box.height]);
  await page.mouse.move(...at(points[0]));
  await page.mouse.down();
  for (const p of points.slice(1)) await page.mouse.move(...at(p), { steps: 12 });
  await page.mouse.up();
}

/** A "7": the top bar, then the long diagonal. @param {import("playwright-core").Page} page */
async function drawSeven(page) {
  await stroke(page, [[0.27, 0.22], [0.5, 0.21], [0.74, 0.22], [0.62, 0.48], [0.5, 0.8]]);
  await waitState(page, "digits", "done");
}

/** @param {import("playwright-core").Page} page @param {string} text @param {number} words */
async function typeReview(page, text, words) {
  await page.fill("#review", text);
  await page.waitForFunction(([t, n]) => document.getElementById("sentiment")?.dataset.state === "done"
    && document.getElementById("tinted")?.textContent === t
    && (document.getElementById("review-label")?.textContent ?? "").endsWith(`after ${n} word${n === 1 ? "" : "s"}`),
  [text, words], { timeout: 30_000 });
}

/**
 * Play a recording in the motions panel at full pace and wait for its end.
 * @param {import("playwright-core").Page} page @param {string} id
 */
async function playRecording(page, id) {
  await page.click("input[name=pace][value=full]");
  await page.selectOption("#recording", id);
  await page.click("#play");
  await waitState(page, "motions", "done");
}

/** @param {import("playwright-core").Page} page @param {{prompt: string, chars: number, temperature: number}} o */
async function startGeneration(page, { prompt, chars, temperature }) {
  await page.fill("#prompt", prompt);
  await page.fill("#gen-length", String(chars));
  await page.$eval("#temperature", (el, t) => {
    /** @type {HTMLInputElement} */ (el).value = String(t);
    el.dispatchEvent(new Event("input", { bubbles: true }));
  }, temperature);
  await page.click("#generate");
}

test("demo: a drawn 7, a typed review and 50 greedy characters show Python's answers", NEED_REFS, async () => {
  const demo = refs().demo;
  const { page, errors } = await openDemo();
  try {
    // the models run in the worker: it fetched the model files and the wasm, the page did not
    const names = () => performance.getEntriesByType("resource").map((e) => new URL(e.name).pathname);
    const inPage = await page.evaluate(names);
    const worker = page.workers().find((w) => w.url().endsWith("/worker.js"));
    assert.ok(worker, "the demo's worker runs");
    const inWorker = await worker.evaluate(names);
    assert.deepEqual(inPage.filter((p) => /^\/models\/|\.wasm$/.test(p)), [], "no model work on the page's thread");
    for (const name of ["digits", "sentiment", "characters", "motions"]) assert.ok(inWorker.includes(`/models/${name}.onnx`), name);

    await drawSeven(page);
    const label = (await page.textContent("#digit-label"))?.trim();
    const prob = (await page.textContent("#digit-prob"))?.trim() ?? "";
    const exit = (await page.textContent("#digit-exit"))?.trim() ?? "";
    assert.equal(label, "7", `the page shows ${label} (${prob})`);
    assert.match(prob, /^\d{1,3}\.\d\d%$/);
    assert.match(await page.textContent("#digit-rows") ?? "", /after all 28 rows/);
    // the heat map was filled for all 28 rows: its last row has ink
    const drawn = await page.evaluate(() => {
      const pad = /** @type {HTMLCanvasElement} */ (document.getElementById("pad"));
      const img = /** @type {CanvasRenderingContext2D} */ (pad.getContext("2d")).getImageData(0, 0, pad.width, pad.height);
      return { width: img.width, height: img.height, rgba: Array.from(img.data) };
    });
    writeOut("digit.json", JSON.stringify({ label, prob, exit, width: drawn.width, height: drawn.height }));
    writeOut("digit.rgba", Uint8Array.from(drawn.rgba));

    await typeReview(page, demo.review.text, demo.review.words);
    const shown = Number((await page.textContent("#review-p"))?.replace("%", "")) / 100;
    assert.ok(Math.abs(shown - demo.review.positive) <= 1e-3,
      `the page shows P(positive) ${shown}; Python gives ${demo.review.positive}`);
    assert.equal(await page.locator("#tinted .w").count(), demo.review.words, "each word tinted");
    assert.equal(await page.isHidden("#review-warning"), true, "a review of known words: no warning");
    await typeReview(page, "zzqx qqxv good", 3); // the CLI's low-coverage rule: 1 of 3 words known
    assert.equal(await page.textContent("#review-warning"),
      "Only 1 of 3 words in the model's vocabulary: the answer is little more than a guess.");
    await typeReview(page, demo.review.text, demo.review.words);
    assert.equal(await page.isHidden("#review-warning"), true);

    await startGeneration(page, { prompt: demo.generate.prompt, chars: demo.generate.chars, temperature: 0 });
    await waitState(page, "characters", "done");
    assert.equal(await page.textContent("#gen-prompt"), demo.generate.prompt);
    assert.equal(await page.textContent("#gen-text"), demo.generate.text, "50 greedy characters, as Python's");
    assert.match(await page.textContent("#gen-stats") ?? "", /^50 characters ·/);
    assert.equal(await page.isHidden("#gen-warning"), true, "a prompt in the vocabulary: no warning");
    await startGeneration(page, { prompt: "Fürst", chars: 5, temperature: 0 });
    await waitState(page, "characters", "done");
    assert.equal(await page.textContent("#gen-warning"), 'Prompt characters outside the model\'s vocabulary, read as unknown: "ü"');

    await playRecording(page, demo.motion.recording);
    assert.equal((await page.textContent("#motion-label"))?.trim(), demo.motion.label);
    const motionShown = Number((await page.textContent("#motion-prob"))?.replace("%", "")) / 100;
    assert.ok(Math.abs(motionShown - demo.motion.prob) <= 1e-3,
      `the page shows ${motionShown} for ${demo.motion.label}; Python gives ${demo.motion.prob}`);
    const sure = (await page.textContent("#motion-exit"))?.match(/Sure at step (\d+)/);
    assert.equal(sure ? Number(sure[1]) : null, demo.motion.exit, "the early-exit step Python gives");
    assert.equal(await page.textContent("#motion-truth"), `recorded: ${demo.motion.truth} ${demo.motion.truth === demo.motion.label ? "✓" : "✗"}`);
    assert.match(await page.textContent("#motion-steps") ?? "", /^after all 100 steps ·/);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test("demo: Stop ends a long generation, and Clear empties the pad", NEED_REFS, async () => {
  const { page, errors } = await openDemo();
  try {
    await startGeneration(page, { prompt: "JULIET:", chars: 20000, temperature: 0.8 });
    await page.waitForFunction(() => (document.getElementById("gen-text")?.textContent?.length ?? 0) >= 20);
    assert.equal(await page.isDisabled("#generate"), true);
    await page.click("#stop");
    await waitState(page, "characters", "done", 10_000);
    const stats = await page.textContent("#gen-stats") ?? "";
    assert.match(stats, /\(stopped\)/);
    assert.ok(Number(stats.split(" ")[0].replace(/,/g, "")) < 20000, stats);
    assert.equal(await page.isEnabled("#generate"), true);

    await drawSeven(page);
    await page.click("#clear");
    assert.equal(await page.textContent("#digit-label"), ""); // shown as "no answer yet" (CSS)
    assert.equal(await page.$eval("#digit-label", (el) => getComputedStyle(el, "::after").content), '"no answer yet"');
    assert.equal(await page.isVisible("#pad-empty"), true);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test("demo: on a phone (390 x 844), nothing is wider than the screen and a drawn 7 reads as 7", NEED_REFS, async () => {
  const { page, errors } = await newPage(/** @type {any} */ (env).browser, { width: 390, height: 844 });
  try {
    await page.goto(/** @type {any} */ (env).url);
    await page.waitForFunction(() => /^Ready/.test(document.getElementById("status")?.textContent ?? ""), null, { timeout: 90_000 });
    const wide = await page.evaluate(() => [document.documentElement.scrollWidth, ...[...document.querySelectorAll("main > section")]
      .map((el) => el.getBoundingClientRect().right)]);
    assert.ok(wide.every((w) => w <= 390), `wider than the screen: ${wide.join(", ")}`);
    await drawSeven(page);
    assert.equal((await page.textContent("#digit-label"))?.trim(), "7");
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test("demo: screenshot", { skip: !SCREENSHOT && "EDGEINFER_DEMO_SCREENSHOT not set" }, async () => {
  const { page } = await openDemo();
  try {
    await page.click("input[name=pace][value=full]");
    await drawSeven(page);
    await typeReview(page, "The first hour is slow and the dialogue is clumsy, but the ending is wonderful: moving, funny "
      + "and beautifully acted. I loved it!", 24);
    await startGeneration(page, { prompt: "ROMEO:", chars: 300, temperature: 0.6 });
    await waitState(page, "characters", "done");
    await playRecording(page, "test-20");
    await page.hover("#tinted .w >> nth=16");
    await page.$eval("#output", (el) => { el.scrollTop = 0; }); // the prompt in view
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  } finally {
    await page.close();
  }
});
