// The protostar's dashboard: two files dropped at once both reach `ready`; a new greeting
// shows in the widget preview and in the widget embedded on the protostar's blog.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { PASSWORD, adminToken, blog, browser, call, protostar, shot, startServer, watch } from "./harness.js";

const fixtures = new URL("./fixtures/", import.meta.url).pathname;
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

async function signIn(page, email) {
  await page.goto(`${server.public}/dashboard`);
  await page.fill("#auth-email", email);
  await page.fill("#auth-password", PASSWORD);
  await page.click("form.auth button[type=submit]");
}

test("two dropped files are uploaded with progress and both reach ready", async () => {
  await protostar(server, "haneul@example.org", "Haneul Kim");
  const context = await chromium.newContext({ viewport: { width: 1200, height: 860 }, locale: "en-US" });
  const page = await context.newPage();
  const problems = await watch(page);
  await signIn(page, "haneul@example.org");
  await page.locator("label.drop").waitFor();

  // A real drop event carrying two files, as a file manager would send.
  const files = [
    { name: "resume-ko.md", type: "text/markdown", text: readFileSync(join(fixtures, "resume-ko.md"), "utf8") },
    { name: "cover-letter-en.txt", type: "text/plain", text: readFileSync(join(fixtures, "cover-letter-en.txt"), "utf8") },
  ];
  const transfer = await page.evaluateHandle((list) => {
    const dt = new DataTransfer();
    for (const f of list) dt.items.add(new File([f.text], f.name, { type: f.type }));
    return dt;
  }, files);
  // Count the per-file progress bars as they come and go.
  await page.evaluate(() => {
    window.__bars = new Set();
    new MutationObserver(() => {
      for (const bar of document.querySelectorAll(".uploads progress")) window.__bars.add(bar.getAttribute("aria-label"));
    }).observe(document.body, { subtree: true, childList: true });
  });
  await page.dispatchEvent("label.drop", "dragenter", { dataTransfer: transfer });
  await page.dispatchEvent("label.drop", "drop", { dataTransfer: transfer });

  const rows = page.locator("table.docs tbody tr");
  await rows.nth(1).waitFor({ timeout: 30000 });
  await page.waitForFunction(() => {
    const r = [...document.querySelectorAll("table.docs tbody tr")];
    return r.length === 2 && r.every((x) => x.dataset.status === "ready");
  }, null, { timeout: 120000, polling: 250 });
  assert.deepEqual(await page.evaluate(() => [...window.__bars].sort()), ["Uploading cover-letter-en.txt", "Uploading resume-ko.md"]);
  const titles = await page.locator("table.docs .doc-title").allTextContents();
  assert.equal(titles.length, 2);
  const chunks = await page.locator("table.docs tbody td:nth-child(4)").allTextContents();
  assert.ok(chunks.every((c) => Number(c) > 0), chunks.join(","));
  await shot(page, "dashboard-documents", { fullPage: true });

  // Re-index one: it goes back through the pipeline (version 2) and is ready again.
  const cover = rows.filter({ hasText: "cover-letter-en.txt" });
  const id = await cover.getAttribute("data-id");
  await cover.locator("button", { hasText: "Re-index" }).click();
  await page.waitForFunction((docId) => {
    const row = document.querySelector(`tr[data-id="${docId}"]`);
    return row && row.dataset.status !== "ready";
  }, id, { timeout: 10000, polling: 20 }).catch(() => {});
  await page.waitForFunction((docId) => document.querySelector(`tr[data-id="${docId}"]`)?.dataset.status === "ready",
    id, { timeout: 60000, polling: 250 });
  // Delete the other, after confirming.
  let asked = "";
  page.once("dialog", (d) => { asked = d.message(); d.accept(); });
  await rows.filter({ hasText: "resume-ko.md" }).locator("button", { hasText: "Delete" }).click();
  await page.waitForFunction(() => document.querySelectorAll("table.docs tbody tr").length === 1, null, { timeout: 15000 });
  assert.match(asked, /resume-ko/);
  assert.deepEqual(problems, []);
  await context.close();
});

