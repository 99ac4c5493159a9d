// The widget where it lives: on a protostar's blog, another origin than ours, under a strict
// CSP. A guest asks and sees the answer stream in with its citations; the fourth question meets
// the quota message; a site the owner did not allow gets an explanation; and all of it works
// with the keyboard alone.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { blog, browser, call, protostar, shot, startServer, until, watch } from "./harness.js";

const fixtures = new URL("./fixtures/", import.meta.url).pathname;
let server;
let chromium;
let slug;
let allowed;
let refused;
let owner;

/** The blog's own CSP: scripts from itself and us, styles from itself only, calls to us only. */
const strictCsp = (api) => `default-src 'none'; script-src 'self' ${api}; style-src 'self'; connect-src ${api}; img-src 'self'; base-uri 'none'; form-action 'self'`;

const page = (api, bot) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Haneul's blog</title></head>
<body><h1>Haneul's blog</h1><p>Notes on payments and reliability.</p><a href="#about">About</a>
<script src="${api}/widget.js" data-chatbot="${bot}" data-lang="en" async></script></body></html>`;

before(async () => {
  server = await startServer();
  chromium = await browser();
  const pair = await protostar(server, "haneul@example.org", "Haneul Kim");
  owner = pair;
  const form = new FormData();
  form.append("file", new Blob([readFileSync(join(fixtures, "cover-letter-en.txt"))]), "cover-letter-en.txt");
  const res = await fetch(`${server.public}/api/documents`, { method: "POST", headers: { Authorization: `Bearer ${pair.accessToken}` }, body: form });
  assert.equal(res.status, 202, await res.clone().text());
  const doc = await res.json();
  await until("the document to be ready", 120000, async () =>
    (await call(server.public, `/api/documents/${doc.id}`, { token: pair.accessToken })).status === "ready");

  const mine = await call(server.public, "/api/chatbots/mine", { token: pair.accessToken });
  slug = mine.slug;
  allowed = await blog(page(server.public, slug), { "Content-Security-Policy": strictCsp(server.public) });
  refused = await blog(page(server.public, slug), { "Content-Security-Policy": strictCsp(server.public) });
  await call(server.public, "/api/chatbots/mine", {
    method: "PATCH", token: pair.accessToken,
    body: { greeting: "Hello! I answer questions about Haneul's career.", allowedOrigins: [allowed.origin] },
  });
  // The gateway re-reads widget origins every second in tests.
  await until("the blog's origin to be allowed", 15000, async () => {
    const r = await fetch(`${server.public}/api/chatbots/${slug}`, { headers: { Origin: allowed.origin } });
    return r.headers.get("access-control-allow-origin") === allowed.origin;
  });
});

after(async () => {
  await allowed?.close();
  await refused?.close();
  await chromium?.close();
  await server?.stop();
});

/** Sends a question through the widget's form and waits for its answer to finish streaming. */
async function ask(p, question) {
  await p.fill("protostar-chat textarea", question);
  await p.click("protostar-chat .send");
}

const lastAnswer = (p) => p.locator("protostar-chat .msg.bot:not(.greeting)").last();

test("a guest on an allowed blog sees a streamed, cited answer, then the quota message", async () => {
  const context = await chromium.newContext({ viewport: { width: 1100, height: 800 }, locale: "en-US" });
  const p = await context.newPage();
  const problems = await watch(p);
  await p.goto(allowed.origin);
  // The launcher paints before any API call returns.
  await p.locator("protostar-chat .launcher").waitFor();
  await p.click("protostar-chat .launcher");
  await p.locator("protostar-chat .greeting").waitFor();
  await p.locator("protostar-chat .status", { hasText: "3 questions left" }).waitFor();
  await shot(p, "widget-open");

  // Record the answer's text as it grows: more than one intermediate length means it streamed.
  await p.evaluate(() => {
    window.__lengths = [];
    const root = document.querySelector("protostar-chat").shadowRoot;
    new MutationObserver(() => {
      const a = [...root.querySelectorAll(".msg.bot:not(.greeting) .text")].pop();
      if (a) window.__lengths.push(a.textContent.length);
    }).observe(root, { subtree: true, childList: true, characterData: true });
  });
  // The local model answers faster than a camera: here the page reads the stream 16
  // characters at a time, 60 ms apart, so that it can be photographed half-way.
  await p.evaluate(() => {
    const read = ReadableStreamDefaultReader.prototype.read;
    const left = new WeakMap();
    window.__restoreRead = () => { ReadableStreamDefaultReader.prototype.read = read; };
    ReadableStreamDefaultReader.prototype.read = async function slowRead() {
      await new Promise((r) => setTimeout(r, 60));
      let text = left.get(this);
      if (!text) {
        const r = await read.call(this);
        if (r.done || typeof r.value !== "string") return r;
        text = r.value;
      }
      if (text.length > 16) left.set(this, text.slice(16));
      else left.delete(this);
      return { done: false, value: text.slice(0, 16) };
    };
  });
  await ask(p, "What did Haneul do at Hanbit Pay?");
  await p.waitForFunction(() => {
    const root = document.querySelector("protostar-chat").shadowRoot;
    const text = root.querySelector(".msg.bot.streaming .text");
    return text && text.textContent.length > 60;
  }, null, { timeout: 60000, polling: 50 });
  await shot(p, "widget-streaming");
  const answer = lastAnswer(p);
  await answer.locator(".fb").waitFor({ timeout: 120000 });
  await p.evaluate(() => window.__restoreRead());
  const lengths = await p.evaluate(() => [...new Set(window.__lengths)].filter((n) => n > 0));
  assert.ok(lengths.length > 1, `the answer arrived in one piece: ${lengths}`);
  assert.ok((await answer.locator(".text").textContent()).length > 0);

  // Its citation: document, location, and the quoted passage behind a disclosure.
  const cite = answer.locator("li details").first();
  await cite.waitFor();
  assert.match(await cite.locator("summary").textContent(), /\[\d+\].*cover-letter|\[\d+\]/i);
  await cite.locator("summary").click();
  const quote = await cite.locator("blockquote").textContent();
  assert.ok(quote.trim().length > 10, quote);
  await shot(p, "widget-answer");

  await ask(p, "Which languages does Haneul use?");
  await lastAnswer(p).locator(".fb").waitFor({ timeout: 120000 });
  await ask(p, "Has Haneul run an on-call rotation?");
  await lastAnswer(p).locator(".fb").waitFor({ timeout: 120000 });
  await p.locator("protostar-chat .status", { hasText: "0 questions left" }).waitFor();

  // The fourth: refused before any stream, explained, with a way to keep going.
  await ask(p, "Where did Haneul study?");
  const alert = p.locator("protostar-chat .alert");
  await alert.waitFor();
  assert.match(await alert.textContent(), /used your 3 free questions/);
  const link = await alert.locator("a").getAttribute("href");
  assert.equal(link, `${server.public}/c/${slug}#sign-in`);
  assert.ok(await p.locator("protostar-chat textarea").isDisabled());
  await shot(p, "widget-quota");

  // Under the blog's strict CSP: no violation, no error but the refused ask's 429 itself.
  const unexpected = problems.filter((m) => !/status of 429/.test(m));
  assert.deepEqual(unexpected, []);
  await context.close();
});

