/**
 * Debian's chromium driven by playwright-core: headless, no sandbox (tests run as root in CI),
 * nothing that phones home, and a fresh profile per launch so no state leaks between runs.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";

/**
 * Where the system chromium lives (`apt-get install chromium`).
 * @example
 * chromium.launchPersistentContext(profile, { executablePath: CHROMIUM })
 */
export const CHROMIUM = "/usr/bin/chromium";

const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A launched browser with one page; `close` also removes the profile folder. */
export interface TestBrowser {
  readonly context: BrowserContext;
  readonly page: Page;
  /** uncaught exceptions and console errors of the page (not the HTTP errors chromium logs for it) */
  readonly pageErrors: string[];
  close(): Promise<void>;
}

/**
 * Launches chromium with a temp profile and a desktop-sized page.
 * @example
 * const b = await launchChromium(); await b.page.goto(url); await b.close()
 */
export async function launchChromium(
  options: { readonly width?: number; readonly height?: number } = {},
): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: install Debian's browser with \`apt-get install -y chromium\``);
  const profile = mkdtempSync(join(tmpdir(), "corral-web-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: options.width ?? 1400, height: options.height ?? 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("console", (m) => {
    // Chromium logs every 4xx/5xx response; the page shows those itself, so they are no page error.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource: the server responded"))
      pageErrors.push(m.text());
  });
  return {
    context,
    page,
    pageErrors,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
