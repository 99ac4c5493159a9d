// What the browser tests share: the real `protostar serve --target all` on a fresh database of
// the test stack (scripts/stack.sh: PROTOSTAR_TEST_DATABASE_URL, PROTOSTAR_TEST_PG_BIN), an
// admin and invited protostars made through the real API, a "blog" on another origin, and
// Debian's Chromium driven by playwright-core.

import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, "../..");
export const BIN = process.env.PROTOSTAR_BIN || join(ROOT, "target/debug/protostar");
export const ARTIFACTS = join(here, "artifacts");
export const SCREENSHOTS = join(ROOT, "docs/screenshots");
export const PASSWORD = "a long enough passphrase";

function need(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run through \`make test\` or load a stack's env (scripts/stack.sh start; set -a; . DIR/env)`);
  }
  return v;
}

/** A database of its own on the stack's PostgreSQL, with the extensions the services need. */
function createDatabase() {
  const server = new URL(need("PROTOSTAR_TEST_DATABASE_URL"));
  const psql = join(process.env.PROTOSTAR_TEST_PG_BIN || "", "psql");
  const name = `web_${randomUUID().replaceAll("-", "")}`;
  const run = (db, sql) => {
    const url = new URL(server);
    url.pathname = `/${db}`;
    const r = spawnSync(psql || "psql", [url.toString(), "-v", "ON_ERROR_STOP=1", "-qc", sql], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`psql: ${r.stderr || r.error}`);
  };
  run(server.pathname.slice(1) || "postgres", `CREATE DATABASE ${name}`);
  run(name, "CREATE EXTENSION IF NOT EXISTS vector; CREATE EXTENSION IF NOT EXISTS pg_trgm;");
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => { try { run(server.pathname.slice(1) || "postgres", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`); } catch { /* best effort */ } },
  };
}

function env(db, data, extra = {}) {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PROTOSTAR_PUBLIC_ADDR: "127.0.0.1:0",
    PROTOSTAR_ADMIN_ADDR: "127.0.0.1:0",
    PROTOSTAR_DATABASE__URL: db.url,
    PROTOSTAR_DATA_DIR: data,
    // The flows are under test here, not the hashing cost.
    PROTOSTAR_AUTH__ARGON2_MEMORY_KIB: "1024",
    PROTOSTAR_AUTH__ARGON2_ITERATIONS: "1",
    // A chatbot's new widget origins count within a second, not the default thirty.
    PROTOSTAR_GATEWAY__CORS__ORIGINS_REFRESH_SECS: "1",
    ...extra,
  };
}

/**
 * Starts the binary; resolves once it logs "listening". `stop()` kills it and drops the database.
 * Its warnings and errors are echoed, so a failing test shows what the server said.
 */
export async function startServer(extra = {}) {
  const db = createDatabase();
  const data = mkdtempSync(join(tmpdir(), "protostar-web-"));
  const pwFile = join(data, "admin-password");
  writeFileSync(pwFile, `${PASSWORD}\n`);
  const admin = spawnSync(BIN, ["admin", "create-admin", "--email", "root@example.org", "--password-file", pwFile],
    { env: env(db, data, extra), encoding: "utf8" });
  if (admin.status !== 0) throw new Error(`create-admin: ${admin.stderr}`);

  const child = spawn(BIN, ["serve", "--target", "all"], { env: env(db, data, extra), stdio: ["ignore", "pipe", "inherit"] });
  const addresses = await new Promise((resolveAddr, reject) => {
    const timer = setTimeout(() => reject(new Error("protostar never said it was listening")), 90000);
    child.on("exit", (code) => reject(new Error(`protostar exited with ${code}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      let v;
      try { v = JSON.parse(line); } catch { return; }
      if (v.level === "ERROR" || (v.level === "WARN" && process.env.PROTOSTAR_WEB_TEST_VERBOSE)) process.stderr.write(`protostar: ${line}\n`);
      if (v.message === "listening" || v.fields?.message === "listening") {
        clearTimeout(timer);
        resolveAddr({ public: `http://${v.public ?? v.fields?.public}`, admin: `http://${v.admin ?? v.fields?.admin}` });
      }
    });
  });
  const server = {
    ...addresses,
    async stop() {
      child.kill("SIGKILL");
      await new Promise((r) => (child.exitCode != null ? r() : child.once("exit", r)));
      db.drop();
      rmSync(data, { recursive: true, force: true });
    },
  };
  await until("readiness", 60000, async () => (await fetch(`${server.public}/readyz`)).ok);
  return server;
}

export async function until(what, ms, check) {
  const deadline = Date.now() + ms;
  for (;;) {
    try { if (await check()) return; } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`${what} never happened`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** JSON over HTTP; throws with the problem when the status is not the expected one. */
export async function call(base, path, { method = "GET", token, body, expect } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const json = text ? (() => { try { return JSON.parse(text); } catch { return text; } })() : null;
  if (expect !== undefined ? res.status !== expect : !res.ok) {
    throw new Error(`${method} ${path}: ${res.status} ${text}`);
  }
  return json;
}

export async function adminToken(server) {
  return (await call(server.public, "/api/auth/login", { method: "POST", body: { email: "root@example.org", password: PASSWORD } })).accessToken;
}

/** A new account made a protostar by an admin's invite; returns its token pair. */
export async function protostar(server, email, displayName) {
  const admin = await adminToken(server);
  const { invites } = await call(server.admin, "/admin/api/invites", { method: "POST", token: admin, body: { count: 1, uses: 1 } });
  let pair = await call(server.public, "/api/auth/signup", { method: "POST", body: { email, password: PASSWORD, displayName } });
  await until("the profile", 30000, async () => (await fetch(`${server.public}/api/users/me`, { headers: { Authorization: `Bearer ${pair.accessToken}` } })).ok);
  await call(server.public, "/api/invites/redeem", { method: "POST", token: pair.accessToken, body: { code: invites[0].code } });
  await until("the protostar role", 30000, async () => {
    pair = await call(server.public, "/api/auth/refresh", { method: "POST", body: { refreshToken: pair.refreshToken } });
    return pair.role === "protostar";
  });
  return pair;
}

/** A "blog" on an origin of its own, serving `html` at / with the given response headers. */
export async function blog(html, headers = {}) {
  const srv = createServer((req, res) => {
    if (req.url === "/favicon.ico") {
      // No icon, and no 404 in the console either.
      res.writeHead(204);
      res.end();
    } else if (req.url === "/" || req.url.startsWith("/?")) {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", ...headers });
      res.end(html);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((r) => srv.close(r)) };
}

export async function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
}

/**
 * Collects what would mean a broken page: CSP violations (reported in the page), console
 * errors and uncaught exceptions. Call before navigating.
 */
export async function watch(page) {
  const problems = [];
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`);
    }, true);
  });
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(`uncaught: ${e.message}`));
  return problems;
}

/**
 * A screenshot into tests/artifacts; also into docs/screenshots (the README's, committed) when
 * PROTOSTAR_UPDATE_SCREENSHOTS=1, so that an ordinary run leaves the checkout clean.
 */
export async function shot(page, name, { publish = process.env.PROTOSTAR_UPDATE_SCREENSHOTS === "1", ...opts } = {}) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, ...opts });
  if (publish) {
    mkdirSync(SCREENSHOTS, { recursive: true });
    copyFileSync(file, join(SCREENSHOTS, `${name}.png`));
  }
  return file;
}
