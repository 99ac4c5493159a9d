// The admin pages on the admin listener: an admin signs in there (not on the public listener),
// creates invite codes and sees them listed, changes a role, looks at dead letters and health.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { PASSWORD, browser, call, shot, startServer, watch } from "./harness.js";

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

test("an admin manages invites, roles, dead letters and sees health", async () => {
  await call(server.public, "/api/auth/signup", { method: "POST", expect: 201, body: { email: "recruiter@example.org", password: PASSWORD } });
  const context = await chromium.newContext({ viewport: { width: 1200, height: 800 }, locale: "en-US" });
  const page = await context.newPage();
  const problems = await watch(page);
  await page.goto(`${server.admin}/admin`);
  await page.fill("#auth-email", "root@example.org");
  await page.fill("#auth-password", PASSWORD);
  await page.click("form.auth button[type=submit]");

  // Invites: two codes, shown once, and listed.
  await page.locator("#inv-count").fill("2");
  await page.click("#section-invites button[type=submit]");
  await page.locator("#created code").nth(1).waitFor();
  const codes = await page.locator("#created code").allTextContents();
  assert.equal(codes.length, 2);
  assert.ok(codes.every((c) => c.length >= 6), codes.join(","));
  await page.locator("#section-invites tbody tr").nth(1).waitFor();
  await shot(page, "admin-invites", { fullPage: true });

  // Users: the recruiter becomes a protostar.
  await page.click("#tab-users");
  const row = page.locator("tr", { hasText: "recruiter@example.org" });
  await row.locator("select").selectOption("protostar");
  await row.locator("button").click();
  await page.locator("#section-users .message:not([hidden])").waitFor();
  const admin = (await call(server.public, "/api/auth/login", { method: "POST", body: { email: "root@example.org", password: PASSWORD } })).accessToken;
  const { users } = await call(server.admin, "/admin/api/users", { token: admin });
  assert.equal(users.find((u) => u.email === "recruiter@example.org").role, "protostar");

  // Dead letters of every schema answer (an empty list on a fresh stack).
  await page.click("#tab-dead-letters");
  for (const schema of ["auth", "users", "chat", "ai", "noti", "audit"]) {
    await page.selectOption("#dl-schema", schema);
    await page.locator("#section-dead-letters .muted, #section-dead-letters table").first().waitFor();
  }
  await assert.doesNotReject(page.locator("#section-dead-letters .message[data-kind=error]").waitFor({ state: "hidden", timeout: 1000 }));

  // Health: every target with its placement.
  await page.click("#tab-health");
  await page.locator("#section-health tbody tr").first().waitFor();
  const targets = await page.locator("#section-health tbody td:first-child").allTextContents();
  assert.ok(targets.includes("auth") && targets.includes("chat"), targets.join(","));
  await shot(page, "admin-health", { fullPage: true });

  assert.deepEqual(problems, []);
  await context.close();
});
