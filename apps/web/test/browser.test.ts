/**
 * The page in a real browser (Debian's chromium through playwright-core) against the real API
 * (a subprocess over a temp home, stand-in llama-servers). Screenshots go to test-artifacts/.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { type ApiServer, FAKE_NVIDIA_SMI_DIR, killStandIns, spawnStandIn, startApi } from "./helpers/api-server.ts";
import { CHROMIUM, launchChromium, type TestBrowser } from "./helpers/chromium.ts";

// The browser comes from Debian's package (.ci/run installs it); without it, say so once and skip.
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.log(`browser tests skipped: no ${CHROMIUM} (apt-get install chromium; .ci/run does)`);

const ARTIFACTS = join(import.meta.dir, "..", "test-artifacts");
const SLOW = { timeout: 30_000 };

/** Keeps every message the page's aria-live region announced, for the test to read. */
const RECORD_ANNOUNCEMENTS = () => {
  const w = window as unknown as { announced: string[] };
  w.announced = [];
  document.addEventListener("DOMContentLoaded", () => {
    const region = document.getElementById("announcer");
    if (!region) return;
    const record = () => region.textContent && w.announced.push(region.textContent);
    new MutationObserver(record).observe(region, { childList: true, characterData: true, subtree: true });
  });
};

const announced = (page: Page) => page.evaluate(() => (window as unknown as { announced: string[] }).announced);
const row = (page: Page, slot: string) => page.locator(`#processes-body tr[data-key="${slot}"]`);
const status = (page: Page, slot: string, text: string) => row(page, slot).locator(".badge", { hasText: text });

async function waitAnnounced(page: Page, text: string): Promise<void> {
  await page.waitForFunction(
    (t) => (window as unknown as { announced: string[] }).announced.some((a) => a.includes(t)),
    text,
    SLOW,
  );
}

async function loadThroughPage(page: Page, model: string, gpu: string): Promise<void> {
  await page.getByRole("button", { name: "Load model" }).click();
  const dialog = page.getByRole("dialog", { name: "Load a model" });
  await dialog.getByLabel("Model").selectOption(model);
  await dialog.getByLabel("GPU(s)").fill(gpu);
  await dialog.getByRole("button", { name: "Load" }).click();
}

