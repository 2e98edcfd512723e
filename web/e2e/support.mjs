// What the browser tests share: a pixeld server started for the test (SQLite or a fresh
// PostgreSQL database), Debian's chromium through playwright-core, the email outbox, TOTP codes,
// an axe-core scan and screenshots saved as artifacts.
import { spawn, execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const axeSource = readFileSync(join(here, "node_modules/axe-core/axe.min.js"), "utf8");

/** Where screenshots go (kept by CI as artifacts). */
export const artifacts = process.env.E2E_ARTIFACTS || join(here, "artifacts");

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const pgAdmin = process.env.PIXELD_TEST_POSTGRES_URL || "postgres://postgres@127.0.0.1:5432/postgres";

function psql(sql) {
  execFileSync("psql", [pgAdmin, "-Atqc", sql], { stdio: ["ignore", "pipe", "pipe"] });
}

/** The backends the journey runs on: SQLite always, PostgreSQL when reachable (required under CI). */
export function backends() {
  const out = ["sqlite"];
  try {
    psql("select 1");
    out.push("postgres");
  } catch (e) {
    if (process.env.CI === "true") throw new Error(`PostgreSQL is not reachable at ${pgAdmin} (required under CI=true)`);
    console.warn(`PostgreSQL is not reachable at ${pgAdmin}: browser tests run on SQLite only`);
  }
  return out;
}

/** Starts `pixeld serve` on a free port with its own data folder (and database). */
export async function startServer(backend = "sqlite", env = {}) {
  const bin = process.env.E2E_PIXELD_BIN;
  assert.ok(bin, "E2E_PIXELD_BIN must name the pixeld binary (scripts/test sets it)");
  const data = mkdtempSync(join(tmpdir(), "pixeld-e2e-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let database;
  let dbName;
  if (backend === "postgres") {
    dbName = `pixeld_t_e2e_${randomBytes(6).toString("hex")}`;
    psql(`create database ${dbName}`);
    const u = new URL(pgAdmin);
    u.pathname = `/${dbName}`;
    database = u.toString();
  }
  const serverEnv = {
      // pixeld reads every PIXELD_* variable as configuration; the server gets only ours.
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PIXELD_"))),
      PIXELD_DATA: data,
      PIXELD_LISTEN: `127.0.0.1:${port}`,
      PIXELD_PUBLIC_URL: base,
      PIXELD_LOG: "warn",
      PIXELD_JOBS__POLL_MS: "200",
      PIXELD_USAGE__FLUSH_MS: "100",
      // One browser makes many sign-ins in a few seconds.
      PIXELD_RATE_LIMIT__SIGN_IN_PER_MINUTE: "1000",
      ...(database ? { PIXELD_DATABASE_URL: database } : {}),
      ...env,
  };
  const child = spawn(bin, ["serve"], { env: serverEnv, stdio: ["ignore", "inherit", "inherit"] });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pixeld exited with ${child.exitCode} before it was ready`);
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error("pixeld did not become ready within 60 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    data,
    backend,
    url: (path) => base + path,
    /** Runs `pixeld admin …` against this server's database, as an operator would. */
    admin: (...args) => execFileSync(bin, ["admin", ...args], { env: serverEnv, encoding: "utf8" }),
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      rmSync(data, { recursive: true, force: true });
      if (dbName) {
        try {
          psql(`drop database if exists ${dbName} with (force)`);
        } catch {
          /* dropped by the next setup */
        }
      }
    },
  };
}

/** Debian's chromium, headless. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.E2E_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/**
 * A new page that fails the test on any script error or Content Security Policy violation, so
 * the policy the server sends is the one the pages are tested under.
 */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const page = await context.newPage();
  page.problems = [];
  page.hits = [];
  page.on("request", (r) => {
    if (r.url().endsWith("/v1/analytics/events") && r.method() === "POST") page.hits.push(JSON.parse(r.postData()));
  });
  page.on("pageerror", (e) => page.problems.push(`script error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/i.test(m.text())) {
      page.problems.push(`CSP: ${m.text()}`);
    }
  });
  return page;
}

/** Fails if the page reported script errors or CSP violations since the last check. */
export function assertClean(page) {
  const p = page.problems.splice(0);
  assert.deepEqual(p, [], `the page reported problems:\n${p.join("\n")}`);
}

/**
 * Runs axe-core on the current page and fails on serious or critical violations. axe is
 * evaluated through the DevTools protocol, which the page's CSP does not govern, so the scan
 * needs no exception in the policy.
 */
export async function axe(page, label) {
  await page.evaluate(axeSource + "\n;0");
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
  const serious = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(serious, [], `axe found serious violations on ${label}:\n${JSON.stringify(serious, null, 2)}`);
  return result;
}

/** Saves a full-page screenshot as an artifact. */
export async function screenshot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/** Fails if the page scrolls sideways (it must fit a 360 px phone). */
export async function assertFitsWidth(page, label) {
  const { scroll, client } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  assert.ok(scroll <= client + 1, `${label} scrolls sideways at ${client} px: content is ${scroll} px wide`);
}

/** The newest link to `path` emailed to `to`, read from the server's outbox (`.eml` files). */
export function mailedLink(server, to, path) {
  const dir = join(server.data, "outbox");
  const mails = readdirSync(dir)
    .filter((f) => f.endsWith(".eml"))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs)
    .map((f) => readFileSync(f, "utf8"))
    // Quoted-printable soft line breaks and `=3D` for `=`.
    .map((m) => m.replace(/=\r?\n/g, "").replace(/=3D/g, "="))
    .filter((m) => m.toLowerCase().includes(`to: ${to}`.toLowerCase()));
  const re = new RegExp(`${server.base.replace(/[.]/g, "\\.")}${path}\\?[^\\s"<>]+`, "g");
  const links = mails.flatMap((m) => m.match(re) || []);
  assert.ok(links.length > 0, `no email to ${to} with a ${path} link`);
  return links[links.length - 1];
}

function base32Decode(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of s.replace(/=+$/, "").toUpperCase()) {
    const v = alphabet.indexOf(ch);
    if (v < 0) continue;
    bits += v.toString(2).padStart(5, "0");
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The RFC 6238 code (SHA-1, 6 digits, 30 s) for `secret` at time step `step`. */
export function totp(secret, step = Math.floor(Date.now() / 30_000)) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32Decode(secret)).update(counter).digest();
  const off = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000;
  return n.toString().padStart(6, "0");
}

/**
 * A code from a time step not used before (the server accepts each step once), waiting for the
 * next step when the current one is spent.
 */
export async function freshCode(secret, used) {
  let step = Math.floor(Date.now() / 30_000);
  while (used.has(step)) {
    await new Promise((r) => setTimeout(r, 500));
    step = Math.floor(Date.now() / 30_000);
  }
  used.add(step);
  return totp(secret, step);
}
