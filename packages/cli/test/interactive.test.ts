/**
 * The interactive flows in a real pseudo-terminal: corral runs inside tmux (a socket of its own),
 * the test presses keys with send-keys and asserts what capture-pane shows. CI is unset inside,
 * so corral prompts; colour is off so the screen is plain text.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { homeIdOf } from "@corral/core";
import { type StandIn, spawnStandIn } from "../../core/test/fixtures/index.ts";
import { corral, isGone, makeHome, registered, type TestHome, waitFor } from "./helpers.ts";
import { Terminal } from "./tmux.ts";

const SLOW = 60_000;
// tmux comes from Debian's package (.ci/run installs it); without it, say so once and skip.
const haveTmux = Bun.which("tmux") !== null;
if (!haveTmux) console.log("interactive terminal tests skipped: no tmux (apt-get install tmux; .ci/run does)");

let home: TestHome;
let term: Terminal;
const standIns: StandIn[] = [];

beforeAll(async () => {
  if (!haveTmux) return;
  home = await makeHome();
  term = new Terminal();
});

afterAll(async () => {
  if (!haveTmux) return;
  term.close();
  for (const s of standIns) s.stop();
  await home.cleanup();
});

/** corral with this test's home, in a new tmux session. */
function start(...args: string[]): string {
  return term.start(["--home", home.dir, ...args]);
}

/** Loads "tiny" in slot 0 the scripted way and returns its pid. */
async function loadTiny(): Promise<number> {
  const { code, stdout, stderr } = await corral(home, ["load", "tiny", "--json"]);
  if (code !== 0) throw new Error(`load failed: ${stderr}`);
  return (JSON.parse(stdout) as { entry: { pid: number } }).entry.pid;
}

/** An untracked stand-in carrying this home's marker (verdict "ours"). */
async function ourOrphan(env: Record<string, string> = {}): Promise<StandIn> {
  const s = await spawnStandIn({ model: home.modelFile, env: { CORRAL_HOME_ID: homeIdOf(home.dir), ...env } });
  standIns.push(s);
  return s;
}

describe.skipIf(!haveTmux)("the menu", () => {
  it(
    "lists the tracked servers, comes back, and quits with exit 0",
    async () => {
      const pid = await loadTiny();
      const s = start();
      await term.waitFor(s, "What would you like to do?");
      expect(term.screen(s)).toContain("list");
      term.keys(s, "Enter");
      const screen = await term.waitFor(s, /SLOT\s+MODEL\s+PID/);
      expect(screen).toMatch(new RegExp(`0\\s+tiny\\s+${pid}\\s+${home.ports.tiny}\\s+running\\s+running\\s+ok`));
      await term.waitFor(s, /SLOT[\s\S]*What would you like to do\?/);
      term.keys(s, "Up", "Enter"); // the list wraps: up from the first entry is "quit"
      await term.waitFor(s, "bye");
      expect(await term.exitCode(s)).toBe(0);
      expect((await corral(home, ["unload", "0", "--yes"])).code).toBe(0);
    },
    SLOW,
  );

  it(
    "exits 130 with a cancelled line on Ctrl-C",
    async () => {
      const s = start();
      await term.waitFor(s, "What would you like to do?");
      term.keys(s, "C-c");
      expect(await term.exitCode(s)).toBe(130);
      expect(term.screen(s)).toContain("cancelled");
    },
    SLOW,
  );

  it(
    "adopts a ticked orphan after showing its evidence",
    async () => {
      const orphan = await ourOrphan({ CUDA_VISIBLE_DEVICES: "5" });
      const s = start();
      await term.waitFor(s, "What would you like to do?");
      term.keys(s, "Down", "Down", "Down", "Down", "Enter"); // list, load, unload, verify, → orphans
      await term.waitFor(s, "Which orphans?");
      term.keys(s, "Enter");
      await term.waitFor(s, "What should happen to");
      term.keys(s, "Down", "Enter"); // kill → adopt
      const screen = await term.waitFor(s, /Adopt pid \d+/);
      expect(screen).toContain("evidence");
      expect(screen).toContain(`pid ${orphan.pid}`);
      expect(screen).toContain(home.modelFile);
      expect(screen).toMatch(/Adopt pid [\d, ]*\b\d+\?/);
      term.keys(s, "y");
      await term.waitFor(s, `now tracking pid ${orphan.pid} in slot 5`);
      expect(registered(home.dir)).toContainEqual({ slot: "5", pid: orphan.pid });
      await term.waitFor(s, /now tracking[\s\S]*What would you like to do\?/);
      term.keys(s, "Up", "Enter");
      expect(await term.exitCode(s)).toBe(0);
      expect((await corral(home, ["unload", "5", "--yes"])).code).toBe(0);
      await waitFor(() => isGone(orphan.pid), 10_000, `pid ${orphan.pid} gone`);
    },
    SLOW,
  );
});