describe.skipIf(!haveChromium)("the page against the real API", () => {
  let api: ApiServer;
  let browser: TestBrowser;
  let page: Page;
  const handStarted: number[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    api = await startApi([{ id: "tiny", args: ["--fake-load-ms", "1500"] }, { id: "small" }]);
    browser = await launchChromium();
    page = browser.page;
    await page.addInitScript(RECORD_ANNOUNCEMENTS);
    // The link `corral serve` prints: the page takes the token from the fragment.
    await page.goto(api.pageUrl);
    await page.locator('#connection[data-state="open"]').waitFor(SLOW);
    await page.locator("#processes-note", { hasText: "No processes are tracked" }).waitFor(SLOW);
  }, 60_000);

  it("takes the token from the link into sessionStorage and drops it from the address bar", async () => {
    expect(page.url()).toBe(`${api.url}/`);
    expect(await page.evaluate(() => sessionStorage.getItem("corral.token"))).toBe(api.token);
  });

  it("is sent with a strict CSP, no framing and no Referer, and works under them", async () => {
    const res = await fetch(`${api.url}/`);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    await res.arrayBuffer();
    // A CSP violation is a console error: the page-errors check at the end of this block sees it.
    expect(browser.pageErrors.filter((e) => /Content Security Policy/i.test(e))).toEqual([]);
  });

  it("changes nothing for a page on another local port that tries fetch and a form POST against corral", async () => {
    const target = api.url;
    const hostile = `<!doctype html><title>hostile</title>
<form id="f" method="POST" action="${target}/api/v1/models/load" enctype="text/plain">
<input name='{"model_id":"tiny","gpu_id":3,"pad":"' value='"}'></form>
<script>
const tries = [
  fetch("${target}/api/v1/kill", { method: "POST", mode: "no-cors", headers: { "content-type": "text/plain" }, body: '{"name":"tiny"}' }),
  fetch("${target}/api/v1/cleanup-orphaned?force=true&include_foreign=true", { method: "POST", mode: "no-cors" }),
  fetch("${target}/api/v1/processes").then((r) => r.text()).then((t) => { window.leaked = t; }),
];
Promise.allSettled(tries).then(() => document.getElementById("f").submit());
</script>`;
    const evil = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: () => new Response(hostile, { headers: { "content-type": "text/html" } }),
    });
    const other = await browser.context.newPage();
    try {
      const before = (
        (await await fetch(`${target}/api/v1/history?limit=1000`, {
          headers: { authorization: `Bearer ${api.token}` },
        }).then((r) => r.json())) as { events: unknown[] }
      ).events.length;
      await other.goto(`http://127.0.0.1:${evil.port}/`);
      await other.waitForURL(`${target}/api/v1/models/load`, SLOW);
      expect(await other.textContent("body")).toContain("ORIGIN_NOT_ALLOWED");
      expect(await other.evaluate(() => (window as unknown as { leaked?: string }).leaked)).toBeUndefined();
      const headers = { authorization: `Bearer ${api.token}` };
      const after = (await (await fetch(`${target}/api/v1/history?limit=1000`, { headers })).json()) as {
        events: Array<{ event: string }>;
      };
      expect(after.events.length).toBe(before);
      const listed = (await (await fetch(`${target}/api/v1/processes`, { headers })).json()) as {
        processes: unknown[];
      };
      expect(listed.processes).toEqual([]);
    } finally {
      await other.close();
      evil.stop(true);
    }
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    if (api) killStandIns(handStarted, api.exe);
    await api?.stop();
  }, 30_000);

  it("opens the load dialog from the keyboard and gives focus back when it closes", async () => {
    await page.getByRole("button", { name: "Load model" }).focus();
    await page.keyboard.press("Enter");
    const dialog = page.getByRole("dialog", { name: "Load a model" });
    await dialog.waitFor();
    expect(await dialog.getByLabel("Model").locator("option").allTextContents()).toEqual(["tiny", "small"]);
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("load");
  }, 30_000);

  it("loads a model through the page and shows it turn running with its figures", async () => {
    await loadThroughPage(page, "tiny", "0");
    await status(page, "0", "running").waitFor(SLOW);
    await waitAnnounced(page, "Loaded tiny on GPU 0");
    await row(page, "0").locator('td[data-health="ok"]').waitFor(SLOW);
    await row(page, "0").locator('td[data-label="Memory"]', { hasText: /iB$/ }).waitFor(SLOW);
    const cells = await row(page, "0").locator("th, td").allTextContents();
    expect(cells.slice(0, 3)).toEqual(["0", "tiny", "0"]);
    expect(cells[4]).toMatch(/^\d+$/);
    expect(await announced(page)).toContainEqual(expect.stringContaining("Slot 0 (tiny)"));
  }, 60_000);

  it("shows the API's own error when a load is refused", async () => {
    await loadThroughPage(page, "small", "0");
    const banner = page.getByRole("alert");
    await banner.waitFor(SLOW);
    const text = await banner.locator("#error-text").textContent();
    expect(text).toStartWith("Loading small on GPU 0 failed: ");
    expect(text).toMatch(/\((SLOT_IN_USE|PORT_IN_USE)\)$/);
    await banner.getByRole("button", { name: "Dismiss the error" }).click();
    expect(await banner.isHidden()).toBe(true);
  }, 60_000);

  it("follows the log of a process and verifies its identity", async () => {
    await page.getByRole("button", { name: "Log slot 0" }).click();
    const dialog = page.getByRole("dialog", { name: "Log of slot 0" });
    await dialog.locator("pre", { hasText: "server is listening" }).waitFor(SLOW);
    await dialog.getByText("Following").waitFor(SLOW);
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    expect(await page.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe("Log slot 0");
    await page.getByRole("button", { name: "Verify slot 0" }).click();
    await waitAnnounced(page, "Slot 0 verified: running");
  }, 60_000);

  it("shows an orphan started by hand with its evidence, then kills it after a confirmation", async () => {
    const orphan = await spawnStandIn({ model: join(api.home, "tiny.gguf") });
    handStarted.push(orphan.pid);
    await page.getByRole("button", { name: "Refresh" }).click();
    const card = page.locator(`#orphans li[data-key="${orphan.pid}"]`);
    await card.waitFor(SLOW);
    const evidence = await card.textContent();
    expect(evidence).toContain("likely-ours");
    expect(evidence).toContain("no registry entry tracks it");
    expect(evidence).toContain(`--port ${orphan.port}`);
    expect(evidence).toContain("tiny.gguf");

    await page.emulateMedia({ colorScheme: "light" });
    await page.screenshot({ path: join(ARTIFACTS, "desktop.png"), fullPage: true });
    await page.setViewportSize({ width: 375, height: 812 });
    await page.emulateMedia({ colorScheme: "dark" });
    await page.screenshot({ path: join(ARTIFACTS, "phone.png") });
    await page.screenshot({ path: join(ARTIFACTS, "phone-full.png"), fullPage: true });

    // Only look: other test files run their own stand-ins, which this API sees as orphans too.
    await page.getByRole("button", { name: "Clean up all" }).click();
    const cleanup = page.getByRole("dialog", { name: /^Kill \d+ orphans?\?$/ });
    await cleanup.waitFor();
    expect(await cleanup.locator(".targets li strong").allTextContents()).toContain(`PID ${orphan.pid}`);
    await page.screenshot({ path: join(ARTIFACTS, "phone-cleanup-dialog.png") });
    await cleanup.getByRole("button", { name: "Cancel" }).click();
    await page.setViewportSize({ width: 1400, height: 900 });
    await page.emulateMedia({ colorScheme: "light" });

    await card.getByRole("button", { name: `Kill orphan PID ${orphan.pid}` }).click();
    const confirm = page.getByRole("dialog", { name: `Kill orphan PID ${orphan.pid}?` });
    await confirm.waitFor();
    expect(await confirm.locator("pre").textContent()).toContain(orphan.exe);
    await confirm.getByRole("button", { name: "Kill", exact: true }).click();
    await card.waitFor({ state: "detached", ...SLOW });
    expect(
      await Promise.race([orphan.proc.exited.then(() => "exited"), Bun.sleep(20_000).then(() => "still running")]),
    ).toBe("exited");
  }, 90_000);

  it("adopts an orphan into the slot given and then tracks it like its own", async () => {
    const orphan = await spawnStandIn({ model: join(api.home, "tiny.gguf"), wait: "healthy" });
    handStarted.push(orphan.pid);
    await page.getByRole("button", { name: "Refresh" }).click();
    await page.getByRole("button", { name: `Adopt orphan PID ${orphan.pid}` }).click();
    const dialog = page.getByRole("dialog", { name: `Adopt orphan PID ${orphan.pid}` });
    await dialog.getByLabel("Slot (optional)").fill("2");
    await dialog.getByRole("button", { name: "Adopt" }).click();
    await status(page, "2", "running").waitFor(SLOW);
    expect(await row(page, "2").locator("th, td").allTextContents()).toContain(String(orphan.pid));
    await page.locator(`#orphans li[data-key="${orphan.pid}"]`).waitFor({ state: "detached", ...SLOW });
    await page.getByRole("button", { name: "Unload slot 2" }).click();
    await row(page, "2").waitFor({ state: "detached", ...SLOW });
    expect(
      await Promise.race([orphan.proc.exited.then(() => "exited"), Bun.sleep(20_000).then(() => "still running")]),
    ).toBe("exited");
  }, 60_000);

  it("switches the model of a slot, then force kills it only after the confirmation", async () => {
    await loadThroughPage(page, "small", "1");
    await status(page, "1", "running").waitFor(SLOW);
    await page.getByRole("button", { name: "Switch slot 1" }).click();
    const switching = page.getByRole("dialog", { name: "Switch the model of slot 1" });
    await switching.waitFor();
    expect(await switching.getByLabel("Model").locator("option").allTextContents()).toEqual(["tiny · loaded in 0"]);
    await switching.getByRole("button", { name: "Switch" }).click();
    await waitAnnounced(page, "Slot 1 now runs tiny");
    await page.locator('#processes-body tr[data-key="1"] td:nth-child(2)', { hasText: "tiny" }).waitFor(SLOW);
    await status(page, "1", "running").waitFor(SLOW);
    await page.getByRole("button", { name: "Force kill slot 1" }).click();
    const confirm = page.getByRole("dialog", { name: "Force kill slot 1?" });
    await confirm.waitFor();
    expect(await confirm.textContent()).toContain("SIGKILL");
    await confirm.getByRole("button", { name: "Cancel" }).click();
    expect(await status(page, "1", "running").count()).toBe(1);
    await page.getByRole("button", { name: "Force kill slot 1" }).click();
    await confirm.getByRole("button", { name: "Force kill" }).click();
    await row(page, "1").waitFor({ state: "detached", ...SLOW });
    await waitAnnounced(page, "Killed slot 1 (tiny)");
  }, 60_000);

  it("unloads through the page", async () => {
    await page.getByRole("button", { name: "Unload slot 0" }).click();
    await row(page, "0").waitFor({ state: "detached", ...SLOW });
    await page.locator("#processes-note", { hasText: "No processes are tracked" }).waitFor(SLOW);
    await waitAnnounced(page, "Unloaded slot 0 (tiny)");
    const entry = (...parts: string[]) =>
      parts.reduce((l, part) => l.filter({ hasText: part }), page.locator("#history li")).first();
    await entry("registered", "slot 0 · tiny", "load requested").waitFor(SLOW);
    await entry("killed", "slot 0 · tiny", "unload requested").waitFor(SLOW);
    // Who asked: the page's requests carry the server's own token.
    await entry("request", "/api/v1/", "by server").waitFor(SLOW);
    expect(browser.pageErrors).toEqual([]);
  }, 60_000);
});

