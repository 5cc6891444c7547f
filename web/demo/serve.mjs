// The demo's static server: node's http module, no dependency.
//
//   node demo/serve.mjs            (from web/; or `npm run demo`) -> prints http://127.0.0.1:PORT/
//   PORT=8080 node demo/serve.mjs
//
// It serves these roots and nothing else:
//   /          web/demo/                               the page: index.html, app.js, worker.js, style.css
//   /src/      web/src/                                the runtime, as ES modules
//   /ort/      web/node_modules/onnxruntime-web/dist/  onnxruntime-web's browser build and wasm
//   /models/   edgeinfer/models/                       the built-in model files
//   /samples/  samples/                                basicmotions-test.csv, the motions panel's recordings
//   /test/     web/test/browser/                       harness.html, the browser tests' blank page
// Every response is cross-origin isolated (COOP same-origin + COEP require-corp), so the page
// may use SharedArrayBuffer and onnxruntime-web's wasm threads. Only GET and HEAD, only files
// with a known type, never outside a root (`..`, encoded or not, and symlinks leading out are
// refused).
//
// The runtime imports "onnxruntime-web" by its package name, which a browser cannot resolve
// (and module workers get no import maps), so JavaScript served from /src/ has that one
// specifier rewritten to the served browser build, as a bundler would do.

import { createReadStream, existsSync } from "node:fs";
import { readFile, realpath, stat } from "node:fs/promises";
import http from "node:http";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const WEB = fileURLToPath(new URL("../", import.meta.url));
const REPO = resolve(WEB, "..");

/** The browser build of onnxruntime-web the runtime's bare import is pointed at. */
export const ORT_BUILD = "/ort/ort.wasm.bundle.min.mjs";

/**
 * URL prefix -> directory (and, for two of them, the only files served there); first match wins.
 * @type {Array<[string, string, string[]?]>}
 */
export const ROOTS = [
  ["/src/", join(WEB, "src")],
  ["/ort/", join(WEB, "node_modules", "onnxruntime-web", "dist")],
  ["/models/", join(REPO, "edgeinfer", "models")],
  ["/samples/", join(REPO, "samples"), ["basicmotions-test.csv"]],
  ["/test/", join(WEB, "test", "browser"), ["harness.html"]],
  ["/", join(WEB, "demo"), ["index.html", "app.js", "worker.js", "style.css"]],
];

/** Served file types; anything else is a 404. */
export const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".csv": "text/csv; charset=utf-8",
  ".wasm": "application/wasm",
  ".onnx": "application/octet-stream",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".ico": "image/x-icon",
};

const ISOLATION = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
  "X-Content-Type-Options": "nosniff",
};

const BARE_ORT = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])onnxruntime-web\2/g;

/**
 * The file a URL path names, or null: decoded once, inside its root after normalization and
 * after symlinks are followed, a regular file of a served type.
 * @param {string} urlPath the request's path (no query)
 * @returns {Promise<{file: string, prefix: string} | null>}
 */
export async function locate(urlPath) {
  let path;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (!path.startsWith("/") || path.includes("\0") || path.includes("\\")) return null;
  if (path === "/") path = "/index.html";
  const p = path;
  const root = ROOTS.find(([prefix]) => p.startsWith(prefix));
  if (!root) return null;
  const [prefix, dir, only] = root;
  const rest = path.slice(prefix.length);
  if (only && !only.includes(rest)) return null;
  if (rest.split("/").some((part) => part === ".." || part === "." || part.startsWith("."))) return null;
  if (!(extname(rest).toLowerCase() in MIME)) return null;
  const file = resolve(dir, rest);
  try {
    const realDir = await realpath(dir);
    const real = await realpath(file);
    if (!real.startsWith(realDir + sep)) return null;
    if (!(await stat(real)).isFile()) return null;
    return { file: real, prefix };
  } catch {
    return null;
  }
}

/**
 * Handle one request.
 * @param {http.IncomingMessage} req @param {http.ServerResponse} res
 * @param {((path: string, status: number, bytes: number) => void) | undefined} onResponse
 */
async function handle(req, res, onResponse) {
  const send = (/** @type {number} */ code, /** @type {string} */ text, /** @type {Record<string, string>} */ extra = {}) => {
    res.writeHead(code, { ...ISOLATION, "Content-Type": "text/plain; charset=utf-8", ...extra });
    res.end(req.method === "HEAD" ? undefined : `${text}\n`);
  };
  if (req.method !== "GET" && req.method !== "HEAD") return send(405, "method not allowed", { Allow: "GET, HEAD" });
  const urlPath = (req.url ?? "/").split("?")[0].split("#")[0];
  const found = await locate(urlPath);
  if (!found) {
    onResponse?.(urlPath, 404, 0);
    return send(404, "not found");
  }
  const type = MIME[/** @type {keyof typeof MIME} */ (extname(found.file).toLowerCase())];
  const headers = { ...ISOLATION, "Content-Type": type, "Cache-Control": "no-cache" };
  if (found.prefix === "/src/" && found.file.endsWith(".js")) {
    const text = (await readFile(found.file, "utf8")).replace(BARE_ORT, (_, head, quote) => `${head}${quote}${ORT_BUILD}${quote}`);
    const body = Buffer.from(text);
    res.writeHead(200, { ...headers, "Content-Length": String(body.length) });
    onResponse?.(urlPath, 200, req.method === "HEAD" ? 0 : body.length);
    return res.end(req.method === "HEAD" ? undefined : body);
  }
  const { size } = await stat(found.file);
  res.writeHead(200, { ...headers, "Content-Length": String(size) });
  onResponse?.(urlPath, 200, req.method === "HEAD" ? 0 : size);
  if (req.method === "HEAD") return res.end();
  createReadStream(found.file).on("error", () => res.destroy()).pipe(res);
}

/**
 * Start the server.
 * @param {{port?: number, host?: string, onResponse?: (path: string, status: number, bytes: number) => void}} [options]
 *   port 0: a free one; onResponse: told of every response (its body's bytes), for measurements
 * @returns {Promise<{server: http.Server, url: string, close: () => Promise<void>}>}
 */
export function serve({ port = 0, host = "127.0.0.1", onResponse } = {}) {
  const server = http.createServer((req, res) => {
    handle(req, res, onResponse).catch(() => {
      if (!res.headersSent) res.writeHead(500, ISOLATION);
      res.end();
    });
  });
  return new Promise((done, fail) => {
    server.once("error", fail);
    server.listen(port, host, () => {
      const address = /** @type {import("node:net").AddressInfo} */ (server.address());
      const url = `http://${host}:${address.port}/`;
      const close = () => new Promise((ok) => {
        server.close(() => ok(undefined));
        server.closeAllConnections();
      });
      done({ server, url, close });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const raw = process.env.PORT ?? "0";
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) {
    console.error(`PORT must be a port number (0-65535), got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  const ort = ROOTS.find(([prefix]) => prefix === "/ort/")?.[1] ?? "";
  if (!existsSync(join(ort, "ort-wasm-simd-threaded.wasm"))) {
    console.error("web/node_modules/onnxruntime-web is missing: run `npm ci` in web/ first");
    process.exit(1);
  }
  try {
    const { url } = await serve({ port });
    console.log(`edgeinfer demo: ${url}  (Ctrl-C stops it)`);
  } catch (err) {
    console.error(`cannot start the demo server: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