test("a new greeting shows in the preview and in the embedded widget", async () => {
  const pair = await protostar(server, "sora@example.org", "Sora Lee");
  const mine = await call(server.public, "/api/chatbots/mine", { token: pair.accessToken });
  const site = await blog(`<!doctype html><html><head><title>Sora's blog</title></head><body><h1>Sora's blog</h1>
<script src="${server.public}/widget.js" data-chatbot="${mine.slug}" data-lang="en" async></script></body></html>`);
  try {
    const context = await chromium.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
    const page = await context.newPage();
    const problems = await watch(page);
    await signIn(page, "sora@example.org");
    await page.locator("#tab-chatbot").click();
    await page.locator("#f-greeting").waitFor();
    const greeting = `Hi! Ask me anything about Sora's work (${Date.now()}).`;
    const preview = page.frameLocator("#preview");
    await preview.locator("protostar-chat .greeting").waitFor({ timeout: 15000 });
    await page.fill("#f-greeting", greeting);
    // Shown while typing, before any save.
    await preview.locator("protostar-chat .greeting", { hasText: greeting }).waitFor({ timeout: 5000 });
    await page.fill("#f-allowedOrigins", site.origin);
    await page.click("form.settings button[type=submit]");
    await page.locator(".message:not([hidden])", { hasText: "Saved" }).waitFor();

    // The frame reloads from the API after the save: the saved greeting.
    await preview.locator("protostar-chat .greeting", { hasText: greeting }).waitFor({ timeout: 15000 });
    const snippet = await page.inputValue("#snippet");
    assert.ok(snippet.includes(`data-chatbot="${mine.slug}"`) && snippet.includes(`${server.public}/widget.js`), snippet);
    await shot(page, "dashboard-chatbot", { fullPage: true });
    assert.deepEqual(problems, []);

    // The blog: its origin is allowed within the gateway's refresh (1 s in tests).
    const visitor = await chromium.newContext({ locale: "en-US" });
    const blogPage = await visitor.newPage();
    const blogProblems = await watch(blogPage);
    await new Promise((r) => setTimeout(r, 1500));
    await blogPage.goto(site.origin);
    await blogPage.click("protostar-chat .launcher");
    await blogPage.locator("protostar-chat .greeting", { hasText: greeting }).waitFor({ timeout: 15000 });
    assert.deepEqual(blogProblems, []);
    await visitor.close();
    await context.close();
  } finally {
    await site.close();
  }
});

test("a recruiter redeems an invite on the dashboard, exports the account and deletes it", async () => {
  const { invites } = await call(server.admin, "/admin/api/invites", { method: "POST", token: await adminToken(server), body: { count: 1, uses: 1 } });
  const context = await chromium.newContext({ viewport: { width: 1200, height: 860 }, locale: "ko-KR", acceptDownloads: true });
  const page = await context.newPage();
  const problems = await watch(page);
  await page.goto(`${server.public}/dashboard`);
  // Korean for a Korean browser; the switch leads to the sign-up form.
  await page.locator("form.auth h1", { hasText: "로그인" }).waitFor();
  await page.locator("form.auth .switch button").click();
  await page.fill("#auth-email", "minji@example.org");
  await page.fill("#auth-password", PASSWORD);
  await page.fill("#auth-name", "민지");
  await page.click("form.auth button[type=submit]");

  // Talent search first, as the recruiter they are: Haneul (the first test's protostar, with
  // the cover letter still ready) opts in and is found, with the passages that match.
  const haneul = await call(server.public, "/api/auth/login", { method: "POST", body: { email: "haneul@example.org", password: PASSWORD } });
  await call(server.public, "/api/chatbots/mine", { method: "PATCH", token: haneul.accessToken, body: { talentSearch: true } });
  await page.fill("#talent-q", "Rust backend engineer who built payment settlement");
  await page.click("#talent-box button[type=submit]");
  const found = page.locator("#talent-box ol.talent li").first();
  await found.waitFor({ timeout: 15000 });
  assert.match(await found.textContent(), /Haneul Kim/);
  assert.ok(await found.locator("details blockquote").count() >= 1);
  await shot(page, "dashboard-talent");

  await page.fill("#invite-code", invites[0].code);
  await page.click("#redeem button[type=submit]");
  await page.locator("#tab-documents").waitFor({ timeout: 30000 });
  await page.locator("label.drop").waitFor();

  await page.click("#tab-account");
  await page.locator("#display-name").waitFor();
  assert.equal(await page.inputValue("#display-name"), "민지");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.locator("#section-account button", { hasText: "내보내기" }).click(),
  ]);
  const exported = JSON.parse(readFileSync(await download.path(), "utf8"));
  assert.match(JSON.stringify(exported), /minji@example.org/);

  page.on("dialog", (d) => d.accept());
  await page.fill("#confirm-delete", "DELETE");
  await page.click(".danger-zone button[type=submit]");
  await page.locator("#section-account [role=status]", { hasText: "삭제하는 중" }).waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});