describe.skipIf(!haveChromium)("the page against an API that wants a token and has GPU figures", () => {
  let api: ApiServer;
  let browser: TestBrowser;

  beforeAll(async () => {
    api = await startApi([{ id: "tiny" }], { token: "s3cret", pathFirst: FAKE_NVIDIA_SMI_DIR });
    browser = await launchChromium({ width: 375, height: 812 });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await api?.stop();
  }, 30_000);

  it("asks for the token, says when it is wrong, and keeps it for the tab only", async () => {
    const { page } = browser;
    await page.goto(api.url);
    const dialog = page.getByRole("dialog", { name: "API token" });
    await dialog.getByLabel("Token").fill("wrong");
    await dialog.getByRole("button", { name: "Use token" }).click();
    await dialog.getByText("The token was refused: the token is wrong").waitFor(SLOW);
    await dialog.getByLabel("Token").fill("s3cret");
    await dialog.getByRole("button", { name: "Use token" }).click();
    await page.locator('#connection[data-state="open"]').waitFor(SLOW);
    await page.locator("#processes-note", { hasText: "No processes are tracked" }).waitFor(SLOW);
    expect(await page.evaluate(() => [sessionStorage.getItem("corral.token"), localStorage.length])).toEqual([
      "s3cret",
      0,
    ]);
    expect(await page.getByRole("dialog").count()).toBe(0);
  }, 60_000);

  it("shows a card per GPU with its memory and who holds it", async () => {
    const { page } = browser;
    const card = page.locator('#gpus [data-gpu="0"]');
    await card.waitFor(SLOW);
    expect(await page.locator("#gpus .gpu h3").allTextContents()).toEqual([
      "GPU 0NVIDIA GeForce RTX 4090",
      "GPU 1NVIDIA GeForce RTX 4090",
      "GPU 2NVIDIA GeForce RTX 3060",
    ]);
    expect(await card.textContent()).toContain("18.3 GiB / 24.0 GiB");
    expect(await card.getByRole("meter").getAttribute("aria-valuenow")).toBe("76");
    expect(await card.textContent()).toContain("No tracked slot");
    expect(await page.locator("#gpus-note").textContent()).toBe("");
    await page.emulateMedia({ colorScheme: "dark" });
    await page.screenshot({ path: join(ARTIFACTS, "phone-gpus.png") });
  }, 30_000);
});
