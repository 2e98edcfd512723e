// A new user's first visit, in a real browser: sign up, confirm the address from the email,
// turn on two-factor sign-in, sign in again with it, create an API token and use it with the
// curl command the page offers, export their data and delete the account. Every page is
// scanned by axe-core and saved as a screenshot; a script error or CSP violation fails the test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  assertClean, assertFitsWidth, axe, backends, freshCode, launch, mailedLink, newPage,
  screenshot, startServer,
} from "./support.mjs";

const PASSWORD = "correct horse battery staple";
// A real photograph from Debian's mate-backgrounds (installed by scripts/setup).
const PHOTO = "/usr/share/backgrounds/mate/nature/Dune.jpg";

/** The credits the dashboard shows. */
async function balance(page, server) {
  const r = await page.request.get(server.url("/v1/credits"));
  assert.equal(r.status(), 200);
  return (await r.json()).available;
}

for (const backend of backends()) {
  test(`a new user goes from sign-up to account deletion in the browser (${backend})`, async () => {
    const server = await startServer(backend);
    const browser = await launch();
    try {
      const page = await newPage(browser);
      const email = `ada-${backend}@example.com`;
      const shot = async (name) => {
        await axe(page, name);
        assertClean(page);
        if (backend === "sqlite") await screenshot(page, name);
      };

      // The landing page and pricing, as a visitor.
      await page.goto(server.url("/"));
      await assert.doesNotReject(page.getByRole("heading", { level: 1 }).waitFor());
      // The live demo re-renders the card on the server as the visitor types.
      await page.getByLabel("Title").fill("Hello from a real browser");
      await page.waitForFunction(() => {
        const i = document.getElementById("demo-img");
        return i.src.includes("Hello+from+a+real+browser") && i.complete && i.naturalWidth === 1200;
      });
      await shot("01-landing");
      await page.getByRole("link", { name: "Pricing" }).first().click();
      await page.getByRole("heading", { name: "Pricing" }).waitFor();
      assert.match(await page.textContent("main"), /free credits/);
      await shot("02-pricing");

      // Sign up: the age box is required, the marketing box starts unticked.
      await page.goto(server.url("/sign-up"));
      await shot("03-sign-up");
      assert.equal(await page.getByLabel(/news and offers/).isChecked(), false);
      await page.getByLabel("Email address").fill(email);
      await page.getByLabel("Name").fill("Ada");
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByLabel(/years old/).check();
      await page.getByRole("button", { name: "Create account" }).click();
      await page.getByRole("heading", { name: "Check your inbox" }).waitFor();

      // Signing in before confirming the address is refused with a reason.
      await page.goto(server.url("/sign-in"));
      await page.getByLabel("Email address").fill(email);
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("alert").waitFor();
      assert.match(await page.getByRole("alert").textContent(), /verify your email/i);
      await shot("04-sign-in-unverified");

      // The link from the email confirms the address.
      await page.goto(mailedLink(server, email, "/verify-email"));
      await page.getByRole("button", { name: "Confirm my address" }).click();
      await page.getByText("is confirmed").waitFor();

      // Sign in; a protected page sends a visitor to sign in and back.
      await page.goto(server.url("/account/security"));
      assert.match(page.url(), /\/sign-in\?next=%2Faccount%2Fsecurity/);
      await page.getByLabel("Email address").fill(email);
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForURL(/\/account\/security$/);
      await shot("05-security");

      // Turn on two-factor sign-in: scan (read the key), confirm with a code, get recovery codes.
      const used = new Set();
      await page.getByRole("button", { name: "Set up two-factor sign-in" }).click();
      await page.getByRole("img", { name: /QR code/ }).waitFor();
      const secret = (await page.locator("#totp-secret").textContent()).trim();
      await shot("06-2fa-enrol");
      await page.getByLabel("Code from the app").fill("000000");
      await page.getByRole("button", { name: "Turn on" }).click();
      await page.getByRole("alert").waitFor();
      // A wrong code keeps the same key on screen for another try.
      assert.equal((await page.locator("#totp-secret").textContent()).trim(), secret);
      await page.getByLabel("Code from the app").fill(await freshCode(secret, used));
      await page.getByRole("button", { name: "Turn on" }).click();
      await page.getByText("These recovery codes are shown once").waitFor();
      const codes = (await page.locator("#recovery-codes li").allTextContents()).map((c) => c.trim());
      assert.equal(codes.length, 10);
      await shot("07-recovery-codes");

      // Sign out, and back in with the second step (a recovery code works once).
      await page.getByRole("button", { name: "Sign out" }).first().click();
      await page.getByText("You are signed out.").waitFor();
      await page.getByLabel("Email address").fill(email);
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("heading", { name: "Two-factor sign-in" }).waitFor();
      await shot("08-sign-in-code");
      await page.getByLabel("Code").fill(codes[0]);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForURL(/\/dashboard$/);
      assert.match(await page.textContent("main"), /Two-factor sign-in is on/);
      await shot("09-dashboard");

      // Create a token with one scope; it is shown once, with a curl command that works.
      await page.getByRole("link", { name: "API tokens" }).first().click();
      await page.getByLabel("Name").fill("e2e");
      await page.getByRole("checkbox", { name: /account:read/ }).check();
      await page.getByRole("checkbox", { name: /^render/ }).check();
      await page.getByRole("button", { name: "Create token" }).click();
      await page.getByText("Copy it now").waitFor();
      const token = (await page.locator("#token-secret").textContent()).trim();
      assert.match(token, /^pxd_[A-Za-z0-9]{38}$/);
      await shot("10-token-created");
      const curl = (await page.locator("#try-curl").textContent()).trim();
      const args = curl.replace(/^curl /, "").match(/"[^"]*"|\S+/g).map((a) => a.replace(/^"|"$/g, ""));
      const me = JSON.parse(execFileSync("curl", ["-sS", ...args], { encoding: "utf8" }));
      assert.equal(me.user.email, email);
      assert.equal(me.credential.kind, "token");
      // Coming back, the secret is gone for good; the list shows only its prefix.
      await page.goto(server.url("/account/tokens"));
      assert.equal(await page.locator("#token-secret").count(), 0);
      assert.match(await page.textContent("main"), new RegExp(token.slice(0, 10)));

      // Upload a photo by dropping it on the form (each file has its own progress bar), then
      // optimize it: 800 px wide WebP, smaller than the upload, compared before and after.
      const balanceBefore = await balance(page, server);
      await page.goto(server.url("/images"));
      await shot("11-images-empty");
      await page.setInputFiles("input[type=file]", PHOTO);
      await page.getByRole("button", { name: "Upload" }).click();
      await page.waitForURL(/\/images\/[0-9a-f-]{36}$/);
      assert.match(await page.textContent("main"), /deleted in 2[34] h/);
      // Uploading analysed it: one credit.
      assert.equal(await balance(page, server), balanceBefore - 1);
      await page.getByLabel("Width").fill("800");
      await page.getByRole("combobox", { name: /^Format/ }).selectOption("webp");
      await page.getByRole("button", { name: "Optimize" }).click();
      await page.getByRole("heading", { name: "Before and after" }).waitFor();
      assert.match(await page.locator(".big").first().textContent(), /\d+% smaller/);
      await page.getByRole("img", { name: /After/ }).waitFor();
      const after = await page.waitForFunction(() => {
        const i = document.querySelector(".compare .after");
        return i && i.complete && i.naturalWidth > 0 && i.naturalWidth;
      });
      assert.equal(await after.jsonValue(), 800);
      await page.getByLabel("Compare").fill("20");
      const href = await page.getByRole("link", { name: /Download WEBP/ }).getAttribute("href");
      const out = await page.request.get(server.url(href));
      assert.equal(out.headers()["content-type"], "image/webp");
      await shot("12-image-optimized");
      // The optimize cost one more; the page's preview and the download were the same cached
      // output, and looking at it again costs nothing.
      assert.equal(await balance(page, server), balanceBefore - 2);
      await page.request.get(server.url(href));
      assert.equal(await balance(page, server), balanceBefore - 2);
      await page.goto(server.url("/images"));
      assert.equal(await page.locator(".gallery li").count(), 1);
      await shot("13-images");

      // A template in the editor: the preview is the server's render of the draft, and it
      // changes as the sample data does; saving makes version 2.
      await page.getByRole("link", { name: "Templates" }).first().click();
      await page.getByRole("button", { name: "New template" }).click();
      await page.waitForURL(/\/templates\/[0-9a-f-]{36}$/);
      const preview = page.locator("#preview");
      await preview.waitFor();
      const first = await preview.getAttribute("src");
      assert.match(first, /^data:image\/webp;base64,/);
      assert.match(await page.getByRole("navigation", { name: "Layers" }).textContent(), /title/);
      await shot("14-editor");
      const data = page.getByLabel(/^Sample data/);
      const sample = JSON.parse(await data.inputValue());
      sample.title = "Hello from the browser test";
      await data.fill(JSON.stringify(sample, null, 2));
      await page.waitForFunction((before) => {
        const img = document.querySelector("#preview");
        return img && img.getAttribute("src") !== before;
      }, first);
      // A broken draft says why, in the preview box, and keeps the text as typed.
      const body = page.getByLabel(/^Template \(JSON\)/);
      const good = await body.inputValue();
      await body.fill(good.replace('"layers"', '"layerz"'));
      await page.locator("#preview-box [role=alert]").waitFor();
      await body.fill(good);
      await page.locator("#preview").waitFor();
      // Choose a layer, change its size in the properties panel: the JSON and the preview follow.
      await page.getByRole("button", { name: /text title/ }).click();
      await page.getByRole("group", { name: /Properties of title/ }).waitFor();
      const beforeSize = await preview.getAttribute("src");
      await page.getByRole("spinbutton", { name: "size", exact: true }).fill("44");
      await page.waitForFunction((before) => {
        const img = document.querySelector("#preview");
        return img && img.getAttribute("src") !== before;
      }, beforeSize);
      const edited = JSON.parse(await body.inputValue());
      assert.equal(edited.layers.find((l) => l.name === "title").size, 44);
      await shot("14b-editor-properties");
      assertClean(page);
      await page.getByRole("button", { name: /Save as version 2/ }).click();
      await page.getByText("Saved as a new version.").waitFor();
      assert.match(await page.getByRole("heading", { level: 1 }).textContent(), /version 2/);

      // Render it with the curl command the editor offers, as a user would paste it.
      const before = await balance(page, server);
      const cmd = (await page.locator("#curl").textContent()).trim();
      const dir = mkdtempSync(join(tmpdir(), "pixeld-curl-"));
      execFileSync("bash", ["-c", cmd], { cwd: dir, env: { ...process.env, PIXELD_TOKEN: token } });
      const png = readFileSync(join(dir, "card.png"));
      assert.equal(png.subarray(1, 4).toString(), "PNG");
      assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [1200, 630]);
      assert.equal(await balance(page, server), before - 1);
      await page.goto(server.url("/templates"));
      // The thumbnail is rendered on first view; wait until it has loaded.
      await page.waitForFunction(() => {
        const i = document.querySelector(".gallery img");
        return i && i.complete && i.naturalWidth > 0;
      });
      await shot("15-templates");

      // The usage page shows the upload in the request log with the credit it cost, and the
      // billing page the ledger entry and the new balance.
      await page.getByRole("link", { name: "Usage" }).first().click();
      await page.getByRole("heading", { name: "Request log" }).waitFor();
      const upload = page.locator("tr", { hasText: "POST /v1/images" }).first();
      await upload.waitFor();
      assert.match(await upload.textContent(), /201/);
      // The optimize from the images page is there too, with its credit.
      const optimized = page.locator("tr", { hasText: "POST /images/{id}/optimize" }).first();
      assert.match(await optimized.textContent(), /200\s*[\d.]+\s*1/);
      assert.equal(await page.locator("tr", { hasText: "POST /v1/renders" }).count(), 1);
      await page.getByLabel("Status").selectOption("4");
      await page.getByRole("button", { name: "Filter" }).click();
      await page.waitForURL(/status=4/);
      assert.equal(await page.locator("tr", { hasText: "POST /v1/images" }).count(), 0);
      await page.getByLabel("Status").selectOption("");
      await page.getByRole("button", { name: "Filter" }).click();
      await shot("16-usage");
      await page.getByRole("link", { name: "Billing" }).first().click();
      assert.equal(Number(await page.locator("#balance").textContent()), await balance(page, server));
      assert.match(await page.textContent("main"), /settle/);
      await shot("17-billing");

      // A CSV batch from the editor: one render per row, followed on a progress page, then
      // downloaded as one ZIP.
      await page.goto(server.url("/templates"));
      await page.locator(".gallery a").first().click();
      const beforeBatch = await balance(page, server);
      await page.getByLabel(/paste it/).fill("title,subtitle\nOne,one.example\nTwo,two.example\n");
      await page.getByLabel(/^File names/).fill("{{title}}");
      await page.getByRole("button", { name: "Render every row" }).click();
      await page.waitForURL(/\/batches\/[0-9a-f-]{36}$/);
      await page.getByText("2 of 2 rendered. Done.").waitFor();
      await shot("17b-batch");
      const zipLink = await page.getByRole("link", { name: /Download 2 images/ }).getAttribute("href");
      const zipped = await page.request.get(server.url(zipLink));
      assert.equal(zipped.headers()["content-type"], "application/zip");
      const zipBytes = await zipped.body();
      assert.equal(zipBytes.subarray(0, 2).toString(), "PK");
      assert.ok(zipBytes.includes(Buffer.from("One.png")) && zipBytes.includes(Buffer.from("Two.png")));
      assert.equal(await balance(page, server), beforeBatch - 2);

      // Profile: a change is saved and audited.
      await page.goto(server.url("/account"));
      await page.getByLabel("Company").fill("Analytical Engines Ltd");
      await page.getByRole("button", { name: "Save profile" }).click();
      await page.getByText("Profile saved.").waitFor();
      assert.equal(await page.getByLabel("Company").inputValue(), "Analytical Engines Ltd");
      assert.match(await page.textContent("main"), /company/);
      await shot("18-profile");

      // Privacy center: export, then the download link appears when the export is built.
      await page.goto(server.url("/account/privacy"));
      await page.getByRole("button", { name: "Export my data" }).click();
      await page.getByText("Your export is being built").waitFor();
      let link;
      for (let i = 0; i < 100 && !link; i++) {
        await page.waitForTimeout(200);
        await page.reload();
        const a = page.getByRole("link", { name: /Download ZIP/ });
        if ((await a.count()) > 0) link = await a.first().getAttribute("href");
      }
      assert.ok(link, "the export was not ready within 20 s");
      const zip = await page.request.get(link);
      assert.equal(zip.status(), 200);
      assert.equal((await zip.body()).subarray(0, 2).toString(), "PK");
      await shot("19-privacy");

      // Page views were counted without cookies, by route: never which image or template.
      const names = page.hits.map((h) => h.name);
      assert.ok(names.includes("/images/{id}") && names.includes("/templates/{id}"), names.join(" "));
      assert.ok(!names.some((n) => /[0-9a-f]{8}-[0-9a-f]{4}-/.test(n)), names.join(" "));
      assert.ok(page.hits.every((h) => h.site === "dashboard" || h.site === "website"));

      // Delete the account (password and a current code); signing in is refused afterwards.
      page.once("dialog", (d) => d.accept());
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByLabel("Two-factor code").fill(await freshCode(secret, used));
      await page.getByRole("button", { name: "Delete my account" }).click();
      await page.getByRole("heading", { name: "Your account is scheduled for deletion" }).waitFor();
      await shot("20-deleted");
      await page.goto(server.url("/dashboard"));
      assert.match(page.url(), /\/sign-in/);
      await page.getByLabel("Email address").fill(email);
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("alert").waitFor();
      assertClean(page);
    } finally {
      await browser.close();
      await server.stop();
    }
  });
}

test("pages fit a 360 px phone and pass axe in dark mode", async () => {
  const server = await startServer("sqlite");
  const browser = await launch();
  try {
    const page = await newPage(browser, { viewport: { width: 360, height: 740 }, colorScheme: "dark" });
    const publicPages = [
      "/", "/pricing", "/sign-up", "/sign-in", "/forgot-password", "/privacy",
      // The emailed-link pages (a stale token shows the same page) and a mistyped address.
      "/verify-email?token=stale", "/reset-password?token=stale", "/cancel-deletion?token=stale",
      "/unsubscribe?token=stale", "/no-such-page",
    ];
    for (const path of publicPages) {
      await page.goto(server.url(path));
      await assertFitsWidth(page, path);
      await axe(page, `${path} (dark, 360 px)`);
      assertClean(page);
    }
    await screenshot(page, "30-phone-dark-privacy");
  } finally {
    await browser.close();
    await server.stop();
  }
});
