/**
 * The first run in a real browser: `corral serve` over a home whose corral.yaml lists no model,
 * a fake HOME holding GGUF files in the usual places, and the real llama-server of
 * `bun run llama:build`. The page's empty state says where the configuration is and names
 * `corral init`; its scan finds the tiny chat model in the folder typed in; "Add to corral.yaml"
 * adds it through the API; the load dialog then starts it and it runs.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Page } from "playwright-core";
import { makeFirstRunHome } from "../../../packages/core/test/fixtures/first-run-home.ts";
import { llamaBuildPaths } from "../../../scripts/llama-paths.ts";
import { freePort, waitFor } from "./helpers/api-server.ts";
import { CHROMIUM, launchChromium, type TestBrowser } from "./helpers/chromium.ts";

const llama = llamaBuildPaths();
const ready = existsSync(CHROMIUM) && llama.ready && llama.chatReady;
if (!ready) {
  const why = existsSync(CHROMIUM) ? llama.reason || "no tiny-chat.gguf" : `no ${CHROMIUM}`;
  console.log(`first-run browser test skipped: ${why} (bun run llama:build; apt-get install chromium)`);
}

const MAIN = resolve(import.meta.dir, "../../../packages/cli/src/main.ts");
const ARTIFACTS = join(import.meta.dir, "..", "test-artifacts");
const SLOW = { timeout: 60_000 };

describe.skipIf(!ready)("the page's first run", () => {
  const fake = makeFirstRunHome();
  const home = mkdtempSync(join(tmpdir(), "corral-web-first-"));
  const folder = mkdtempSync(join(tmpdir(), "corral-web-gguf-"));
  let url = "";
  let token = "";
  let serve: ReturnType<typeof Bun.spawn> | undefined;
  let browser: TestBrowser;
  let page: Page;
  let output = "";

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // The folder the user types in: the tiny model through a symlink, as a download manager leaves it.
    symlinkSync(llama.chatModel, join(folder, "tiny-chat.gguf"));
    const base = await freePort();
    writeFileSync(
      join(home, "corral.yaml"),
      `# my corral\nports:\n  range: [${base}, ${Math.min(base + 20, 65_535)}]\n  gpu: {}\nmodels: []\n`,
    );
    const port = await freePort();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== "CORRAL_TOKEN") env[k] = v;
    // No llama_server in the file: the default is found through CORRAL_LLAMA_SERVER, as the build's cache would be.
    Object.assign(env, { HOME: fake.home, CORRAL_LLAMA_SERVER: llama.server, GGML_NO_BACKTRACE: "1" });
    delete env.XDG_CACHE_HOME;
    serve = Bun.spawn([process.execPath, MAIN, "--home", home, "serve", "--port", String(port)], {
      env,
      stdout: "pipe",
      stderr: "pipe",
    });
    for (const stream of [serve.stdout, serve.stderr] as ReadableStream<Uint8Array>[]) {
      void (async () => {
        const reader = stream
          .pipeThrough(new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>)
          .getReader();
        for (let r = await reader.read(); !r.done; r = await reader.read()) output += r.value;
      })();
    }
    url = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => (await fetch(`${url}/api/v1/health`).catch(() => undefined))?.ok === true,
      20_000,
      "serve",
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${output}`);
    });
    token = readFileSync(join(home, "token"), "utf8").trim();
    browser = await launchChromium();
    page = browser.page;
    await page.goto(`${url}/#token=${token}`);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    // Only the llama-servers this home's registry recorded are stopped: by `corral unload`.
    if (serve) {
      Bun.spawnSync([process.execPath, MAIN, "--home", home, "unload", "0", "--yes"], { env: { ...process.env } });
      serve.kill("SIGTERM");
      await Promise.race([serve.exited, Bun.sleep(5_000)]);
      serve.kill("SIGKILL");
    }
    rmSync(home, { recursive: true, force: true });
    rmSync(folder, { recursive: true, force: true });
  });

  it("says where the configuration is, scans the folder given, adds the model chosen and runs it", async () => {
    const setup = page.locator("#setup-section");
    await setup.waitFor({ state: "visible", ...SLOW });
    await page.locator("#setup-config", { hasText: "corral init" }).waitFor(SLOW);
    expect(await page.locator("#setup-config").textContent()).toContain(
      `${join(home, "corral.yaml")} lists no models yet`,
    );
    // The usual places of the fake home are scanned on their own.
    await setup.locator("li", { hasText: "tinyllama:latest" }).waitFor(SLOW);

    await page.getByLabel("Folder to look in").fill(folder);
    await setup.getByRole("button", { name: "Scan" }).click();
    const item = setup.locator("li", { hasText: "tiny-chat" });
    await item.waitFor(SLOW);
    expect(await item.textContent()).toContain("from the folder given");
    expect(await item.textContent()).toMatch(/llama · [\d.]+[KM] · F32 · context 2048/);
    for (const box of await setup.locator("input[type=checkbox]").all()) {
      const value = await box.getAttribute("value");
      if (value !== join(folder, "tiny-chat.gguf") && (await box.isChecked())) await box.uncheck();
    }
    await setup.getByRole("button", { name: "Add to corral.yaml" }).click();
    await page.locator("#setup-note", { hasText: "added 1 model" }).waitFor(SLOW);
    const text = readFileSync(join(home, "corral.yaml"), "utf8");
    expect(text).toContain("# my corral");
    expect(text).toContain('- id: "tiny-chat"');

    // Loadable at once: the running server took the new configuration.
    await page.getByRole("button", { name: "Load model" }).click();
    const dialog = page.getByRole("dialog", { name: "Load a model" });
    await dialog.getByLabel("Model").selectOption("tiny-chat");
    await dialog.getByLabel("GPU(s)").fill("0");
    await dialog.getByRole("button", { name: "Load" }).click();
    await page.locator('#processes-body tr[data-key="0"] .badge', { hasText: "running" }).first().waitFor(SLOW);
    await page.screenshot({ path: join(ARTIFACTS, "first-run.png"), fullPage: true });

    const processes = (await fetch(`${url}/api/v1/processes`, { headers: { authorization: `Bearer ${token}` } }).then(
      (r) => r.json(),
    )) as { processes: { entry: { model_id: string; port: number; status: string } }[] };
    const entry = processes.processes[0]?.entry;
    expect(entry).toMatchObject({ model_id: "tiny-chat", status: "running" });
    expect((await fetch(`http://127.0.0.1:${entry?.port}/health`)).status).toBe(200);
    expect(browser.pageErrors).toEqual([]);
  }, 120_000);
});