test("the launcher paints while the API has not answered anything", async () => {
  const context = await chromium.newContext({ locale: "ko-KR" });
  const p = await context.newPage();
  // Every API call hangs; the widget's script itself loads.
  await p.route(`${server.public}/api/**`, () => {});
  await p.goto(allowed.origin);
  const launcher = p.locator("protostar-chat .launcher");
  await launcher.waitFor({ timeout: 5000 });
  assert.ok(await launcher.isVisible());
  await context.close();
});

test("a site the owner did not allow gets an explanation", async () => {
  const context = await chromium.newContext({ locale: "en-US" });
  const p = await context.newPage();
  const violations = [];
  p.on("console", (m) => { if (/CSP|Content Security Policy/i.test(m.text())) violations.push(m.text()); });
  await p.goto(refused.origin);
  await p.click("protostar-chat .launcher");
  const alert = p.locator("protostar-chat .alert");
  await alert.waitFor();
  assert.match(await alert.textContent(), new RegExp(`does not answer on this site \\(${refused.origin.replace(/[.:/]/g, "\\$&")}\\)`));
  assert.ok(await p.locator("protostar-chat textarea").isDisabled());
  assert.deepEqual(violations, []);
  await context.close();
});

test("keyboard only: open, ask, read the answer, close", async () => {
  const context = await chromium.newContext({ locale: "en-US" });
  const p = await context.newPage();
  await p.goto(allowed.origin);
  await p.locator("protostar-chat .launcher").waitFor();
  // Tab from the top of the page to the launcher (past the blog's own link).
  const focused = () => p.evaluate(() => {
    const host = document.activeElement;
    const inner = host && host.shadowRoot ? host.shadowRoot.activeElement : null;
    return inner ? `${inner.tagName.toLowerCase()}.${inner.className}` : host ? host.tagName.toLowerCase() : "";
  });
  for (let i = 0; i < 5 && (await focused()) !== "button.launcher"; i++) await p.keyboard.press("Tab");
  assert.equal(await focused(), "button.launcher");
  await p.keyboard.press("Enter");
  assert.equal(await p.locator("protostar-chat .launcher").getAttribute("aria-expanded"), "true");
  assert.equal(await focused(), "textarea.");
  await p.keyboard.type("Where did Haneul move batch jobs to?");
  await p.keyboard.press("Enter");
  const answer = lastAnswer(p);
  await answer.locator(".fb").waitFor({ timeout: 120000 });
  // The answer sits in the live region screen readers announce.
  const log = p.locator("protostar-chat [role=log]");
  assert.equal(await log.getAttribute("aria-live"), "polite");
  assert.equal(await log.getAttribute("aria-busy"), "false");
  assert.ok((await answer.locator(".text").textContent()).trim().length > 0);
  // A citation opens from the keyboard too.
  const summary = answer.locator("summary").first();
  if (await summary.count()) {
    await summary.focus();
    await p.keyboard.press("Enter");
    assert.equal(await answer.locator("details").first().getAttribute("open"), "");
  }
  await p.keyboard.press("Escape");
  assert.ok(await p.locator("protostar-chat .panel").isHidden());
  assert.equal(await focused(), "button.launcher");
  await context.close();
});

