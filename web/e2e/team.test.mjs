// A team in a real browser: an owner creates an organisation and invites a colleague by email;
// the colleague opens the link, joins and uploads an image that lands in the team; the owner
// changes their role and rotates keys; an operator (promoted with `pixeld admin`) checks the
// instance's health and gives the colleague credits. Every page is scanned by axe-core and
// saved as a screenshot; a script error or CSP violation fails the test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import {
  assertClean, assertFitsWidth, axe, backends, launch, mailedLink, newPage, screenshot,
  startServer,
} from "./support.mjs";

const PASSWORD = "correct horse battery staple";
const PHOTO = "/usr/share/backgrounds/mate/nature/Dune.jpg";

/** Signs up and confirms an address through the API (the sign-up pages have their own test). */
async function account(server, email, name) {
  const r = await fetch(server.url("/v1/auth/signup"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, name, password: PASSWORD, age_confirmed: true }),
  });
  assert.equal(r.status, 201);
  const token = new URL(mailedLink(server, email, "/verify-email")).searchParams.get("token");
  const v = await fetch(server.url("/v1/auth/verify-email"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  assert.equal(v.status, 200);
}

async function signIn(page, server, email) {
  await page.goto(server.url("/sign-in"));
  await page.getByLabel("Email address").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/dashboard$/);
}

/** A webhook receiver on loopback that answers 200 and counts what it got. */
function receiver() {
  return new Promise((resolve) => {
    const got = [];
    const srv = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        got.push({ headers: req.headers, body });
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("thanks");
      });
    });
    srv.listen(0, "127.0.0.1", () => resolve({ url: `http://127.0.0.1:${srv.address().port}/hook`, got, close: () => srv.close() }));
  });
}

const chip = (page) => page.locator(".org-chip").textContent().then((t) => t.replace(/Acting in organisation |; switch/g, "").trim());

