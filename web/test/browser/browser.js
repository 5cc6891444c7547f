// Shared by the browser tests (parity.test.mjs, demo.test.mjs): Chromium through playwright-core,
// the demo server, the Python references.
//
// They need references from the Python runtime: run them through tests/web/test_web_browser.py
// (pytest), which writes the references, runs `node --test web/test/browser/` and checks what the
// tests write back. By hand, from the repository root:
//   .venv/bin/python -m tests.web.test_web_browser /tmp/browserrefs
//   EDGEINFER_BROWSER_REFS=/tmp/browserrefs node --test web/test/browser/
// Without EDGEINFER_BROWSER_REFS (plain `npm test`) they are skipped. With it, a missing Chromium
// is a failure that says how to install it, never a skip.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const REFS = process.env.EDGEINFER_BROWSER_REFS || "";
export const OUT = process.env.EDGEINFER_BROWSER_OUT || (REFS && join(REFS, "out"));
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
/** Test options: skipped (with the reason) when no references were written. */
export const NEED_REFS = { skip: !REFS && "EDGEINFER_BROWSER_REFS not set: run through tests/web/test_web_browser.py" };
export const CHROMIUM_MISSING = `Chromium not found at ${CHROMIUM}: the browser tests need it; install it `
  + "(apt-get install chromium) or set CHROMIUM to its path";

/** @type {any} */
let manifest = null;

/** The Python references (tests/web/test_web_browser.py). @returns {any} */
export function refs() {
  manifest ??= JSON.parse(readFileSync(join(REFS, "refs.json"), "utf8"));
  return manifest;
}

/** Write a file for the pytest driver to check on the Python side. @param {string} name @param {Uint8Array | string} data */
export function writeOut(name, data) {
  if (!OUT) return;
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, name), data);
}

/**
 * Chromium (headless, no sandbox: the tests run as root) and the demo server on a free port.
 * @returns {Promise<{browser: import("playwright-core").Browser, url: string, close: () => Promise<void>}>}
 */
export async function start() {
  assert.ok(existsSync(CHROMIUM), CHROMIUM_MISSING);
  const { chromium } = await import("playwright-core");
  const { serve } = await import("../../demo/serve.mjs");
  const server = await serve();
  let browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  } catch (err) {
    await server.close();
    throw err;
  }
  const b = browser;
  return {
    browser: b,
    url: server.url,
    close: async () => {
      await b.close();
      await server.close();
    },
  };
}

/**
 * A page whose errors fail the test: uncaught exceptions and console errors are collected.
 * @param {import("playwright-core").Browser} browser
 * @param {{width: number, height: number}} [viewport]
 */
export async function newPage(browser, viewport = { width: 1200, height: 900 }) {
  const page = await browser.newPage({ viewport });
  /** @type {string[]} */
  const errors = [];
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console error: ${m.text()}`);
  });
  return { page, errors };
}

export { assertClose, argmaxRows as labels } from "../helpers.js";