test("Korean and dark: data-lang and data-theme", async () => {
  const site = await blog(`<!doctype html><html lang="ko"><head><meta charset="utf-8"><title>하늘의 블로그</title></head>
<body><h1>하늘의 블로그</h1><script src="${server.public}/widget.js" data-chatbot="${slug}" data-lang="ko" data-theme="dark" async></script></body></html>`,
  { "Content-Security-Policy": strictCsp(server.public) });
  try {
    await call(server.public, "/api/chatbots/mine", { method: "PATCH", token: owner.accessToken, body: { allowedOrigins: [allowed.origin, site.origin] } });
    await until("the Korean blog's origin to be allowed", 15000, async () => {
      const r = await fetch(`${server.public}/api/chatbots/${slug}`, { headers: { Origin: site.origin } });
      return r.headers.get("access-control-allow-origin") === site.origin;
    });
    const context = await chromium.newContext({ viewport: { width: 900, height: 760 }, colorScheme: "light" });
    const p = await context.newPage();
    const problems = await watch(p);
    await p.goto(site.origin);
    const launcher = p.locator("protostar-chat .launcher");
    await launcher.click();
    await p.locator("protostar-chat .status", { hasText: "남은 질문" }).waitFor();
    assert.equal((await launcher.textContent()).trim(), "질문하기 · Haneul Kim");
    assert.equal(await p.locator("protostar-chat textarea").getAttribute("placeholder"), "궁금한 점을 물어보세요…");
    // Dark because the page asked for it, whatever the visitor's system prefers.
    const bg = await p.locator("protostar-chat .panel").evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.equal(bg, "rgb(27, 27, 36)");
    await shot(p, "widget-ko-dark");
    assert.deepEqual(problems, []);
    await context.close();
  } finally {
    await site.close();
  }
});
