import { describe, expect, it } from "bun:test";
import { NotOurProcessError } from "../errors.ts";
import { ancestorsOf, assertKillable, descendantsIn, killTree } from "./kill-tree.ts";
import type { ProcessInfo, ProcessProbe } from "./types.ts";

function proc(pid: number, ppid: number, over: Partial<ProcessInfo> = {}): ProcessInfo {
  return {
    pid,
    ppid,
    name: "llama-server",
    exe: "/opt/llama-server",
    cmdline: [],
    startTimeMs: 1_000_000 + pid,
    startTimePrecisionMs: 10,
    uid: 0,
    user: "root",
    state: "S",
    accessDenied: false,
    ...over,
  };
}

function tableProbe(list: ProcessInfo[]): ProcessProbe {
  return {
    list: async () => list,
    get: async (pid) => list.find((p) => p.pid === pid),
    environ: async () => undefined,
  };
}

function refusal(fn: () => unknown): NotOurProcessError | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof NotOurProcessError) return e;
    throw e;
  }
  return undefined;
}

describe("assertKillable", () => {
  it("refuses init, process groups, non-integers, corral itself and its parent", () => {
    for (const pid of [1, 0, -5, 1.5, Number.NaN, process.pid, process.ppid]) {
      const error = refusal(() => assertKillable(pid));
      expect(error?.pid).toBe(pid);
      expect(error?.reason.length).toBeGreaterThan(0);
    }
  });

  it("refuses the ancestors it is given and allows other PIDs", () => {
    expect(refusal(() => assertKillable(777, { ancestors: new Set([777]) }))?.reason).toContain("ancestor");
    expect(refusal(() => assertKillable(778, { ancestors: new Set([777]) }))).toBeUndefined();
  });
});

describe("descendantsIn", () => {
  it("walks children and grandchildren, nearest first, and survives a ppid cycle", () => {
    const table = new Map(
      [proc(10, 1), proc(11, 10), proc(12, 11), proc(13, 10), proc(20, 1), proc(30, 31), proc(31, 30)].map((p) => [
        p.pid,
        p,
      ]),
    );
    expect(descendantsIn(table, 10).map((p) => p.pid)).toEqual([11, 13, 12]);
    expect(descendantsIn(table, 30).map((p) => p.pid)).toEqual([31]);
    expect(descendantsIn(table, 20)).toEqual([]);
  });
});

describe("ancestorsOf", () => {
  it("walks ppid up to init through the probe", async () => {
    const probe = tableProbe([proc(1, 0), proc(50, 1), proc(60, 50), proc(70, 60)]);
    expect([...(await ancestorsOf(70, probe))].sort((a, b) => a - b)).toEqual([1, 50, 60]);
  });
});

describe("killTree", () => {
  it("succeeds at once when the root is not in the process table", async () => {
    const result = await killTree(999_999, { probe: tableProbe([]) });
    expect(result).toMatchObject({ pid: 999_999, pids: [999_999], signal: "SIGTERM", escalated: false });
  });

  it("treats a zombie root as already gone", async () => {
    const result = await killTree(999_998, { probe: tableProbe([proc(999_998, 1, { state: "Z" })]), force: true });
    expect(result).toMatchObject({ pids: [999_998], signal: "SIGKILL", escalated: false });
  });

  it("refuses a root that isSame rejects, before any signal", async () => {
    const probe = tableProbe([proc(999_997, 1)]);
    await expect(killTree(999_997, { probe, isSame: () => false })).rejects.toBeInstanceOf(NotOurProcessError);
  });

  it("refuses our own PID", async () => {
    await expect(killTree(process.pid, { probe: tableProbe([]) })).rejects.toBeInstanceOf(NotOurProcessError);
  });
});
