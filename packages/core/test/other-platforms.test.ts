import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { NotOurProcessError } from "../src/errors.ts";
import { createController } from "../src/lifecycle/controller.ts";
import { killTree } from "../src/process/kill-tree.ts";
import { procfsProbe } from "../src/process/procfs.ts";
import { psListProbe } from "../src/process/pslist.ts";
import type { ProcessProbe } from "../src/process/types.ts";
import { createRegistry } from "../src/registry/registry.ts";
import type { LockMethod } from "../src/store/lock.ts";
import type { ProcessEntry } from "../src/store/schema.ts";
import { type StandIn, spawnStandIn, waitFor } from "./fixtures/index.ts";
import { alive, killAll, makeHome, type TestHome } from "./helpers/home.ts";

// The registry, kill and lifecycle cases run twice on Linux: with what Linux uses (/proc, flock)
// and with what macOS and Windows use (the ps-list probe, the pid-file lock), so that code is
// exercised here too. tree-kill signals the tree in both.

interface Paths {
  readonly name: string;
  readonly probe: () => ProcessProbe;
  readonly lockMethod: LockMethod;
}

const PATHS: readonly Paths[] = [
  { name: "the Linux paths (/proc, flock)", probe: () => procfsProbe(), lockMethod: "flock" },
  { name: "the macOS and Windows paths (ps-list, pid-file lock)", probe: () => psListProbe(), lockMethod: "pidfile" },
];

const linux = process.platform === "linux";
const standIns: StandIn[] = [];
const dirs: string[] = [];
const homes: TestHome[] = [];
/** servers the controller started, killed at the end should a test fail before unloading them */
const loaded = new Set<number>();
afterAll(() => {
  for (const s of standIns) s.stop();
  killAll(loaded);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  for (const h of homes) h.cleanup();
});

async function standIn(args: string[] = []): Promise<StandIn> {
  const s = await spawnStandIn({ model: "/models/x.gguf", args });
  standIns.push(s);
  return s;
}

function tempHome(): string {
  const dir = mkdtempSync(join(tmpdir(), "corral-paths-"));
  dirs.push(dir);
  return dir;
}

function entryFor(pid: number, slot: string, recorded: Partial<ProcessEntry> = {}): ProcessEntry {
  return {
    pid,
    model_id: `m${slot}`,
    model_name: `M${slot}`,
    model_path: "/models/x.gguf",
    gpu_id: slot,
    port: 8081,
    started_at: new Date().toISOString(),
    command_line: ["llama-server", "-m", "/models/x.gguf"],
    status: "running",
    ...recorded,
  };
}

describe.each(PATHS)("on $name", ({ probe, lockMethod }) => {
  const registryOf = (home = tempHome()) => createRegistry({ home, probe: probe(), lockMethod });

  describe("the registry", () => {
    it("records a live server's identity and verifies it running, one by one and all at once", async () => {
      const registry = registryOf();
      const s = await standIn();
      const entry = await registry.register("0", entryFor(s.pid, "0"));
      expect(entry.proc_start_ms).toBeNumber();
      expect((await registry.verify("0")).probe.state).toBe("running");
      expect((await registry.verifyAll()).map((v) => v.probe.state)).toEqual(["running"]);
    });

    it("calls a live server with another start time a reused PID and refuses to kill it", async () => {
      const registry = registryOf();
      const s = await standIn();
      await registry.register("0", entryFor(s.pid, "0", { proc_start_ms: Date.now() - 3_600_000 }));
      expect((await registry.verifyAll())[0]?.probe.state).toBe("pid-reused");
      await expect(registry.kill("0")).rejects.toBeInstanceOf(NotOurProcessError);
      expect(alive(s.pid)).toBe(true);
    });

    it("kills a tracked server's whole tree and unregisters it", async () => {
      const registry = registryOf();
      const s = await standIn(["--fake-child"]);
      const children = await waitFor(
        async () => (await probe().list()).filter((p) => p.ppid === s.pid).map((p) => p.pid),
        10_000,
        "the fake child",
      );
      await registry.register("0", entryFor(s.pid, "0"));
      const outcome = await registry.kill("0", { timeoutMs: 5000 });
      expect(outcome.signalled).toBe(true);
      expect(outcome.tree?.pids).toEqual(expect.arrayContaining([s.pid, ...children]));
      for (const pid of [s.pid, ...children]) expect(alive(pid)).toBe(false);
      expect(await registry.list()).toEqual([]);
    });

    it("tells an untracked server from a tracked one", async () => {
      const registry = registryOf();
      const [tracked, stray] = [await standIn(), await standIn()];
      await registry.register("0", entryFor(tracked.pid, "0"));
      const orphans = await registry.findOrphans();
      expect(orphans.find((o) => o.pid === stray.pid)?.verdict).toBe("likely-ours");
      expect(orphans.some((o) => o.pid === tracked.pid)).toBe(false);
    });

    it("loses no update when writers in several processes update at once", async () => {
      const file = join(tempHome(), "processes.json");
      const writer = join(import.meta.dir, "helpers", "store-writer.ts");
      const writers = [0, 1, 2, 3].map((w) =>
        Bun.spawn([process.execPath, writer, file, String(w * 25), "25", `--lock=${lockMethod}`], {
          stdout: "ignore",
          stderr: "inherit",
        }),
      );
      expect(await Promise.all(writers.map((w) => w.exited))).toEqual([0, 0, 0, 0]);
      const { entries } = await createRegistry({ home: dirname(file), lockMethod }).snapshot();
      expect(Object.keys(entries).length).toBe(100);
    });
  });

  describe("killTree", () => {
    it("stops a process and the children it started", async () => {
      const s = await standIn(["--fake-child", "--fake-grandchild"]);
      const p = probe();
      await waitFor(async () => (await p.list()).some((q) => q.ppid === s.pid), 10_000, "the fake child");
      const result = await killTree(s.pid, { probe: p, timeoutMs: 5000 });
      expect(result.pids.length).toBeGreaterThanOrEqual(2);
      for (const pid of result.pids) expect(alive(pid)).toBe(false);
    });
  });

  describe("the lifecycle", () => {
    it("loads a model, shows it running and unloads it", async () => {
      const t = await makeHome([{ id: "tiny" }]);
      homes.push(t);
      const registry = createRegistry({ home: t.home, probe: probe(), lockMethod });
      const controller = await createController({ home: t.home, configFile: t.configFile, registry });
      const { slot, entry } = await controller.load("tiny", { gpu: 0 });
      loaded.add(entry.pid);
      const [row] = await controller.status();
      expect(row).toMatchObject({ slot, state: "running" });
      await controller.unload(slot);
      expect(alive(entry.pid)).toBe(false);
      expect(await controller.entries()).toEqual([]);
    });
  });
});

it.if(!linux)("runs only where both kinds of path can run", () => {
  expect(linux).toBe(false);
});
