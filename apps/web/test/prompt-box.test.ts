/**
 * The Models panel in a real browser (Debian's chromium) against the real `corral serve`: a
 * prompt typed into a model's box is answered by a stream through the gateway, which loads the
 * model on demand, and the card's figures follow.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { existsSync } from "node:fs";
import type { Page } from "playwright-core";
import { type ApiServer, startApi } from "./helpers/api-server.ts";
import { CHROMIUM, launchChromium, type TestBrowser } from "./helpers/chromium.ts";

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.log(`prompt box tests skipped: no ${CHROMIUM} (apt-get install chromium)`);
const SLOW = { timeout: 30_000 };

describe.skipIf(!haveChromium)("a model's prompt box", () => {
  let api: ApiServer;
  let browser: TestBrowser;
  let page: Page;

  beforeAll(async () => {
    api = await startApi([{ id: "chat", gpu: "0", args: ["--fake-token-ms", "20"] }]);
    browser = await launchChromium();
    page = browser.page;
    await page.goto(api.pageUrl);
    await page.locator('#models li[data-model="chat"][data-state="unloaded"]').waitFor(SLOW);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await api?.stop();
  });

  it("streams an answer through the gateway, loading the model first", async () => {
    const card = page.locator('#models li[data-model="chat"]');
    await card.getByRole("textbox", { name: "Prompt for chat" }).fill("Hello?");
    await card.getByRole("button", { name: "Ask" }).click();
    const answer = card.locator("output.model-answer");
    // The stand-in sends 64 tokens 20 ms apart: the first shows long before the last.
    await answer.filter({ hasText: "tok0" }).waitFor(SLOW);
    expect(await answer.getAttribute("data-state")).toBe("streaming");
    await card.locator('output.model-answer[data-state="done"]').waitFor(SLOW);
    expect(await answer.textContent()).toContain("tok63");
    // The load was an event: the page refreshed and the card says where the model runs now.
    await page.locator('#models li[data-model="chat"][data-state="loaded"]').waitFor(SLOW);
    expect(await card.locator(".model-summary").textContent()).toContain("loaded in slot 0");
    expect(browser.pageErrors).toEqual([]);
  }, 60_000);
});
