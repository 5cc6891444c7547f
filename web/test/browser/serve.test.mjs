// The demo server (web/demo/serve.mjs): cross-origin isolation headers on every response, the
// right MIME types, the runtime's bare "onnxruntime-web" import pointed at the served build, and
// nothing outside its roots (dot segments plain or encoded, other files of the demo folder,
// unknown types, other methods). Needs no browser: runs under plain `npm test` too.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";

import { ORT_BUILD, serve } from "../../demo/serve.mjs";

/** @type {Awaited<ReturnType<typeof serve>>} */
let server;
before(async () => {
  server = await serve();
});
after(async () => server.close());

/**
 * A raw request: the path is sent as written (fetch would resolve dot segments first).
 * @param {string} path @param {string} [method]
 * @returns {Promise<{status: number, headers: http.IncomingHttpHeaders, body: Buffer}>}
 */
function request(path, method = "GET") {
  const { port } = new URL(server.url);
  return new Promise((done, fail) => {
    const req = http.request({ host: "127.0.0.1", port, path, method }, (res) => {
      /** @type {Buffer[]} */
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", fail);
    req.end();
  });
}

test("serve: prints a 127.0.0.1 URL on a free port", () => {
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
});

test("serve: the demo, runtime, onnxruntime and models with their types, cross-origin isolated", async () => {
  const cases = [
    ["/", "text/html; charset=utf-8"],
    ["/index.html", "text/html; charset=utf-8"],
    ["/app.js", "text/javascript; charset=utf-8"],
    ["/worker.js", "text/javascript; charset=utf-8"],
    ["/style.css", "text/css; charset=utf-8"],
    ["/src/index.js", "text/javascript; charset=utf-8"],
    [ORT_BUILD, "text/javascript; charset=utf-8"],
    ["/ort/ort-wasm-simd-threaded.wasm", "application/wasm"],
    ["/models/digits.onnx", "application/octet-stream"],
    ["/test/harness.html", "text/html; charset=utf-8"],
    ["/index.html?x=1#y", "text/html; charset=utf-8"],
  ];
  for (const [path, type] of cases) {
    const r = await request(path, "HEAD");
    assert.equal(r.status, 200, path);
    assert.equal(r.headers["content-type"], type, path);
    assert.equal(r.headers["cross-origin-opener-policy"], "same-origin", path);
    assert.equal(r.headers["cross-origin-embedder-policy"], "require-corp", path);
    assert.ok(Number(r.headers["content-length"]) > 0, path);
    assert.equal(r.body.length, 0, `${path}: HEAD has no body`);
  }
  const model = await request("/models/digits.onnx");
  assert.equal(model.body.length, Number(model.headers["content-length"]));
});

test("serve: the runtime's bare onnxruntime-web import points at the served build", async () => {
  const r = await request("/src/runtime.js");
  const text = r.body.toString("utf8");
  assert.ok(text.includes(`from "${ORT_BUILD}"`), "rewritten");
  assert.ok(!/from\s*["']onnxruntime-web["']/.test(text), "no bare specifier left");
  assert.equal(r.body.length, Number(r.headers["content-length"]));
});

test("serve: nothing outside the roots, no other demo-folder files, no other methods", async () => {
  const refused = [
    "/../package.json", "/%2e%2e/package.json", "/src/../../package.json", "/src/..%2f..%2fpackage.json",
    "/models/..%2F..%2Fpyproject.toml", "/models/%2e%2e/%2e%2e/README.md", "/serve.mjs", "/demo/serve.mjs",
    "/src/.hidden.js", "/src/index.js%00.js", "/%E0%A4%A", "/src/", "/models/", "/src/nothing.js",
    "/test/browser.js", "/test/demo.test.mjs", "/ort/../package.json", "/ort/ort.min.mjs.map", "//etc/passwd",
    "/src/..\\..\\package.json",
  ];
  for (const path of refused) {
    const r = await request(path);
    assert.equal(r.status, 404, path);
    assert.equal(r.headers["cross-origin-embedder-policy"], "require-corp", path);
  }
  const post = await request("/index.html", "POST");
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, "GET, HEAD");
});
