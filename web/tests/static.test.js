// The gateway's own web serving, against the real binary: fingerprinted assets with a year of
// cache, pages with a strict CSP and no violation when they run, the widget's stable address,
// `/internal/*` and the other listener's pages unreachable, and the widget's size budget.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { gzipSync } from "node:zlib";
import { ROOT, browser, call, startServer, watch } from "./harness.js";

const BUDGET = 25 * 1024;
let server;
let chromium;

before(async () => {
  server = await startServer();
  chromium = await browser();
});
after(async () => {
  await chromium?.close();
  await server?.stop();
});

test("the widget stays within 25 KB gzipped", async () => {
  const source = readFileSync(join(ROOT, "web/src/widget.js"));
  const size = gzipSync(source, { level: 9 }).length;
  console.log(`widget.js: ${source.length} bytes, ${size} bytes gzipped (budget ${BUDGET})`);
  assert.ok(size <= BUDGET, `widget.js is ${size} bytes gzipped, over the ${BUDGET}-byte budget`);
  // What the gateway really sends (its own gzip) is within the budget too.
  const res = await fetch(`${server.public}/widget.js`, { headers: { "Accept-Encoding": "gzip" } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-encoding"), "gzip");
  const sent = Number(res.headers.get("content-length"));
  assert.ok(sent > 0 && sent <= BUDGET, `served ${sent} bytes`);
  assert.equal(res.headers.get("cross-origin-resource-policy"), "cross-origin");
  assert.match(res.headers.get("cache-control"), /max-age=300/);
});

test("pages carry a strict CSP and name fingerprinted, long-cached assets", async () => {
  for (const [base, path] of [[server.public, "/dashboard"], [server.public, "/c/anyone"], [server.admin, "/admin"]]) {
    const res = await fetch(base + path);
    assert.equal(res.status, 200, path);
    assert.match(res.headers.get("content-type"), /^text\/html/);
    const csp = res.headers.get("content-security-policy");
    assert.match(csp, /script-src 'self'/, path);
    assert.match(csp, /frame-ancestors 'none'/, path);
    assert.doesNotMatch(csp, /unsafe/, path);
    const html = await res.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, `${path} has an inline script`);
    const assets = [...html.matchAll(/(?:src|href)="(\/(?:admin\/)?assets\/[^"]+)"/g)].map((m) => m[1]);
    assert.ok(assets.length >= 2, path);
    for (const a of assets) {
      assert.match(a, /\.[0-9a-f]{10}\.(js|css|svg)$/, a);
      const r = await fetch(base + a);
      assert.equal(r.status, 200, a);
      assert.match(r.headers.get("cache-control"), /max-age=31536000.*immutable/, a);
      const etag = r.headers.get("etag");
      assert.equal((await fetch(base + a, { headers: { "If-None-Match": etag } })).status, 304, a);
    }
  }
  // A stale or made-up asset name is a 404, not some other file.
  assert.equal((await fetch(`${server.public}/assets/dashboard.0000000000.js`)).status, 404);
});

test("the web routes keep /internal and the other listener's pages unreachable", async () => {
  for (const base of [server.public, server.admin]) {
    assert.equal((await fetch(`${base}/internal/chat/widget-origins`)).status, 404);
    assert.equal((await fetch(`${base}/assets/../internal/chat/widget-origins`)).status, 404);
  }
  assert.equal((await fetch(`${server.public}/admin`)).status, 404);
  assert.equal((await fetch(`${server.admin}/dashboard`)).status, 404);
  assert.equal((await fetch(`${server.admin}/widget.js`)).status, 404);
  assert.equal((await fetch(`${server.public}/c/a/b`)).status, 404);
  assert.equal((await fetch(`${server.public}/widget.js`, { method: "POST" })).status, 405);
  // The API is still the API.
  const doc = await call(server.public, "/api/openapi.json");
  assert.ok(doc.paths["/api/documents"]);
});

test("our pages run under their CSP without a violation or an error", async () => {
  const context = await chromium.newContext();
  const pages = [
    [`${server.public}/dashboard`, "form.auth"],
    [`${server.admin}/admin`, "form.auth"],
    // These two load the widget through the pages' one Trusted Types policy. The chatbot does
    // not exist: its 404 is expected, nothing else is.
    [`${server.public}/dashboard/preview?slug=nobody`, "protostar-chat .alert"],
    [`${server.public}/c/nobody`, "protostar-chat .alert"],
  ];
  for (const [url, ready] of pages) {
    const page = await context.newPage();
    const problems = await watch(page);
    await page.goto(url, { waitUntil: "networkidle" });
    await page.locator(ready).waitFor();
    assert.deepEqual(problems.filter((m) => !/status of 404/.test(m)), [], url);
    await page.close();
  }
  await context.close();
});