describe.skipIf(!haveTmux)("corral load in a terminal", () => {
  it(
    "asks for the model, GPU and port, then shows the elapsed time until ready",
    async () => {
      const s = start("load");
      await term.waitFor(s, "Which model should load?");
      expect(term.screen(s)).toContain("tiny (Tiny Test Model)");
      term.keys(s, "Enter");
      await term.waitFor(s, "Which GPU?");
      term.keys(s, "Enter"); // the model's default GPU, 0, is filled in
      await term.waitFor(s, "Which port?");
      expect(term.screen(s)).toContain(String(home.ports.tiny));
      term.keys(s, "Enter");
      const screen = await term.waitFor(s, /tiny is ready in slot 0 after \S+ \[\d+s\]/);
      expect(screen).toContain(`http://127.0.0.1:${home.ports.tiny}`);
      expect(await term.exitCode(s)).toBe(0);
      expect(registered(home.dir).map((e) => e.slot)).toEqual(["0"]);
    },
    SLOW,
  );

  it(
    "cancels on Ctrl-C at a prompt with exit 130, loading nothing",
    async () => {
      const s = start("load");
      await term.waitFor(s, "Which model should load?");
      term.keys(s, "C-c");
      expect(await term.exitCode(s)).toBe(130);
      expect(term.screen(s)).toContain("cancelled");
      expect(registered(home.dir).map((e) => e.slot)).toEqual(["0"]);
    },
    SLOW,
  );

  it(
    "cancels on Ctrl-C while the spinner counts, saying the server goes on starting",
    async () => {
      // Flags answer their prompts: no question is asked, the spinner starts at once.
      const s = start("load", "slow", "--gpu", "2", "--port", String(home.ports.slow));
      await term.waitFor(s, /Loading slow on GPU 2 \[[1-9]\d*s\]/);
      term.keys(s, "C-c");
      expect(await term.exitCode(s)).toBe(130);
      expect(term.screen(s)).toContain("cancelled: the server goes on starting");
      // It was registered as loading before the spinner started; the cleanup stops it.
      expect(
        registered(home.dir)
          .map((e) => e.slot)
          .sort(),
      ).toEqual(["0", "2"]);
      expect((await corral(home, ["unload", "2", "--force", "--yes"])).code).toBe(0);
    },
    SLOW,
  );
});

describe.skipIf(!haveTmux)("corral unload in a terminal", () => {
  it(
    "changes nothing when the confirmation is declined (exit 1)",
    async () => {
      const { pid } = registered(home.dir)[0]!;
      const s = start("unload", "0");
      await term.waitFor(s, "Stop tiny");
      term.keys(s, "n");
      expect(await term.exitCode(s)).toBe(1);
      expect(term.screen(s)).toContain("cancelled: nothing was done");
      expect(isGone(pid)).toBe(false);
    },
    SLOW,
  );

  it(
    "picks the slot, shows the evidence, and stops it on yes",
    async () => {
      const { pid } = registered(home.dir)[0]!;
      const s = start("unload");
      await term.waitFor(s, "Which slot should stop?");
      expect(term.screen(s)).toContain(`slot 0: tiny (pid ${pid}, port ${home.ports.tiny}, running)`);
      term.keys(s, "Enter");
      const screen = await term.waitFor(s, `Stop tiny (pid ${pid}, port ${home.ports.tiny}) in slot 0?`);
      expect(screen).toContain("evidence");
      expect(screen).toContain(home.modelFile);
      term.keys(s, "y");
      await term.waitFor(s, /stopped tiny after \S+ \[\d+s\]/);
      expect(await term.exitCode(s)).toBe(0);
      await waitFor(() => isGone(pid), 10_000, `pid ${pid} gone`);
      expect(registered(home.dir)).toEqual([]);
    },
    SLOW,
  );
});

describe.skipIf(!haveTmux)("corral cleanup in a terminal", () => {
  it(
    "ticks this home's orphan, shows the evidence, and kills it on yes",
    async () => {
      const orphan = await ourOrphan();
      const s = start("cleanup");
      let screen = await term.waitFor(s, "Which orphans should be killed?");
      // Only the orphan carrying this home's marker starts ticked (◼); others on the machine do not.
      expect(screen).toMatch(new RegExp(`◼ pid ${orphan.pid} `));
      term.keys(s, "Enter");
      screen = await term.waitFor(s, /Kill \d+ process(es)?\?/);
      expect(screen).toContain("evidence");
      expect(screen).toContain(`pid ${orphan.pid} (parent`);
      expect(screen).toContain(`port ${orphan.port}`);
      expect(screen).toContain("verdict ours");
      expect(screen).toContain("Kill 1 process?");
      term.keys(s, "y");
      await term.waitFor(s, /killed/);
      expect(await term.exitCode(s)).toBe(0);
      await waitFor(() => isGone(orphan.pid), 10_000, `orphan ${orphan.pid} gone`);
    },
    SLOW,
  );
});

describe.skipIf(!haveTmux)("corral kill in a terminal", () => {
  it(
    "confirms exactly what core will kill: the tracked model a case-insensitive name matches",
    async () => {
      const pid = registered(home.dir).find((r) => r.slot === "0")?.pid ?? (await loadTiny());
      const s = start("kill", "--name", "TINY TEST MODEL");
      const screen = await term.waitFor(s, `Kill pid ${pid}?`);
      // Not "every llama-server process named …": the tracked slot core resolved, with its pid and port.
      expect(screen).toContain(`slot 0: tiny, pid ${pid}, port ${home.ports.tiny}`);
      expect(screen).not.toContain("every llama-server process named");
      term.keys(s, "n");
      expect(await term.exitCode(s)).toBe(1);
      expect(isGone(pid)).toBe(false);
      expect((await corral(home, ["unload", "0", "--yes"])).code).toBe(0);
    },
    SLOW,
  );
});
