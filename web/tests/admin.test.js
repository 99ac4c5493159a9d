// The admin pages on the admin listener: an admin signs in there (not on the public listener),
// creates invite codes, sees them listed and revokes one, changes a role, looks at dead letters
// and health.

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
  const rows = page.locator("#section-invites tbody tr");
  await rows.nth(1).waitFor();
  assert.equal(await page.locator("#section-invites tr[data-state=active] button", { hasText: "Revoke" }).count(), 2);

  // Revoke one, after confirming: it stays listed, marked revoked with when; the other keeps
  // its button.
  const revoked = await rows.first().getAttribute("data-id");
  let asked = "";
  page.once("dialog", (d) => { asked = d.message(); d.accept(); });
  await rows.first().locator("button", { hasText: "Revoke" }).click();
  const row = page.locator(`#section-invites tr[data-id="${revoked}"][data-state=revoked]`);
  await row.waitFor();
  assert.match(asked, /Revoke the invite/);
  assert.equal(await row.locator(".badge").textContent(), "revoked");
  assert.equal(await row.locator("button").count(), 0);
  assert.match(await row.locator("small").textContent(), /\d/);
  await page.locator("#section-invites .message:not([hidden])", { hasText: "Revoked" }).waitFor();
  assert.equal(await page.locator("#section-invites tr[data-state=active] button", { hasText: "Revoke" }).count(), 1);
  await shot(page, "admin-invites", { fullPage: true });
  // Through the API: listed as revoked, and of the two codes only the other one redeems.
  const root = (await call(server.public, "/api/auth/login", { method: "POST", body: { email: "root@example.org", password: PASSWORD } })).accessToken;
  const listed = (await call(server.admin, "/admin/api/invites", { token: root })).invites;
  assert.ok(listed.find((i) => i.id === revoked).revokedAt);
  const statuses = [];
  for (const [n, code] of codes.entries()) {
    const hopeful = await call(server.public, "/api/auth/signup", { method: "POST", expect: 201, body: { email: `hopeful${n}@example.org`, password: PASSWORD } });
    const res = await fetch(`${server.public}/api/invites/redeem`, { method: "POST", headers: { Authorization: `Bearer ${hopeful.accessToken}`, "Content-Type": "application/json" }, body: JSON.stringify({ code }) });
    statuses.push(res.status);
  }
  assert.deepEqual(statuses.sort(), [200, 404]);

  // Users: the recruiter becomes a protostar.
  await page.click("#tab-users");
  const user = page.locator("tr", { hasText: "recruiter@example.org" });
  await user.locator("select").selectOption("protostar");
  await user.locator("button").click();
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