for (const backend of backends()) {
  test(`a team works together in one organisation (${backend})`, async () => {
    // Webhooks may reach this machine's receiver (private addresses are refused otherwise).
    const server = await startServer(backend, { PIXELD_FETCH__ALLOW_NETWORKS: '["127.0.0.1/32"]' });
    const hook = await receiver();
    const browser = await launch();
    try {
      const owner = await newPage(browser);
      const mate = await newPage(browser);
      const shot = async (page, name) => {
        await axe(page, name);
        assertClean(page);
        if (backend === "sqlite") await screenshot(page, name);
      };
      await account(server, `grace-${backend}@example.com`, "Grace");
      await account(server, `alan-${backend}@example.com`, "Alan");

      // The owner creates the organisation; the dashboard then acts in it.
      await signIn(owner, server, `grace-${backend}@example.com`);
      const personal = await chip(owner);
      await owner.getByRole("link", { name: "Organisation", exact: true }).click();
      await owner.getByRole("link", { name: "All organisations" }).click();
      await shot(owner, "21-orgs");
      await owner.getByLabel("Name").fill("Babbage & Co");
      await owner.getByRole("button", { name: "Create and switch to it" }).click();
      await owner.getByText("Organisation created.").waitFor();
      assert.equal(await chip(owner), "Babbage & Co");

      // …and invites a colleague.
      await owner.getByLabel("Email").fill(`alan-${backend}@example.com`);
      await owner.getByRole("combobox", { name: "Role", exact: true }).selectOption("member");
      await owner.getByRole("button", { name: "Send invitation" }).click();
      await owner.getByText("Invitation sent.").waitFor();
      assert.match(await owner.getByRole("region", { name: "Open invitations" }).textContent(), new RegExp(`alan-${backend}`));
      await shot(owner, "22-org-members");

      // The colleague opens the emailed link: signed out, they sign in and come back to it.
      await mate.goto(mailedLink(server, `alan-${backend}@example.com`, "/invites/accept"));
      assert.match(mate.url(), /\/sign-in\?next=%2Finvites%2Faccept/);
      await mate.getByLabel("Email address").fill(`alan-${backend}@example.com`);
      await mate.getByLabel("Password").fill(PASSWORD);
      await mate.getByRole("button", { name: "Sign in" }).click();
      await mate.getByRole("heading", { name: "Join Babbage & Co" }).waitFor();
      assert.match(await mate.textContent("main"), /as member/);
      await shot(mate, "23-invite");
      await mate.getByRole("button", { name: "Join Babbage & Co" }).click();
      await mate.getByText("You joined the organisation").waitFor();
      assert.equal(await chip(mate), "Babbage & Co");

      // An upload from the drop form lands in the team, where the owner sees it.
      await mate.goto(server.url("/images"));
      await mate.setInputFiles("input[type=file]", PHOTO);
      await mate.getByRole("button", { name: "Upload" }).click();
      await mate.waitForURL(/\/images\/[0-9a-f-]{36}$/);
      await owner.goto(server.url("/images"));
      assert.match(await owner.textContent("main"), /Dune\.jpg/);
      // Not in the owner's personal organisation.
      const list = await owner.request.get(server.url("/v1/images"));
      assert.equal((await list.json()).items.length, 0);

      // The owner makes the colleague a viewer: the invitation form disappears for them.
      await owner.goto(server.url("/org"));
      await owner.getByRole("combobox", { name: "Role of Alan" }).selectOption("viewer");
      await owner.getByRole("button", { name: "Change role of Alan" }).click();
      await owner.getByText("Role changed.").waitFor();
      await mate.goto(server.url("/org"));
      assert.match(await mate.textContent("main"), /Your role here: viewer/);
      assert.equal(await mate.getByRole("button", { name: "Send invitation" }).count(), 0);
      await shot(mate, "24-org-as-viewer");

      // Keys and secrets: create, reveal, copy; the webhook log is there, empty for now.
      await owner.getByRole("link", { name: "Keys & secrets" }).click();
      await owner.getByRole("button", { name: "Create a signing key" }).click();
      await owner.getByText("Signing key created.").waitFor();
      await owner.getByRole("button", { name: "Create a webhook secret" }).click();
      await owner.getByText("Webhook secret created.").waitFor();
      await owner.getByText("Show the key").first().click();
      assert.match(await owner.locator("code[id^=sk-]").first().textContent(), /^\S{20,}$/);
      await shot(owner, "25-org-keys");
      await owner.getByRole("link", { name: "Webhook deliveries" }).click();
      await owner.getByText("No webhooks sent yet.").waitFor();

      // An asynchronous render of a team template with a webhook: the log shows the delivery,
      // its attempt and the body sent.
      await owner.goto(server.url("/templates"));
      await owner.getByRole("button", { name: "New template" }).click();
      await owner.waitForURL(/\/templates\/[0-9a-f-]{36}$/);
      const templateId = owner.url().split("/").pop();
      const session = await (await owner.request.get(server.url("/v1/auth/session"))).json();
      const orgs = await (await owner.request.get(server.url("/v1/orgs"))).json();
      const team = orgs.items.find((o) => o.name === "Babbage & Co");
      const accepted = await owner.request.post(server.url("/v1/renders"), {
        headers: { "x-csrf-token": session.csrf_token, origin: server.base, "x-pixeld-org": team.id },
        data: { template: templateId, async: true, webhook_url: hook.url, data: { title: "Hooked" } },
      });
      assert.equal(accepted.status(), 202, await accepted.text());
      for (let i = 0; i < 100 && hook.got.length === 0; i++) await owner.waitForTimeout(100);
      assert.equal(hook.got.length, 1, "the webhook arrived");
      assert.match(hook.got[0].headers["pixeld-signature"], /^t=\d+,v1=[0-9a-f]{64}/);
      await owner.goto(server.url("/org/webhooks"));
      await shot(owner, "26-org-webhooks");
      await owner.getByRole("link", { name: "render.completed" }).click();
      await owner.getByRole("heading", { name: /render\.completed/ }).waitFor();
      assert.match(await owner.textContent("main"), /HTTP 200/);
      assert.match(await owner.locator("#payload").textContent(), /"render\.completed"/);
      await shot(owner, "26b-org-webhook");

      // Switching back to the personal organisation from the list.
      await owner.goto(server.url("/orgs"));
      await owner.getByRole("button", { name: `Switch to ${personal}` }).click();
      await owner.getByText("Switched organisation").waitFor();
      assert.equal(await chip(owner), personal);

      // The colleague writes to support from the account pages.
      await mate.goto(server.url("/account"));
      await mate.getByRole("link", { name: "Support" }).click();
      await mate.getByLabel("Subject").fill("Team invoices");
      await mate.getByLabel("Topic").selectOption("billing");
      await mate.getByLabel("Message").fill("Can invoices of Babbage & Co\ngo to accounts@example.com?");
      await mate.getByRole("button", { name: "Send" }).click();
      await mate.getByText("The operators are told by email").waitFor();
      const ticketUrl = mate.url();
      assert.match(await mate.locator(".thread").textContent(), /go to accounts@example\.com/);
      await shot(mate, "26c-support-request");

      // An operator, promoted from the command line, sees the instance and gives credits.
      assert.equal(await owner.getByRole("link", { name: "Operator" }).count(), 0);
      server.admin("promote", `grace-${backend}@example.com`);
      // The operator answers the colleague's support request from the queue.
      await owner.goto(server.url("/admin/support"));
      await owner.getByRole("link", { name: "Team invoices" }).click();
      assert.match(await owner.textContent("main"), new RegExp(`alan-${backend}@example\\.com`));
      await owner.getByLabel("Answer").fill("Yes: add that address in your billing details.");
      await owner.getByRole("button", { name: "Send" }).click();
      await owner.getByText("Answer sent").waitFor();
      await shot(owner, "26d-admin-support");
      await mate.goto(ticketUrl);
      assert.match(await mate.locator(".thread").textContent(), /pixeld team[\s\S]*billing details/);

      await owner.goto(server.url("/admin"));
      await owner.getByRole("heading", { name: "System health" }).waitFor();
      assert.match(await owner.textContent("main"), new RegExp(`${backend} answers`));
      await shot(owner, "27-admin");
      await owner.getByRole("link", { name: "Users", exact: true }).click();
      await owner.getByRole("link", { name: `alan-${backend}@example.com` }).click();
      const before = Number(await owner.locator("#balance").textContent());
      await owner.getByLabel(/^Change/).fill("50");
      await owner.getByLabel("Kind").selectOption("promo");
      await owner.getByLabel("Reason").first().fill("welcome to the team");
      await owner.getByRole("button", { name: "Apply" }).click();
      await owner.getByText("Credits changed").waitFor();
      assert.equal(Number(await owner.locator("#balance").textContent()), before + 50);
      await shot(owner, "28-admin-user");

      // The signed-in pages fit a phone and pass axe in dark mode too.
      const phone = await newPage(browser, { viewport: { width: 360, height: 740 }, colorScheme: "dark" });
      await signIn(phone, server, `grace-${backend}@example.com`);
      const signedInPages = [
        "/dashboard", "/images", "/templates", "/usage", "/billing", "/account", "/account/security",
        "/account/tokens", "/account/privacy", "/orgs", "/org", "/org/keys", "/org/webhooks", "/admin",
        "/admin/users", "/support", ticketUrl.replace(/^https?:\/\/[^/]+/, ""), "/admin/support",
      ];
      for (const path of signedInPages) {
        await phone.goto(server.url(path));
        await assertFitsWidth(phone, path);
        await axe(phone, `${path} (dark, 360 px)`);
        assertClean(phone);
      }
    } finally {
      hook.close();
      await browser.close();
      await server.stop();
    }
  });
}
