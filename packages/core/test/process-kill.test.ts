import { afterAll, describe, expect, it } from "bun:test";
import { NotOurProcessError } from "../src/errors.ts";
import { ancestorsOf, assertKillable, killTree } from "../src/process/kill-tree.ts";
import { defaultProbe } from "../src/process/probe.ts";
import { type StandIn, spawnStandIn, waitFor } from "./fixtures/index.ts";

const probe = defaultProbe();
const started: StandIn[] = [];
afterAll(() => {
  for (const s of started) s.stop();
});

async function standIn(args: string[] = []): Promise<StandIn> {
  const s = await spawnStandIn({ args });
  started.push(s);
  return s;
}

/** The stand-in's fake children, once they are all up. */
async function family(root: number, size: number): Promise<number[]> {
  return waitFor(
    async () => {
      const all = await probe.list();
      const child = all.find((p) => p.ppid === root);
      const grandchild = child && all.find((p) => p.ppid === child.pid);
      const pids = [child?.pid, grandchild?.pid].filter((p): p is number => p !== undefined);
      return pids.length === size ? pids : undefined;
    },
    10_000,
    "the fake children to start",
  );
}

async function gone(pid: number): Promise<boolean> {
  const info = await probe.get(pid);
  return info === undefined || info.state === "Z";
}

describe("killTree on real processes", () => {
  it("kills a server with its child and grandchild, all with SIGTERM", async () => {
    const s = await standIn(["--fake-child", "--fake-grandchild"]);
    const [child, grandchild] = await family(s.pid, 2);
    const result = await killTree(s.pid, { timeoutMs: 5000 });
    expect(result.pids.sort()).toEqual([s.pid, child!, grandchild!].sort());
    expect(result).toMatchObject({ pid: s.pid, signal: "SIGTERM", escalated: false });
    for (const pid of result.pids) expect(await gone(pid)).toBe(true);
  }, 30_000);

  it("catches children that outlive their parent, by the PIDs captured before signalling", async () => {
    const s = await standIn(["--fake-child", "--fake-grandchild", "--fake-child-ignore-sigterm"]);
    const [child, grandchild] = await family(s.pid, 2);
    const result = await killTree(s.pid, { timeoutMs: 500 });
    expect(result).toMatchObject({ signal: "SIGKILL", escalated: true });
    expect(await gone(s.pid)).toBe(true);
    expect(await gone(child!)).toBe(true);
    expect(await gone(grandchild!)).toBe(true);
  }, 30_000);

  it("sends SIGKILL after the timeout to a server that ignores SIGTERM", async () => {
    const s = await standIn(["--fake-ignore-sigterm"]);
    const result = await killTree(s.pid, { timeoutMs: 300 });
    expect(result).toMatchObject({ pid: s.pid, pids: [s.pid], signal: "SIGKILL", escalated: true });
    expect(await gone(s.pid)).toBe(true);
    expect(s.log()).toContain("ignoring SIGTERM");
  }, 30_000);

  it("sends SIGKILL at once when forced", async () => {
    const s = await standIn(["--fake-ignore-sigterm"]);
    const result = await killTree(s.pid, { force: true, timeoutMs: 60_000 });
    expect(result).toMatchObject({ signal: "SIGKILL", escalated: false });
    expect(await gone(s.pid)).toBe(true);
    expect(s.log()).not.toContain("ignoring SIGTERM");
  }, 30_000);

  it("does not SIGKILL a root that no longer passes isSame", async () => {
    const s = await standIn(["--fake-ignore-sigterm"]);
    let asked = 0;
    const result = await killTree(s.pid, { timeoutMs: 300, isSame: () => ++asked === 1 });
    expect(asked).toBe(2);
    expect(result.escalated).toBe(true);
    expect(await gone(s.pid)).toBe(false);
  }, 30_000);
});

describe("refusals", () => {
  it("refuses 1, 0, -5, our own PID and our parent", async () => {
    const ancestors = await ancestorsOf(process.pid);
    expect(ancestors.has(process.ppid)).toBe(true);
    for (const pid of [1, 0, -5, process.pid, process.ppid]) {
      expect(() => assertKillable(pid, { ancestors })).toThrow(NotOurProcessError);
    }
  });

  it("refuses to kill our parent's tree, which would take us with it", async () => {
    await expect(killTree(process.ppid, { timeoutMs: 100 })).rejects.toBeInstanceOf(NotOurProcessError);
    expect(await gone(process.ppid)).toBe(false);
  });

  it("refuses every ancestor up the chain", async () => {
    for (const pid of await ancestorsOf(process.pid)) {
      expect(() => assertKillable(pid, { ancestors: new Set([pid]) })).toThrow(NotOurProcessError);
    }
  });
});
