/**
 * The usage charts in a real browser (Debian's chromium) against the real `corral serve`, whose
 * supervisor writes metrics.db every 200 ms here: the sparkline, the slot's chart and the GPU
 * charts plot exactly the samples the API served (uPlot's data length against the response
 * body) and put pixels on their canvases, with no CSP violation.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Page, Response } from "playwright-core";
import { type ApiServer, FAKE_NVIDIA_SMI_DIR, startApi, waitFor } from "./helpers/api-server.ts";
import { CHROMIUM, launchChromium, type TestBrowser } from "./helpers/chromium.ts";

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.log(`chart tests skipped: no ${CHROMIUM} (apt-get install chromium; .ci/run does)`);

const ARTIFACTS = join(import.meta.dir, "..", "test-artifacts");
const SLOW = { timeout: 30_000 };

/** Records every CSP violation the page reports. */
const RECORD_VIOLATIONS = () => {
  const w = window as unknown as { violations: string[] };
  w.violations = [];
  document.addEventListener("securitypolicyviolation", (e) =>
    w.violations.push(`${e.violatedDirective} ${e.blockedURI}`),
  );
};

/**
 * Pixels of a canvas in the first series' colour (#1c7ed6: the sparkline's CPU, the chart's memory,
 * the GPU chart's first process), once there are more than `atLeast`: the line itself, not the axes.
 */
async function drawnPixels(page: Page, selector: string, atLeast: number): Promise<number> {
  await page.waitForFunction(
    ({ sel, atLeast }) => {
      const canvas = document.querySelector<HTMLCanvasElement>(sel);
      const ctx = canvas?.getContext("2d");
      if (!canvas || !ctx) return false;
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      let n = 0;
      for (let i = 0; i < data.length; i += 4) {
        const [r, g, b, a] = [data[i] ?? 0, data[i + 1] ?? 0, data[i + 2] ?? 0, data[i + 3] ?? 0];
        if (a > 100 && Math.abs(r - 28) < 50 && Math.abs(g - 126) < 50 && Math.abs(b - 214) < 50) n++;
      }
      return n > atLeast;
    },
    { sel: selector, atLeast },
    SLOW,
  );
  return page.evaluate((sel) => {
    const canvas = document.querySelector<HTMLCanvasElement>(sel);
    const ctx = canvas?.getContext("2d");
    if (!canvas || !ctx) return -1;
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i] ?? 0, data[i + 1] ?? 0, data[i + 2] ?? 0, data[i + 3] ?? 0];
      if (a > 100 && Math.abs(r - 28) < 50 && Math.abs(g - 126) < 50 && Math.abs(b - 214) < 50) n++;
    }
    return n;
  }, selector);
}

const samplesOf = async (res: Promise<Response>) => ((await (await res).json()) as { t: number[] }).t.length;

describe.skipIf(!haveChromium)("the usage charts", () => {
  let api: ApiServer;
  let browser: TestBrowser;
  let page: Page;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    api = await startApi([{ id: "tiny" }], {
      pathFirst: FAKE_NVIDIA_SMI_DIR,
      config: { watch: { interval_ms: 200 } },
    });
    const headers = { authorization: `Bearer ${api.token}`, "content-type": "application/json" };
    const load = await fetch(`${api.url}/api/v1/models/load`, {
      method: "POST",
      headers,
      body: JSON.stringify({ model_id: "tiny", gpu_id: 0 }),
    });
    expect({ status: load.status, body: await load.text() }).toMatchObject({ status: 200 });
    await waitFor(
      async () => {
        const res = await fetch(`${api.url}/api/v1/processes/0/usage?since=hour&step=1000`, { headers });
        return ((await res.json()) as { t: number[] }).t.length >= 3;
      },
      20_000,
      "three seconds of samples in metrics.db",
    );
    browser = await launchChromium();
    page = browser.page;
    await page.addInitScript(RECORD_VIOLATIONS);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await api?.stop();
  });

  it("draws a sparkline per process row from the samples served", async () => {
    const served = page.waitForResponse((r) => r.url().includes("/api/v1/processes/0/usage?since=hour"), SLOW);
    await page.goto(api.pageUrl);
    const count = await samplesOf(served);
    expect(count).toBeGreaterThan(0);
    const spark = page.locator('#processes-body tr[data-key="0"] button.spark[data-points]');
    await spark.waitFor(SLOW);
    expect(Number(await spark.getAttribute("data-points"))).toBe(count);
    expect(await drawnPixels(page, '#processes-body tr[data-key="0"] button.spark canvas', 10)).toBeGreaterThan(10);
  }, 40_000);

  it("opens the slot's chart of memory and CPU with its load marked, for the hour and the week", async () => {
    const hour = page.waitForResponse((r) => r.url().includes("/api/v1/processes/0/usage?since=hour"), SLOW);
    await page.getByRole("button", { name: "Chart of slot 0: memory and CPU over time" }).click();
    const count = await samplesOf(hour);
    const chart = page.locator("#usage-chart[data-points]");
    await chart.waitFor(SLOW);
    expect(Number(await chart.getAttribute("data-points"))).toBe(count);
    expect(Number(await chart.getAttribute("data-marks"))).toBeGreaterThanOrEqual(1);
    await page.locator('#usage-marks li[data-kind="load"]').first().waitFor(SLOW);
    expect(await drawnPixels(page, "#usage-chart canvas", 50)).toBeGreaterThan(50);
    await page.locator("#usage-section").screenshot({ path: join(ARTIFACTS, "usage-chart.png") });

    const week = page.waitForResponse((r) => r.url().includes("/api/v1/processes/0/usage?since=week"), SLOW);
    await page.locator('#usage-section button[data-range="week"]').click();
    const weekCount = await samplesOf(week);
    await page.locator("#usage-title", { hasText: "last week" }).waitFor(SLOW);
    await page.waitForFunction(
      (n) => document.querySelector("#usage-chart")?.getAttribute("data-points") === String(n),
      weekCount,
      SLOW,
    );
    expect(await page.locator('#usage-section button[data-range="week"]').getAttribute("aria-pressed")).toBe("true");
  }, 40_000);

  it("draws per GPU the memory each process held", async () => {
    const box = page.locator('#gpu-usage .chart[data-gpu="0"][data-points]');
    await box.waitFor(SLOW);
    expect(Number(await box.getAttribute("data-points"))).toBeGreaterThan(0);
    expect(await drawnPixels(page, '#gpu-usage .chart[data-gpu="0"] canvas', 50)).toBeGreaterThan(50);
    expect(await page.locator('#gpu-usage .chart[data-gpu="0"]').textContent()).toContain("pid 41001");
  }, 40_000);

  it("breaks no rule of the page's CSP", async () => {
    const violations = await page.evaluate(() => (window as unknown as { violations: string[] }).violations);
    expect(violations).toEqual([]);
    expect(browser.pageErrors.filter((e) => /Content Security Policy/i.test(e))).toEqual([]);
    expect(browser.pageErrors).toEqual([]);
  });
});
