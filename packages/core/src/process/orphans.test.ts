import { afterAll, describe, expect, it } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findOrphans, parseServerArgs } from "./orphans.ts";
import { procfsProbe } from "./procfs.ts";
import type { ProcessInfo, ProcessProbe } from "./types.ts";

describe("parseServerArgs", () => {
  it("reads separate-value flags", () => {
    const args = ["llama-server", "-m", "/m/a.gguf", "--port", "8081", "--host", "0.0.0.0", "-ngl", "99", "-a", "qwen"];
    expect(parseServerArgs(args)).toEqual({
      model_path: "/m/a.gguf",
      port: 8081,
      host: "0.0.0.0",
      gpu_layers: 99,
      alias: "qwen",
    });
  });

  it("reads --flag=value and long names", () => {
    const args = ["llama-server", "--model=/m/b.gguf", "--port=9000", "--host=::1", "--n-gpu-layers=20", "--alias=b"];
    expect(parseServerArgs(args)).toEqual({
      model_path: "/m/b.gguf",
      port: 9000,
      host: "::1",
      gpu_layers: 20,
      alias: "b",
    });
    expect(parseServerArgs(["x", "--gpu-layers", "5"]).gpu_layers).toBe(5);
  });

  it("reads the glued -mPATH form but not other flags that start with -m", () => {
    expect(parseServerArgs(["llama-server", "-m/m/c.gguf"]).model_path).toBe("/m/c.gguf");
    expect(parseServerArgs(["llama-server", "-mtiny.gguf"]).model_path).toBe("tiny.gguf");
    expect(parseServerArgs(["llama-server", "-mg", "1", "-mu", "https://x/y", "--mlock"])).toEqual({});
  });

  it("lets a later flag win, as llama.cpp does", () => {
    expect(parseServerArgs(["s", "--port", "1", "--port", "2"]).port).toBe(2);
  });

  it("ignores bad numbers, missing values and the executable itself", () => {
    expect(parseServerArgs(["-m", "--port", "99999"])).toEqual({});
    expect(parseServerArgs(["s", "--port", "http"]).port).toBeUndefined();
    expect(parseServerArgs(["s", "-ngl", "all"]).gpu_layers).toBeUndefined();
    expect(parseServerArgs(["s", "-m"])).toEqual({});
  });
});

function proc(pid: number, ppid: number, over: Partial<ProcessInfo> = {}): ProcessInfo {
  return {
    pid,
    ppid,
    name: "llama-server",
    exe: "/opt/llama-server",
    cmdline: ["/opt/llama-server", "-m", `/m/${pid}.gguf`, "--port", String(8000 + (pid % 1000))],
    startTimeMs: Date.UTC(2026, 10, 26, 12),
    startTimePrecisionMs: 10,
    uid: 1000,
    user: "alice",
    state: "S",
    accessDenied: false,
    ...over,
  };
}

const table: ProcessInfo[] = [
  proc(1, 0, { name: "init", exe: "/sbin/init", cmdline: ["/sbin/init"], uid: 0, user: "root" }),
  proc(100, 1), // marked with our home
  proc(101, 1), // no marker, our uid
  proc(102, 1), // another home's marker
  proc(103, 1, { uid: 2000, user: "bob" }), // another user
  proc(104, 1), // tracked
  proc(105, 104), // child of a tracked server
  proc(106, 1, { state: "Z" }), // zombie
  proc(107, 1, { name: "redis-server", exe: "/usr/bin/redis-server" }),
  proc(108, 1), // environment unreadable
];

const environments: Record<number, Record<string, string> | undefined> = {
  100: { CORRAL_HOME_ID: "home-a", CORRAL_INSTANCE_ID: "i-1" },
  101: { PATH: "/usr/bin" },
  102: { CORRAL_HOME_ID: "home-b" },
  103: {},
};

const probe: ProcessProbe = {
  list: async () => table,
  get: async (pid) => table.find((p) => p.pid === pid),
  environ: async (pid) => environments[pid],
};

