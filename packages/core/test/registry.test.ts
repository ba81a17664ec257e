import { afterAll, describe, expect, it } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  EntryNotFoundError,
  ForeignProcessError,
  InvalidNameError,
  NameNotFoundError,
  NotOrphanError,
  NotOurProcessError,
} from "../src/errors.ts";
import { summarizeCleanup } from "../src/registry/kill-policy.ts";
import { createRegistry, homeIdOf } from "../src/registry/registry.ts";
import type { ProcessEntry } from "../src/store/schema.ts";
import { freePort, standInServer } from "./fixtures/index.ts";
import { alive, killAll } from "./helpers/home.ts";

const dirs: string[] = [];
const started = new Set<number>();
function tempHome(): string {
  const dir = mkdtempSync(join(tmpdir(), "corral-reg-"));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  killAll(started);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function startServer(args: string[] = [], env: Record<string, string> = {}) {
  const port = await freePort();
  const child = Bun.spawn([await standInServer(), "-m", "/models/x.gguf", "--port", String(port), ...args], {
    env: { ...process.env, ...env },
    stdout: "ignore",
    stderr: "ignore",
  });
  started.add(child.pid);
  // Ready means listening: by then its command line and environment are all in /proc.
  const deadline = Date.now() + 15_000;
  while (
    !(await fetch(`http://127.0.0.1:${port}/health`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`stand-in on port ${port} did not start`);
    await Bun.sleep(20);
  }
  return { child, port };
}

function entryFor(pid: number, overrides: Partial<ProcessEntry> = {}): ProcessEntry {
  return {
    pid,
    model_id: "tiny",
    model_name: "Tiny",
    model_path: "/models/x.gguf",
    gpu_id: "0",
    port: 8081,
    started_at: new Date().toISOString(),
    command_line: ["llama-server", "-m", "/models/x.gguf"],
    status: "running",
    ...overrides,
  };
}

describe("registry", () => {
  it("tracks slots 0 and 1 apart; removing one leaves the other", async () => {
    const registry = createRegistry({ home: tempHome() });
    const a = await startServer();
    const b = await startServer();
    await registry.register("0", entryFor(a.child.pid));
    await registry.register("1", entryFor(b.child.pid, { gpu_id: 1 }));
    await registry.unregister("0", { reason: "test" });
    expect((await registry.list()).map((e) => [e.slot, e.entry.pid])).toEqual([["1", b.child.pid]]);
  });

  it("records start time and executable on register, so a fresh process can verify it", async () => {
    const home = tempHome();
    const registry = createRegistry({ home });
    const { child } = await startServer();
    const entry = await registry.register("0", entryFor(child.pid));
    expect(entry.executable).toEndWith("llama-server");
    expect(entry.proc_start_ms).toBeNumber();
    const out = Bun.spawnSync([
      "bun",
      "-e",
      `
      const { createRegistry } = await import(${JSON.stringify(join(import.meta.dir, "../src/registry/registry.ts"))});
      const v = await createRegistry({ home: ${JSON.stringify(home)} }).verify("0");
      console.log(JSON.stringify(v.probe.state));`,
    ]);
    expect(out.stdout.toString().trim()).toBe('"running"');
  });

  it("reports pid reuse by another program and refuses to kill it", async () => {
    const registry = createRegistry({ home: tempHome() });
    const dir = tempHome();
    const redis = join(dir, "redis-server");
    copyFileSync(Bun.which("sleep")!, redis);
    const imposter = Bun.spawn([redis, "30"]);
    started.add(imposter.pid);
    await registry.register("0", entryFor(imposter.pid, { started_at: "2020-01-01T00:00:00" }));
    const { probe } = await registry.verify("0");
    expect(probe.state).toBe("pid-reused");
    await expect(registry.kill("0")).rejects.toBeInstanceOf(NotOurProcessError);
    expect(alive(imposter.pid)).toBe(true);
    imposter.kill();
  });

  it("reports a live llama-server with another start time as pid reuse and refuses to kill it", async () => {
    const registry = createRegistry({ home: tempHome() });
    const { child } = await startServer();
    await registry.register("0", entryFor(child.pid, { proc_start_ms: Date.now() - 3_600_000 }));
    const { probe } = await registry.verify("0");
    expect(probe.state).toBe("pid-reused");
    await expect(registry.kill("0")).rejects.toBeInstanceOf(NotOurProcessError);
    expect(alive(child.pid)).toBe(true);
  });

  it("upgrades an entry from the original controller's file to a full identity once verified", async () => {
    const registry = createRegistry({ home: tempHome() });
    const { child } = await startServer();
    await registry.store.update((entries) => {
      entries["0"] = entryFor(child.pid, { started_at: new Date(Date.now() + 1000).toISOString().replace("Z", "") });
    });
    const before = (await registry.snapshot()).entries["0"]!;
    expect(before.proc_start_ms).toBeUndefined();
    const { probe, entry } = await registry.verify("0");
    expect(probe.state).toBe("running");
    expect(entry.proc_start_ms).toBeNumber();
    expect(entry.executable).toEndWith("llama-server");
  });

  it("kills a tracked server's whole tree, unregisters it and tells subscribers", async () => {
    const registry = createRegistry({ home: tempHome() });
    const { child } = await startServer(["--fake-child"]);
    const kids = (await registry.probe.list()).filter((p) => p.ppid === child.pid).map((p) => p.pid);
    expect(kids.length).toBeGreaterThan(0);
    await registry.register("0", entryFor(child.pid));
    const events: string[] = [];
    registry.subscribe((e) => events.push(e.event));
    const outcome = await registry.kill("0", { timeoutMs: 2000 });
    expect(outcome.signalled).toBe(true);
    for (const pid of [child.pid, ...kids]) expect(alive(pid)).toBe(false);
    expect(await registry.list()).toEqual([]);
    expect(events).toEqual(["status", "killed"]);
    expect((await registry.history.read({ limit: 1 }))[0]?.event).toBe("killed");
  });

  it("kills by pid and by name only llama-servers, and never PID 1 or itself", async () => {
    const registry = createRegistry({ home: tempHome() });
    await expect(registry.killOrphan(1)).rejects.toBeInstanceOf(NotOurProcessError);
    await expect(registry.killOrphan(process.pid)).rejects.toBeInstanceOf(NotOurProcessError);
    await expect(registry.resolveKillTargets({ pid: 1 })).rejects.toBeInstanceOf(NotOurProcessError);
    const sleeper = Bun.spawn(["sleep", "30"]);
    started.add(sleeper.pid);
    await expect(registry.killOrphan(sleeper.pid)).rejects.toBeInstanceOf(NotOrphanError);
    await expect(registry.resolveKillTargets({ pid: sleeper.pid })).rejects.toBeInstanceOf(NotOurProcessError);
    await expect(registry.resolveKillTargets({ name: "sleep" })).rejects.toBeInstanceOf(NotOurProcessError);
    await expect(registry.resolveKillTargets({ name: "no-such-thing-here" })).rejects.toBeInstanceOf(NameNotFoundError);
    expect(alive(sleeper.pid)).toBe(true);
    sleeper.kill();
    const { child } = await startServer();
    const outcome = await registry.killOrphan(child.pid);
    expect(outcome).toMatchObject({ pid: child.pid, signalled: true, verdict: "likely-ours" });
    expect(alive(child.pid)).toBe(false);
  });

  it("refuses a blank or whitespace name instead of matching every unreadable executable", async () => {
    const registry = createRegistry({ home: tempHome() });
    for (const name of ["", "   ", "\t\n"]) {
      await expect(registry.resolveKillTargets({ name })).rejects.toBeInstanceOf(InvalidNameError);
    }
  });

  it("resolves a tracked model by a trimmed, case-insensitive name, exactly as it will be killed", async () => {
    const registry = createRegistry({ home: tempHome() });
    const { child } = await startServer();
    await registry.register("0", entryFor(child.pid, { model_id: "qwen-7b", model_name: "Qwen 7B" }));
    const { targets, skipped } = await registry.resolveKillTargets({ name: "  qwen 7b " });
    expect(skipped).toEqual([]);
    expect(targets).toEqual([
      expect.objectContaining({ pid: child.pid, slot: "0", verdict: "tracked", model_id: "qwen-7b" }),
    ]);
    expect(targets[0]?.description).toContain(`pid ${child.pid}`);
    // A tracked PID is not an orphan: it is stopped through its slot, never by the orphan rule.
    await expect(registry.killOrphan(child.pid)).rejects.toBeInstanceOf(NotOrphanError);
    expect(alive(child.pid)).toBe(true);
  });

  it("treats another corral home's server as foreign everywhere: kill by pid, by name and cleanup", async () => {
    const registry = createRegistry({ home: tempHome() });
    const other = await startServer([], { CORRAL_HOME_ID: "another-home" });
    await expect(registry.killOrphan(other.child.pid)).rejects.toBeInstanceOf(ForeignProcessError);
    await expect(registry.resolveKillTargets({ pid: other.child.pid })).rejects.toBeInstanceOf(ForeignProcessError);
    const byName = await registry.resolveKillTargets({ name: "llama-server" }).catch((e) => e);
    if (!(byName instanceof Error))
      expect(byName.targets.map((t: { pid: number }) => t.pid)).not.toContain(other.child.pid);
    expect(alive(other.child.pid)).toBe(true);
    const planned = await registry.resolveKillTargets({ pid: other.child.pid }, { includeForeign: true });
    expect(planned.targets).toEqual([expect.objectContaining({ pid: other.child.pid, verdict: "foreign" })]);
    expect(await registry.killOrphan(other.child.pid, { includeForeign: true })).toMatchObject({ verdict: "foreign" });
    expect(alive(other.child.pid)).toBe(false);
  });

  it("finds orphans with evidence and cleans up only the ones asked for", async () => {
    const registry = createRegistry({ home: tempHome() });
    const ours = await startServer([], { CORRAL_HOME_ID: registry.homeId });
    const other = await startServer([], { CORRAL_HOME_ID: "someone-else" });
    const orphans = await registry.findOrphans();
    const mine = orphans.find((o) => o.pid === ours.child.pid);
    expect(mine).toMatchObject({ verdict: "ours", port: ours.port, model_path: "/models/x.gguf" });
    expect(orphans.find((o) => o.pid === other.child.pid)?.verdict).toBe("foreign");
    const results = await registry.cleanupOrphans({ pids: [ours.child.pid, other.child.pid, 999999] });
    expect(results).toContainEqual(
      expect.objectContaining({ pid: ours.child.pid, verdict: "ours", outcome: "killed", killed: true }),
    );
    expect(results).toContainEqual(
      expect.objectContaining({ pid: other.child.pid, verdict: "foreign", outcome: "left-foreign", killed: false }),
    );
    expect(results).toContainEqual(expect.objectContaining({ pid: 999999, outcome: "not-orphan", killed: false }));
    expect(summarizeCleanup(results)).toMatchObject({
      ok: false,
      counts: { killed: 1, "left-foreign": 1, "not-orphan": 1, failed: 0 },
    });
    expect(alive(ours.child.pid)).toBe(false);
    expect(alive(other.child.pid)).toBe(true);
    const forced = await registry.cleanupOrphans({ pids: [other.child.pid], includeForeign: true });
    expect(forced).toEqual([expect.objectContaining({ pid: other.child.pid, verdict: "foreign", outcome: "killed" })]);
  });

  it("gives a home the same id before and after it exists, through a symlinked parent", async () => {
    const real = tempHome();
    const link = join(tempHome(), "link");
    symlinkSync(real, link, "dir");
    const before = homeIdOf(join(link, "home"));
    mkdirSync(join(real, "home"));
    expect(homeIdOf(join(link, "home"))).toBe(before);
    expect(homeIdOf(join(real, "home"))).toBe(before);
  });

  it("says which slot is empty", async () => {
    const registry = createRegistry({ home: tempHome() });
    await expect(registry.verify("3")).rejects.toBeInstanceOf(EntryNotFoundError);
    await expect(registry.kill("3")).rejects.toBeInstanceOf(EntryNotFoundError);
  });
});
