/**
 * The page shows what a reload and a crash left: a stale badge on the server a reload changed, and
 * the crash report one click away in the history (Debian's chromium against a real corral serve).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { type ApiServer, startApi } from "./helpers/api-server.ts";
import { CHROMIUM, launchChromium, type TestBrowser } from "./helpers/chromium.ts";

const haveChromium = existsSync(CHROMIUM);
const SLOW = { timeout: 30_000 };

describe.skipIf(!haveChromium)("reloads and crashes on the page", () => {
  let api: ApiServer;
  let browser: TestBrowser;
  let page: Page;

  beforeAll(async () => {
    api = await startApi([{ id: "tiny", gpu: "0", args: ["--fake-exit-after-ms", "6000", "--fake-exit-code", "7"] }], {
      config: { watch: { interval_ms: 200 } },
    });
    browser = await launchChromium();
    page = browser.page;
    await page.goto(api.pageUrl);
    await page.locator('#connection[data-state="open"]').waitFor(SLOW);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await api?.stop();
  });

  const call = (path: string, body: unknown) =>
    fetch(`${api.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${api.token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  it("marks the server stale after a reload changed its model, then opens its crash report in one click", async () => {
    expect((await call("/api/v1/models/load", { model_id: "tiny" })).status).toBe(200);
    const file = join(api.home, "corral.yaml");
    const config = JSON.parse(readFileSync(file, "utf8"));
    config.models[0].args.push("--ctx-size", "1024");
    writeFileSync(file, JSON.stringify(config));
    const reloaded = (await (await call("/api/v1/config/reload", {})).json()) as { stale: string[] };
    expect(reloaded.stale).toEqual(["0"]);
    const badge = page.locator('#processes-body tr[data-key="0"] .badge.status-stale');
    await badge.waitFor(SLOW);
    expect(await badge.getAttribute("title")).toContain("changed");

    // The stand-in exits by itself with code 7: this corral serve spawned it, so it knows the code.
    const summary = page.locator("#history .crash-report summary").first();
    await summary.waitFor(SLOW);
    expect(await summary.textContent()).toBe("Crash report: exit code 7");
    await summary.click();
    const report = page.locator("#history .crash-report").first();
    await expect(report.locator(".log-tail").isVisible()).resolves.toBe(true);
    expect(await report.locator(".log-tail").textContent()).toContain("exiting with code 7");
    expect(await report.locator("dl").textContent()).toContain("not restarted: restart is off");
    expect(browser.pageErrors).toEqual([]);
  }, 60_000);
});
