/**
 * `corral top` in a real pseudo-terminal (tmux on a socket of its own): it draws the tracked
 * server with its figures, redraws each tick, and q quits with exit 0 and the terminal restored.
 * Without a terminal it refuses, and `--once` prints one screen.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { corral, makeHome, type TestHome } from "./helpers.ts";
import { Terminal } from "./tmux.ts";

const SLOW = 60_000;
const haveTmux = Bun.which("tmux") !== null;
if (!haveTmux) console.log("corral top terminal test skipped: no tmux (apt-get install tmux; .ci/run does)");

let home: TestHome;
let term: Terminal | undefined;
let pid = 0;

beforeAll(async () => {
  home = await makeHome();
  const { code, stdout, stderr } = await corral(home, ["load", "tiny", "--json"]);
  if (code !== 0) throw new Error(`load failed: ${stderr}`);
  pid = (JSON.parse(stdout) as { entry: { pid: number } }).entry.pid;
  if (haveTmux) term = new Terminal();
});

afterAll(async () => {
  term?.close();
  await home.cleanup();
});

async function waitUntil(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

describe("corral top", () => {
  it.skipIf(!haveTmux)(
    "shows the server's health, CPU and memory, redraws each tick, and quits with q",
    async () => {
      const t = term as Terminal;
      const s = t.start(["--home", home.dir, "top", "--interval", "300"]);
      const first = await t.waitFor(s, new RegExp(`\\b${pid}\\b.*running`));
      for (const header of ["SLOT", "HEALTH", "CPU", "MEMORY", "GPU MEM", "REQ/S", "RESTARTS"]) {
        expect(first).toContain(header);
      }
      expect(first).toMatch(/ok/);
      expect(first).toMatch(/\d+(\.\d)? ?[KMG]i?B/);
      const clock = /\d{1,2}:\d{2}:\d{2}/.exec(first)?.[0];
      // The clock in the header moves: the screen is redrawn.
      await waitUntil(() => /\d{1,2}:\d{2}:\d{2}/.exec(t.screen(s))?.[0] !== clock, "the screen to be redrawn");
      t.keys(s, "q");
      expect(await t.exitCode(s)).toBe(0);
      expect(t.screen(s)).not.toContain("HEALTH");
    },
    SLOW,
  );

  it("refuses without a terminal, naming --once, and --once prints one screen", async () => {
    const refused = await corral(home, ["top"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("--once");
    const once = await corral(home, ["top", "--once"]);
    expect(once.code).toBe(0);
    expect(once.stdout).toContain(String(pid));
    expect(once.stdout).toContain("HEALTH");
    const json = await corral(home, ["top", "--once", "--json"]);
    expect(JSON.parse(json.stdout)[0]).toMatchObject({ slot: "0", entry: { pid } });
  });
});
