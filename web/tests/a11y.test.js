// Accessibility rules checked by axe-core (npm, run inside the page): the widget open with an
// answer and its citation on a blog, and every page and dashboard tab. No violation of any
// impact is accepted; the keyboard-only flow itself is in widget.test.js. The browser asks for
// reduced motion: axe measures colour contrast as painted, and a panel caught in its 160 ms
// fade-in has its text at part opacity (a contrast failure of one run in three, not of the page).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { PASSWORD, blog, browser, call, protostar, startServer, until } from "./harness.js";

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const fixtures = new URL("./fixtures/", import.meta.url).pathname;
let server;
let chromium;
let slug;
let site;

/** axe's violations on the page, as readable lines. (Evaluated over the DevTools protocol, so the pages' CSP does not stop it.) */
async function violations(page) {
  await page.evaluate(axeSource);
  return page.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] })).violations
    .map((v) => `${v.impact} ${v.id}: ${v.help} [${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(" | ")}]`));
}

before(async () => {
  server = await startServer();
  chromium = await browser();
  const pair = await protostar(server, "jiwoo@example.org", "Jiwoo Han");
  const form = new FormData();
  form.append("file", new Blob([readFileSync(join(fixtures, "cover-letter-en.txt"))]), "cover-letter-en.txt");
  const doc = await (await fetch(`${server.public}/api/documents`, { method: "POST", headers: { Authorization: `Bearer ${pair.accessToken}` }, body: form })).json();
  await until("the document to be ready", 120000, async () =>
    (await call(server.public, `/api/documents/${doc.id}`, { token: pair.accessToken })).status === "ready");
  slug = (await call(server.public, "/api/chatbots/mine", { token: pair.accessToken })).slug;
  site = await blog(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Jiwoo's blog</title></head>
<body><main><h1>Jiwoo's blog</h1></main><script src="${server.public}/widget.js" data-chatbot="${slug}" data-lang="en" async></script></body></html>`);
  await call(server.public, "/api/chatbots/mine", { method: "PATCH", token: pair.accessToken, body: { allowedOrigins: [site.origin] } });
  await until("the blog's origin to be allowed", 15000, async () =>
    (await fetch(`${server.public}/api/chatbots/${slug}`, { headers: { Origin: site.origin } })).headers.get("access-control-allow-origin") === site.origin);
});

after(async () => {
  await site?.close();
  await chromium?.close();
  await server?.stop();
});

test("the widget, open with a cited answer, has no accessibility violation", async () => {
  const context = await chromium.newContext({ locale: "en-US", reducedMotion: "reduce" });
  const p = await context.newPage();
  await p.goto(site.origin);
  await p.click("protostar-chat .launcher");
  await p.locator("protostar-chat .status").waitFor();
  await p.fill("protostar-chat textarea", "What did Haneul do at Hanbit Pay?");
  await p.click("protostar-chat .send");
  await p.locator("protostar-chat .fb").waitFor({ timeout: 60000 });
  await p.locator("protostar-chat summary").first().click();
  assert.deepEqual(await violations(p), []);
  await context.close();
});

test("the pages and every dashboard tab have no accessibility violation", async () => {
  const context = await chromium.newContext({ locale: "en-US", reducedMotion: "reduce" });
  const p = await context.newPage();
  for (const [url, ready] of [
    [`${server.public}/dashboard`, "form.auth"],
    [`${server.admin}/admin`, "form.auth"],
    [`${server.public}/c/${slug}`, "#profile h1"],
  ]) {
    await p.goto(url);
    await p.locator(ready).waitFor();
    assert.deepEqual(await violations(p), [], url);
  }
  await p.goto(`${server.public}/dashboard`);
  await p.fill("#auth-email", "jiwoo@example.org");
  await p.fill("#auth-password", PASSWORD);
  await p.click("form.auth button[type=submit]");
  for (const [tab, ready] of [["documents", "table.docs tbody tr"], ["chatbot", "#snippet"], ["insights", ".totals"], ["talent", "#talent-q"], ["account", "#display-name"]]) {
    await p.click(`#tab-${tab}`);
    await p.locator(ready).first().waitFor();
    assert.deepEqual(await violations(p), [], tab);
  }
  await context.close();
});
