import { describe, expect, it } from "bun:test";
import type { ProcessEntry } from "../store/schema.ts";
import { identityOf, isServerProcess, judgeEntry, parseTimestamp, startTimeMatches } from "./identity.ts";
import type { ProcessInfo } from "./types.ts";

const START = Date.UTC(2026, 10, 26, 12, 0, 0, 120);

function info(over: Partial<ProcessInfo> = {}): ProcessInfo {
  return {
    pid: 4242,
    ppid: 1,
    name: "llama-server",
    exe: "/opt/llama/llama-server",
    cmdline: ["/opt/llama/llama-server", "-m", "/m/a.gguf"],
    startTimeMs: START,
    startTimePrecisionMs: 10,
    uid: 1000,
    user: "alice",
    state: "S",
    accessDenied: false,
    ...over,
  };
}

function entry(over: Partial<ProcessEntry> = {}): ProcessEntry {
  return {
    pid: 4242,
    model_id: "a",
    model_name: "A",
    model_path: "/m/a.gguf",
    gpu_id: 0,
    port: 8081,
    started_at: new Date(START + 50).toISOString(),
    command_line: ["llama-server"],
    status: "running",
    proc_start_ms: START,
    executable: "/opt/llama/llama-server",
    ...over,
  };
}

describe("judgeEntry", () => {
  it("says running when start time, executable and name all match", () => {
    const result = judgeEntry(entry(), info());
    expect(result.state).toBe("running");
    expect(result.reason).toContain("llama-server");
    expect(result.process?.pid).toBe(4242);
  });

  it("says exited when no process has the PID", () => {
    expect(judgeEntry(entry(), undefined)).toEqual({ state: "exited", reason: "no process with pid 4242: it exited" });
  });

  it("says exited for a zombie", () => {
    expect(judgeEntry(entry(), info({ state: "Z" })).reason).toBe("zombie: exited, not yet reaped");
  });

  it("says pid-reused with both times when the start time differs", () => {
    const result = judgeEntry(entry(), info({ startTimeMs: START + 60_000 }));
    expect(result.state).toBe("pid-reused");
    expect(result.reason).toContain(new Date(START).toISOString());
    expect(result.reason).toContain(new Date(START + 60_000).toISOString());
  });

  it("allows a whole-second reading of a precisely recorded start", () => {
    const coarse = info({ startTimeMs: Math.floor(START / 1000) * 1000, startTimePrecisionMs: 1000 });
    expect(judgeEntry(entry(), coarse).state).toBe("running");
  });

  it("says pid-reused when the executable differs", () => {
    const result = judgeEntry(entry(), info({ exe: "/other/llama-server" }));
    expect(result.state).toBe("pid-reused");
    expect(result.reason).toContain("/other/llama-server");
  });

  it("never takes a redis-server for ours, even when nothing else was recorded", () => {
    const legacy = entry({
      proc_start_ms: undefined,
      executable: undefined,
      started_at: new Date(START + 5000).toISOString(),
    });
    const redis = info({ name: "redis-server", exe: "/usr/bin/redis-server" });
    const result = judgeEntry(legacy, redis);
    expect(result.state).toBe("pid-reused");
    expect(result.reason).toContain("not a llama-server");
  });

  it("judges an entry without proc_start_ms by its naive local started_at", () => {
    const d = new Date(START);
    const naive = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.500123`;
    const legacy = entry({ proc_start_ms: undefined, executable: undefined, started_at: naive });
    expect(judgeEntry(legacy, info()).state).toBe("running");
    expect(judgeEntry(legacy, info({ startTimeMs: START + 1500 })).state).toBe("running");
    const later = judgeEntry(legacy, info({ startTimeMs: START + 10_000 }));
    expect(later.state).toBe("pid-reused");
    expect(later.reason).toContain(naive);
    expect(judgeEntry(legacy, info({ startTimeMs: START + 10_000 }), { clockSlackMs: 20_000 }).state).toBe("running");
  });

  it("says access-denied when the OS hides what identifies the process", () => {
    const hidden = info({
      name: "",
      exe: undefined,
      cmdline: [],
      startTimeMs: undefined,
      uid: undefined,
      accessDenied: true,
    });
    expect(judgeEntry(entry(), hidden).state).toBe("access-denied");
  });

  it("accepts a matching name where the OS tells no start time, and says so", () => {
    const windows = info({ name: "llama-server.exe", exe: undefined, startTimeMs: undefined });
    const result = judgeEntry(entry({ proc_start_ms: undefined }), windows);
    expect(result.state).toBe("running");
    expect(result.reason).toContain("only the name");
  });

  it("honours custom server names", () => {
    const custom = info({ name: "llama-server-cuda", exe: "/opt/llama-server-cuda" });
    expect(judgeEntry(entry({ executable: undefined }), custom).state).toBe("pid-reused");
    expect(judgeEntry(entry({ executable: undefined }), custom, { names: ["llama-server-cuda"] }).state).toBe(
      "running",
    );
  });
});

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

describe("startTimeMatches", () => {
  it("treats a recorded whole second as possibly coarse", () => {
    expect(startTimeMatches(1_000_000, info({ startTimeMs: 1_000_900 }), 0)).toBe(true);
    expect(startTimeMatches(1_000_010, info({ startTimeMs: 1_000_900 }), 0)).toBe(false);
  });
});

describe("isServerProcess", () => {
  it("matches the executable's basename or the name", () => {
    expect(isServerProcess(info())).toBe(true);
    expect(isServerProcess(info({ exe: undefined, name: "llama-server" }))).toBe(true);
    expect(isServerProcess(info({ exe: "C:\\llama\\LLAMA-SERVER.EXE", name: "LLAMA-SERVER.EXE" }))).toBe(true);
  });

  it("rejects other servers and near-misses", () => {
    expect(isServerProcess(info({ exe: "/usr/bin/redis-server", name: "redis-server" }))).toBe(false);
    expect(isServerProcess(info({ exe: "/opt/llama-server2", name: "llama-server2" }))).toBe(false);
    expect(isServerProcess(info({ exe: "/opt/LLAMA-SERVER", name: "LLAMA-SERVER" }))).toBe(false);
  });
});

describe("identityOf", () => {
  it("returns what the registry records, leaving out what is unknown", () => {
    expect(identityOf(info())).toEqual({ proc_start_ms: START, executable: "/opt/llama/llama-server", uid: 1000 });
    expect(identityOf(info({ startTimeMs: undefined, exe: undefined, uid: undefined }))).toEqual({});
  });
});

describe("parseTimestamp", () => {
  it("reads ISO times with Z or an offset", () => {
    expect(parseTimestamp("2026-11-26T12:00:00Z")).toBe(Date.UTC(2026, 10, 26, 12));
    expect(parseTimestamp("2026-11-26T12:00:00.250Z")).toBe(Date.UTC(2026, 10, 26, 12, 0, 0, 250));
    expect(parseTimestamp("2026-11-26T14:30:00+02:30")).toBe(Date.UTC(2026, 10, 26, 12));
    expect(parseTimestamp("2026-11-26T07:00:00-0500")).toBe(Date.UTC(2026, 10, 26, 12));
  });

  it("reads naive times as local time, with up to nine fractional digits", () => {
    expect(parseTimestamp("2026-11-26T12:00:00")).toBe(new Date(2026, 10, 26, 12).getTime());
    expect(parseTimestamp("2026-11-26T12:00:00.123456")).toBe(new Date(2026, 10, 26, 12, 0, 0, 123).getTime());
    expect(parseTimestamp("2026-11-26 12:00:00.123456789")).toBe(new Date(2026, 10, 26, 12, 0, 0, 123).getTime());
  });

  it("rejects what is not a timestamp", () => {
    for (const bad of [
      "",
      "yesterday",
      "2026-13-01T00:00:00",
      "2026-02-31T00:00:00",
      "2026-11-26T25:00:00Z",
      "1795694400",
    ]) {
      expect(parseTimestamp(bad)).toBeUndefined();
    }
  });
});
