/**
 * Every subcommand run as a real `bun packages/cli/src/main.ts …` subprocess against a temp home
 * whose corral.yaml points at the stand-in llama-server. stdin is not a terminal here, so these
 * are the scripted paths: JSON output, exit codes, and refusals without --yes.
 * Every process these tests start is stopped by PID (or by unloading this home's slots).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { homeIdOf } from "@corral/core";
import { type StandIn, spawnStandIn } from "../../core/test/fixtures/index.ts";
import { corral, isGone, makeHome, readUntil, registered, spawnCorral, type TestHome, waitFor } from "./helpers.ts";

const SLOW = 60_000;
const FAKE_NVIDIA_SMI_DIR = join(import.meta.dir, "..", "..", "core", "test", "fixtures", "nvidia-smi");

let home: TestHome;
const standIns: StandIn[] = [];

beforeAll(async () => {
  home = await makeHome();
});

afterAll(async () => {
  for (const s of standIns) s.stop();
  await home.cleanup();
});

function parse<T = unknown>(text: string): T {
  return JSON.parse(text) as T;
}

describe("corral without a command", () => {
  it("prints its version", async () => {
    const { code, stdout } = await corral(undefined, ["--version"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^corral \d+\.\d+\.\d+\n$/);
  });

  it("prints help listing every subcommand", async () => {
    const { code, stdout } = await corral(undefined, ["--help"]);
    expect(code).toBe(0);
    for (const name of [
      "ls",
      "load",
      "unload",
      "switch",
      "verify",
      "orphans",
      "cleanup",
      "kill",
      "adopt",
      "logs",
      "history",
      "gpus",
      "serve",
      "token",
    ]) {
      expect(stdout).toContain(`  ${name} `);
    }
  });

  it("is a usage error outside a terminal, since the menu needs one", async () => {
    const { code, stderr } = await corral(home, []);
    expect(code).toBe(2);
    expect(stderr).toContain("the menu needs a terminal");
  });

  it("refuses an unknown command with exit 2", async () => {
    const { code, stderr } = await corral(home, ["lst"]);
    expect(code).toBe(2);
    expect(stderr).toContain('unknown command "lst"');
  });
});

describe("--help of every subcommand", () => {
  for (const name of [
    "ls",
    "load",
    "unload",
    "switch",
    "verify",
    "orphans",
    "cleanup",
    "kill",
    "adopt",
    "logs",
    "history",
    "gpus",
    "serve",
    "token",
  ]) {
    it(`explains ${name} and exits 0`, async () => {
      const { code, stdout } = await corral(undefined, [name, "--help"]);
      expect(code).toBe(0);
      expect(stdout).toStartWith(`Usage: corral ${name}`);
      expect(stdout).toContain("--home DIR");
    });
  }
});

describe("usage errors", () => {
  it("names an unknown flag and exits 2", async () => {
    const { code, stderr } = await corral(home, ["ls", "--bogus"]);
    expect(code).toBe(2);
    expect(stderr).toContain("unknown option '--bogus'");
    expect(stderr).toContain("corral ls --help");
  });

  it("names the flag whose value is not a number", async () => {
    const { code, stderr } = await corral(home, ["load", "tiny", "--port", "http"]);
    expect(code).toBe(2);
    expect(stderr).toContain('--port must be a whole number from 1 to 65535, got "http"');
  });

  it("names the missing argument instead of prompting", async () => {
    const { code, stderr } = await corral(home, ["load"]);
    expect(code).toBe(2);
    expect(stderr).toContain("missing <model>");
  });

  it("refuses extra positionals", async () => {
    const { code, stderr } = await corral(home, ["ls", "extra"]);
    expect(code).toBe(2);
    expect(stderr).toContain('unexpected argument "extra"');
  });

  it("refuses --pid together with --name", async () => {
    const { code, stderr } = await corral(home, ["kill", "--pid", "5", "--name", "x", "--yes"]);
    expect(code).toBe(2);
    expect(stderr).toContain("give --pid or --name, not both");
  });
});

describe("read commands on an empty home", () => {
  it("lists nothing as an empty JSON array", async () => {
    const { code, stdout } = await corral(home, ["ls", "--json"]);
    expect(code).toBe(0);
    expect(parse(stdout)).toEqual([]);
  });

  it("lists the configured models", async () => {
    const { code, stdout } = await corral(home, ["ls", "--models", "--json"]);
    expect(code).toBe(0);
    const models = parse<Array<{ id: string; gpu: string; port: number; loaded_in: string[] }>>(stdout);
    expect(models.map((m) => m.id)).toEqual(["tiny", "other", "slow"]);
    expect(models[0]).toMatchObject({ gpu: "0", port: home.ports.tiny, loaded_in: [] });
    expect(models[0]).toMatchObject({ gateway: { state: "unloaded", in_flight: 0, served: 0 } });
    const table = await corral(home, ["ls", "--models"]);
    expect(table.stdout).toMatch(/^ID\s+STATE\s.*IN FLIGHT\s+SERVED\s+UNLOAD IN\s+TOK\/S\s+ALIASES/);
  });

  it("reports an empty history", async () => {
    const { code, stdout } = await corral(home, ["history", "--json"]);
    expect(code).toBe(0);
    expect(parse(stdout)).toEqual([]);
  });

  it("fails with exit 1 and the error code on an unknown model", async () => {
    const { code, stderr } = await corral(home, ["load", "nope", "--json"]);
    expect(code).toBe(1);
    expect(parse<{ error: { code: string; message: string } }>(stderr).error).toMatchObject({ code: "UNKNOWN_MODEL" });
    expect(stderr).toContain("known: tiny, other, slow");
  });

  it("fails with exit 1 when the slot holds nothing", async () => {
    const { code, stderr } = await corral(home, ["unload", "5", "--yes"]);
    expect(code).toBe(1);
    expect(stderr).toContain('no process is registered in slot "5"');
  });

  it("reports a broken configuration by its key", async () => {
    const broken = join(home.dir, "broken.yaml");
    writeFileSync(broken, "timeouts: { load_ms: -5 }\n");
    const { code, stderr } = await corral(home, ["--config", broken, "ls"]);
    expect(code).toBe(1);
    expect(stderr).toContain("timeouts.load_ms");
  });
});

describe("a model's life: load, inspect, switch, unload", () => {
  let pid = 0;

  it(
    "loads a model and prints the registry entry as JSON",
    async () => {
      const { code, stdout, stderr } = await corral(home, ["load", "tiny", "--json"]);
      expect(stderr).toBe("");
      expect(code).toBe(0);
      const result = parse<{
        slot: string;
        readyMs: number;
        entry: { pid: number; port: number; status: string; model_id: string };
      }>(stdout);
      expect(result.slot).toBe("0");
      expect(result.entry).toMatchObject({ port: home.ports.tiny, status: "running", model_id: "tiny" });
      pid = result.entry.pid;
      expect((await fetch(`http://127.0.0.1:${home.ports.tiny}/health`)).status).toBe(200);
    },
    SLOW,
  );

  it(
    "lists it with live status, health and usage",
    async () => {
      const { code, stdout } = await corral(home, ["ls", "--json"]);
      expect(code).toBe(0);
      const rows =
        parse<
          Array<{ slot: string; state: string; health: { state: string }; entry: { pid: number }; uptime_ms: number }>
        >(stdout);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ slot: "0", state: "running", health: { state: "ok" }, entry: { pid } });
      expect(rows[0]!.uptime_ms).toBeGreaterThanOrEqual(0);
    },
    SLOW,
  );

  it(
    "shows a readable table without colour under NO_COLOR, even when colour is forced",
    async () => {
      const plain = await corral(home, ["ls"], { NO_COLOR: "1", FORCE_COLOR: "1" });
      expect(plain.code).toBe(0);
      expect(plain.stdout).toMatch(/SLOT\s+MODEL\s+PID\s+PORT\s+STATUS/);
      expect(plain.stdout).toContain(String(pid));
      expect(plain.stdout).not.toContain("\u001b[");
      const coloured = await corral(home, ["ls"], { NO_COLOR: undefined, FORCE_COLOR: "1" });
      expect(coloured.stdout).toContain("\u001b[");
    },
    SLOW,
  );

  it("verifies the entry against the process table", async () => {
    const { code, stdout } = await corral(home, ["verify", "--json"]);
    expect(code).toBe(0);
    const rows = parse<Array<{ slot: string; probe: { state: string } }>>(stdout);
    expect(rows).toEqual([
      expect.objectContaining({ slot: "0", probe: expect.objectContaining({ state: "running" }) }),
    ]);
  });

  it(
    "refuses to load into a held slot with exit 1",
    async () => {
      const { code, stderr } = await corral(home, ["load", "tiny", "--json"]);
      expect(code).toBe(1);
      expect(parse<{ error: { code: string } }>(stderr).error.code).toBe("SLOT_IN_USE");
    },
    SLOW,
  );

  it("prints the end of the slot's log", async () => {
    const { code, stdout } = await corral(home, ["logs", "0", "--lines", "3", "--json"]);
    expect(code).toBe(0);
    const { slot, lines } = parse<{ slot: string; lines: string[] }>(stdout);
    expect(slot).toBe("0");
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThanOrEqual(3);
  });

  it(
    "follows the log until interrupted, then exits 0",
    async () => {
      const rows = parse<Array<{ entry: { log_file: string } }>>((await corral(home, ["ls", "--json"])).stdout);
      const logFile = rows[0]!.entry.log_file;
      const proc = spawnCorral(home, ["logs", "0", "--follow", "--lines", "1"]);
      try {
        await readUntil(proc.stdout, /\S/);
        // The follower starts a moment after the tail is printed; lines are appended until one shows.
        const marker = `followed-line-${Math.random().toString(36).slice(2)}`;
        const appender = setInterval(() => appendFileSync(logFile, `${marker}\n`), 100);
        try {
          await readUntil(proc.stdout, new RegExp(marker));
        } finally {
          clearInterval(appender);
        }
        proc.kill("SIGINT");
        expect(await proc.exited).toBe(0);
      } finally {
        proc.kill("SIGKILL");
      }
    },
    SLOW,
  );

  it("records the load in the history, newest first, limited", async () => {
    const { code, stdout } = await corral(home, ["history", "--limit", "1", "--json"]);
    expect(code).toBe(0);
    const events = parse<Array<{ event: string; slot: string }>>(stdout);
    expect(events).toHaveLength(1);
    const all = parse<Array<{ event: string; pid?: number }>>((await corral(home, ["history", "--json"])).stdout);
    expect(all.some((e) => e.event === "registered" && e.pid === pid)).toBe(true);
  });

  it(
    "switches the slot to another model",
    async () => {
      const { code, stdout } = await corral(home, ["switch", "0", "other", "--json"]);
      expect(code).toBe(0);
      const result = parse<{ slot: string; entry: { pid: number; model_id: string }; previous?: { pid: number } }>(
        stdout,
      );
      expect(result).toMatchObject({ slot: "0", entry: { model_id: "other" }, previous: { model_id: "tiny", pid } });
      expect(result.entry.pid).not.toBe(pid);
      await waitFor(() => isGone(pid), 10_000, `old pid ${pid} gone`);
      pid = result.entry.pid;
    },
    SLOW,
  );

  it("refuses to unload without --yes when not in a terminal, leaving the server running", async () => {
    const { code, stderr } = await corral(home, ["unload", "0"]);
    expect(code).toBe(2);
    expect(stderr).toContain("pass --yes");
    expect(isGone(pid)).toBe(false);
    expect(registered(home.dir)).toEqual([{ slot: "0", pid }]);
  });

  it(
    "unloads with --yes and prints what it did",
    async () => {
      const { code, stdout } = await corral(home, ["unload", "0", "--yes", "--json"]);
      expect(code).toBe(0);
      expect(parse(stdout)).toMatchObject({ slot: "0", pid, signalled: true, portFreed: true });
      await waitFor(() => isGone(pid), 10_000, `pid ${pid} gone`);
      expect(registered(home.dir)).toEqual([]);
    },
    SLOW,
  );
});

describe("orphans, cleanup, kill and adopt", () => {
  async function orphan(marked: boolean): Promise<StandIn> {
    const s = await spawnStandIn({ model: home.modelFile, env: marked ? { CORRAL_HOME_ID: homeIdOf(home.dir) } : {} });
    standIns.push(s);
    return s;
  }

  it(
    "lists an untracked llama-server with its evidence",
    async () => {
      const s = await orphan(true);
      const { code, stdout } = await corral(home, ["orphans", "--json"]);
      expect(code).toBe(0);
      const found = parse<Array<{ pid: number; verdict: string; port: number; model_path: string; reasons: string[] }>>(
        stdout,
      ).find((o) => o.pid === s.pid);
      expect(found).toMatchObject({ verdict: "ours", port: s.port, model_path: home.modelFile });
      expect(found!.reasons.length).toBeGreaterThan(0);
    },
    SLOW,
  );

  it(
    "refuses cleanup without --yes when not in a terminal, killing nothing",
    async () => {
      const s = await orphan(true);
      const { code, stderr } = await corral(home, ["cleanup", "--pid", String(s.pid)]);
      expect(code).toBe(2);
      expect(stderr).toContain("pass --yes");
      expect(isGone(s.pid)).toBe(false);
    },
    SLOW,
  );

  it(
    "cleans up the orphans it is given and reports per pid",
    async () => {
      const s = await orphan(true);
      const { code, stdout } = await corral(home, ["cleanup", "--pid", String(s.pid), "--yes", "--json"]);
      expect(code).toBe(0);
      expect(parse(stdout)).toEqual([
        expect.objectContaining({ pid: s.pid, verdict: "ours", outcome: "killed", killed: true }),
      ]);
      await waitFor(() => isGone(s.pid), 10_000, `orphan ${s.pid} gone`);
    },
    SLOW,
  );

  it("fails cleanup (exit 1) for a pid that is not an orphaned llama-server", async () => {
    const { code, stdout } = await corral(home, ["cleanup", "--pid", String(process.pid), "--yes", "--json"]);
    expect(code).toBe(1);
    expect(parse(stdout)).toEqual([
      expect.objectContaining({ pid: process.pid, outcome: "not-orphan", killed: false }),
    ]);
    expect(isGone(process.pid)).toBe(false);
  });

  it(
    "refuses kill without --yes when not in a terminal",
    async () => {
      const s = await orphan(false);
      const { code } = await corral(home, ["kill", "--pid", String(s.pid)]);
      expect(code).toBe(2);
      expect(isGone(s.pid)).toBe(false);
    },
    SLOW,
  );

  it(
    "kills a llama-server by pid",
    async () => {
      const s = await orphan(false);
      const { code, stdout } = await corral(home, ["kill", "--pid", String(s.pid), "--yes", "--json"]);
      expect(code).toBe(0);
      expect(parse(stdout)).toEqual([expect.objectContaining({ pid: s.pid, signalled: true })]);
      await waitFor(() => isGone(s.pid), 10_000, `pid ${s.pid} gone`);
    },
    SLOW,
  );

  it("refuses to kill a process that is not a llama-server", async () => {
    const sleeper = Bun.spawn(["sleep", "30"]);
    try {
      const { code, stderr } = await corral(home, ["kill", "--pid", String(sleeper.pid), "--yes"]);
      expect(code).toBe(1);
      expect(stderr).toContain("not a llama-server");
      expect(isGone(sleeper.pid)).toBe(false);
    } finally {
      sleeper.kill("SIGKILL");
    }
  });

  it(
    "adopts a running server into a slot, then kills it by its model name",
    async () => {
      const s = await orphan(false);
      const adopted = await corral(home, ["adopt", String(s.pid), "--slot", "3", "--model", "adopted-one", "--json"]);
      expect(adopted.code).toBe(0);
      expect(parse(adopted.stdout)).toMatchObject({ pid: s.pid, model_id: "adopted-one", port: s.port, adopted: true });
      const rows = parse<Array<{ slot: string; entry: { pid: number } }>>(
        (await corral(home, ["ls", "--json"])).stdout,
      );
      expect(rows).toEqual([expect.objectContaining({ slot: "3", entry: expect.objectContaining({ pid: s.pid }) })]);
      const killed = await corral(home, ["kill", "--name", "adopted-one", "--yes", "--json"]);
      expect(killed.code).toBe(0);
      expect(parse(killed.stdout)).toEqual([expect.objectContaining({ pid: s.pid, slot: "3" })]);
      await waitFor(() => isGone(s.pid), 10_000, `pid ${s.pid} gone`);
      expect(registered(home.dir)).toEqual([]);
    },
    SLOW,
  );

  it(
    "refuses to adopt or kill another corral home's server unless --include-foreign",
    async () => {
      const s = await spawnStandIn({ model: home.modelFile, env: { CORRAL_HOME_ID: "another-home" } });
      standIns.push(s);
      const adopt = await corral(home, ["adopt", String(s.pid), "--slot", "4"]);
      expect(adopt.code).toBe(1);
      expect(adopt.stderr).toContain("foreign");
      const kill = await corral(home, ["kill", "--pid", String(s.pid), "--yes"]);
      expect(kill.code).toBe(1);
      expect(kill.stderr).toContain("foreign");
      expect(isGone(s.pid)).toBe(false);
      const adopted = await corral(home, ["adopt", String(s.pid), "--slot", "4", "--include-foreign", "--json"]);
      expect(adopted.code).toBe(0);
      expect(parse(adopted.stdout)).toMatchObject({ pid: s.pid, adopted: true });
      expect((await corral(home, ["unload", "4", "--yes"])).code).toBe(0);
      await waitFor(() => isGone(s.pid), 10_000, `pid ${s.pid} gone`);
    },
    SLOW,
  );
});

describe("gpus", () => {
  it("says there is no GPU when nvidia-smi is missing", async () => {
    const { code, stdout } = await corral(home, ["gpus", "--json"], { PATH: "/usr/bin:/bin" });
    expect(code).toBe(0);
    expect(parse(stdout)).toEqual({ available: false, gpus: [] });
  });

  it("lists nvidia-smi's GPUs and processes", async () => {
    const env = { PATH: `${FAKE_NVIDIA_SMI_DIR}:${process.env.PATH}` };
    const { code, stdout } = await corral(home, ["gpus", "--json"], env);
    expect(code).toBe(0);
    // The API's GET /gpus shape: each GPU with its slots and the processes on it.
    const view = parse<{ available: boolean; gpus: Array<{ index: number; name: string; processes: unknown[] }> }>(
      stdout,
    );
    expect(view.available).toBe(true);
    expect(view.gpus.map((g) => g.index)).toEqual([0, 1, 2]);
    expect(view.gpus.flatMap((g) => g.processes).length).toBeGreaterThan(0);
    const table = await corral(home, ["gpus"], env);
    expect(table.stdout).toContain("NVIDIA GeForce RTX 4090");
  });
});

describe("serve", () => {
  it(
    "serves the API and the page until SIGINT, then exits 0",
    async () => {
      const proc = spawnCorral(home, ["serve", "--port", "0"]);
      try {
        const out = await readUntil(proc.stdout, /serving on (http:\/\/\S+)/);
        const url = /serving on (http:\/\/\S+)/.exec(out)![1]!;
        const res = await fetch(new URL("api/v1/health", url));
        expect(res.status).toBe(200);
        expect(await res.json()).toMatchObject({ healthy: true });
        // serve is where the page joins the API (@corral/api does not depend on @corral/web).
        const page = await fetch(url);
        expect(page.status).toBe(200);
        expect(page.headers.get("content-type")).toContain("text/html");
        expect(await page.text()).toContain("<title>corral</title>");
        proc.kill("SIGINT");
        expect(await proc.exited).toBe(0);
      } finally {
        proc.kill("SIGKILL");
      }
    },
    SLOW,
  );
});