describe("findOrphans", () => {
  it("finds untracked llama-servers and says whose each is", async () => {
    const orphans = await findOrphans({ homeId: "home-a", tracked: new Set([104]), probe, uid: 1000 });
    expect(orphans.map((o) => [o.pid, o.verdict])).toEqual([
      [100, "ours"],
      [101, "likely-ours"],
      [102, "foreign"],
      [103, "foreign"],
      [108, "likely-ours"],
    ]);
  });

  it("reports the marker, the parsed command line and readable reasons", async () => {
    const [ours, likely, , otherUser, unreadable] = await findOrphans({
      homeId: "home-a",
      tracked: new Set(),
      probe,
      uid: 1000,
      processes: table.filter((p) => p.pid !== 104 && p.pid !== 105),
    });
    expect(ours).toMatchObject({
      marker: { home_id: "home-a", instance_id: "i-1" },
      marker_readable: true,
      model_path: "/m/100.gguf",
      port: 8100,
    });
    expect(ours?.started_at).toBe("2026-11-26T12:00:00.000Z");
    expect(likely?.marker).toBeUndefined();
    expect(likely?.reasons.join(" ")).toContain("our user");
    expect(otherUser?.reasons.join(" ")).toContain("bob");
    expect(unreadable).toMatchObject({ pid: 108, marker_readable: false });
    expect(unreadable?.reasons.join(" ")).toContain("could not be read");
  });

  it("calls a server whose owner could not be read foreign", async () => {
    const nobody = [proc(200, 1, { uid: undefined, user: undefined })];
    const known = await findOrphans({ homeId: "h", tracked: new Set(), probe, processes: nobody, uid: 1000 });
    expect(known[0]?.verdict).toBe("foreign");
  });
});

describe("findOrphans on a /proc laid out by hand", () => {
  const root = mkdtempSync(join(tmpdir(), "corral-orphan-proc-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, "stat"), "cpu  1 2 3 4\nbtime 1700000000\n");
  /** A process folder: a stat line with `ticks` (1/100 s after boot), and the rest only when given. */
  const fake = (pid: number, comm: string, o: { ppid?: number; ticks: number; exe?: string }) => {
    const dir = join(root, String(pid));
    mkdirSync(dir);
    const fields = ["S", o.ppid ?? 1, pid, pid, 0, -1, 4194560, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 1, 0, o.ticks, 1e7, 50];
    writeFileSync(join(dir, "stat"), `${pid} (${comm}) ${fields.join(" ")}\n`);
    writeFileSync(join(dir, "cmdline"), `${o.exe ?? comm}\0-m\0/m/${pid}.gguf\0`);
    if (o.exe) symlinkSync(o.exe, join(dir, "exe"));
  };
  fake(300, "llama-server", { ticks: 500, exe: "/opt/llama-server" }); // tracked, started as recorded
  fake(301, "llama-server", { ticks: 900, exe: "/opt/llama-server" }); // tracked PID, now another process
  fake(302, "llama-server", { ppid: 300, ticks: 600, exe: "/opt/llama-server" }); // child of a tracked one
  fake(303, "bash", { ticks: 700, exe: "/usr/bin/bash" });
  const recorded = 1700000000_000 + 5000;

  it("passes over a tracked PID at its stat line, and reports one whose process started at another time", async () => {
    const real = procfsProbe({ procRoot: root, clockTicks: 100 });
    let scanned: ProcessInfo[] = [];
    const watched: ProcessProbe = { ...real, list: async (o) => (scanned = await real.list(o)) };
    const orphans = await findOrphans({
      homeId: "h",
      tracked: new Set([300, 301]),
      trackedStarts: new Map([
        [300, recorded],
        [301, recorded],
      ]),
      probe: watched,
      uid: process.getuid?.(),
    });
    expect(orphans.map((o) => [o.pid, o.model_path])).toEqual([[301, "/m/301.gguf"]]);
    const byPid = new Map(scanned.map((p) => [p.pid, p]));
    // Neither the tracked server nor the shell had more than their stat line read.
    expect(byPid.get(300)).toMatchObject({ exe: undefined, cmdline: [], uid: undefined });
    expect(byPid.get(303)).toMatchObject({ name: "bash", exe: undefined, cmdline: [] });
    expect(byPid.get(301)).toMatchObject({ exe: "/opt/llama-server", uid: process.getuid?.() });
  });

  it("still counts a tracked PID as tracked when no start time was recorded for it", async () => {
    const orphans = await findOrphans({
      homeId: "h",
      tracked: new Set([300, 301]),
      probe: procfsProbe({ procRoot: root, clockTicks: 100 }),
    });
    expect(orphans).toEqual([]);
  });
});
