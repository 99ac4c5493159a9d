// The chat page and the owner's insights: a recruiter signs up on /c/SLUG, asks, finds the
// conversation in their history and opens it again by its link, rates an answer; the owner sees
// the questions, the feedback and an unanswered question in insights, and writes its answer.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { PASSWORD, browser, call, protostar, shot, startServer, until, watch } from "./harness.js";

const fixtures = new URL("./fixtures/", import.meta.url).pathname;
let server;
let chromium;
let slug;

before(async () => {
  server = await startServer();
  chromium = await browser();
  const pair = await protostar(server, "haneul@example.org", "Haneul Kim");
  const form = new FormData();
  form.append("file", new Blob([readFileSync(join(fixtures, "cover-letter-en.txt"))]), "cover-letter-en.txt");
  const doc = await (await fetch(`${server.public}/api/documents`, { method: "POST", headers: { Authorization: `Bearer ${pair.accessToken}` }, body: form })).json();
  await until("the document to be ready", 120000, async () =>
    (await call(server.public, `/api/documents/${doc.id}`, { token: pair.accessToken })).status === "ready");
  slug = (await call(server.public, "/api/chatbots/mine", { token: pair.accessToken })).slug;
});

after(async () => {
  await chromium?.close();
  await server?.stop();
});

const answerDone = (p) => p.locator("protostar-chat .msg.bot:not(.greeting)").last().locator(".fb").waitFor({ timeout: 120000 });

test("a recruiter signs up on the chat page, asks, and finds the conversation again", async () => {
  const context = await chromium.newContext({ viewport: { width: 1200, height: 820 }, locale: "en-US" });
  const p = await context.newPage();
  const problems = await watch(p);
  await p.goto(`${server.public}/c/${slug}#sign-in`);
  await p.locator("#profile h1", { hasText: "Haneul Kim" }).waitFor();
  await p.fill("#auth-email", "recruiter@example.org");
  await p.fill("#auth-password", PASSWORD);
  await p.fill("#auth-name", "Jamie Recruiter");
  await p.click("#auth form button[type=submit]");
  await p.locator("#history h2").waitFor();
  await p.locator("protostar-chat .status", { hasText: "10 questions left" }).waitFor();

  await p.fill("protostar-chat textarea", "What did Haneul do at Hanbit Pay?");
  await p.click("protostar-chat .send");
  await answerDone(p);
  const link = p.locator("#history .conversations a", { hasText: "What did Haneul do at Hanbit Pay?" });
  await link.waitFor();

  // Feedback with a comment.
  const last = p.locator("protostar-chat .msg.bot:not(.greeting)").last();
  await last.locator("button.down").click();
  await last.locator(".fb input").fill("Too long");
  await last.locator(".fb button").click();
  await last.locator(".fb", { hasText: "Thanks" }).waitFor();

  // A question the documents cannot answer.
  await p.fill("protostar-chat textarea", "What is Haneul's favourite colour?");
  await p.click("protostar-chat .send");
  await answerDone(p);
  await shot(p, "chat-page");

  // A new conversation empties the panel; the history link brings the old one back.
  await p.click("#history button");
  assert.equal(await p.locator("protostar-chat .msg.me").count(), 0);
  await link.click();
  await p.locator("protostar-chat .msg.me", { hasText: "Hanbit Pay" }).waitFor();
  const url = new URL(p.url());
  const id = url.searchParams.get("conversation");
  assert.ok(id, p.url());

  // The shareable link, opened afresh, shows the same conversation to its owner.
  const again = await context.newPage();
  await again.goto(`${server.public}/c/${slug}?conversation=${id}`);
  await again.locator("protostar-chat .msg.me", { hasText: "Hanbit Pay" }).waitFor();
  assert.equal(await again.locator("protostar-chat .msg.me").count(), 2);
  assert.ok(await again.locator("protostar-chat .msg.bot li details").count() >= 1);
  assert.deepEqual(problems, []);
  await context.close();
});

test("the owner sees it in insights and writes the answer the documents lacked", async () => {
  const context = await chromium.newContext({ viewport: { width: 1200, height: 900 }, locale: "en-US" });
  const p = await context.newPage();
  const problems = await watch(p);
  await p.goto(`${server.public}/dashboard#insights`);
  await p.fill("#auth-email", "haneul@example.org");
  await p.fill("#auth-password", PASSWORD);
  await p.click("form.auth button[type=submit]");
  await p.locator(".totals").waitFor();
  const total = Number(await p.locator(".totals div").first().locator("dd").textContent());
  assert.ok(total >= 2, `questions: ${total}`);
  await p.locator(".chart svg rect").first().waitFor();
  await p.locator(".feedback li", { hasText: "Too long" }).waitFor();
  const item = p.locator(".unanswered li", { hasText: "favourite colour" });
  await item.waitFor();
  await shot(p, "dashboard-insights", { fullPage: true });
  await item.locator("button").click();
  await item.locator("textarea").fill("Haneul's favourite colour is teal.");
  await item.locator("form button[type=submit]").click();
  await item.locator(".message", { hasText: "Saved" }).waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});
