import { describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { clockTicks, commOf, parseProcStat, parseProcStatBytes, readProcStat } from "./proc-stat.ts";

/** A stat line: fields 3 to 24 as the kernel writes them, then a few more. */
function statLine(
  pid: number,
  comm: string,
  o: {
    state?: string;
    ppid?: number;
    flags?: number;
    utime?: number;
    stime?: number;
    start?: number;
    rss?: number;
  } = {},
): string {
  const f = [o.state ?? "S", o.ppid ?? 1, pid, pid, 0, -1, o.flags ?? 4194560, 0, 0, 0, 0, o.utime ?? 0];
  f.push(o.stime ?? 0, 0, 0, 20, 0, 1, 0, o.start ?? 500, 1e7, o.rss ?? 50);
  return `${pid} (${comm}) ${f.join(" ")} 18446744073709551615 0 0 0\n`;
}

describe("parseProcStat", () => {
  it("counts fields from the last parenthesis, so a command name with spaces and parentheses survives", () => {
    const stat = parseProcStat(
      statLine(9, "a) b (c", { state: "R", ppid: 3, utime: 120, stime: 30, start: 777, rss: 250 }),
    );
    expect(stat).toEqual({
      comm: "a) b (c",
      state: "R",
      ppid: 3,
      kernelThread: false,
      cpuTicks: 150,
      startTicks: 777,
      rssPages: 250,
    });
  });

  it("recognises kernel threads by the PF_KTHREAD flag", () => {
    expect(parseProcStat(statLine(2, "kthreadd", { flags: 0x00208040 }))?.kernelThread).toBe(true);
  });

  it("returns undefined for text that is not a whole stat line", () => {
    expect(parseProcStat("")).toBeUndefined();
    expect(parseProcStat("garbage")).toBeUndefined();
    expect(parseProcStat("1 (x) S")).toBeUndefined();
    expect(parseProcStat("42 (x) S 1")).toBeUndefined();
  });

  it("reads this process's own stat file, with the kernel's start ticks", () => {
    const stat = parseProcStat(readFileSync("/proc/self/stat", "utf8"));
    expect(stat?.ppid).toBe(process.ppid);
    expect(stat?.state).toBe("R");
    const uptimeTicks = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * clockTicks();
    expect(stat?.startTicks).toBeGreaterThan(0);
    expect(stat?.startTicks).toBeLessThanOrEqual(uptimeTicks + 1);
  });
});

describe("parseProcStatBytes", () => {
  it("reads the same fields from the bytes as parseProcStat from the text", () => {
    const lines = [
      statLine(9, "a) b (c", { state: "R", ppid: 3, utime: 120, stime: 30, start: 777, rss: 250 }),
      statLine(2, "kthreadd", { flags: 0x00208040 }),
      statLine(7, "ünïcode ✓", { state: "Z", ppid: 1 }),
      readFileSync("/proc/self/stat", "utf8"),
    ];
    for (const line of lines) {
      const bytes = Buffer.from(line);
      expect(parseProcStatBytes(bytes, bytes.length)).toEqual(parseProcStat(line));
    }
  });

  it("returns undefined for bytes that are not a whole stat line", () => {
    for (const text of ["", "garbage", "1 (x) S", "42 (x) S 1", "42 (x)  S 1 2"]) {
      expect(parseProcStatBytes(Buffer.from(text), Buffer.byteLength(text))).toBeUndefined();
    }
  });

  it("reads a live process's stat file", () => {
    expect(readProcStat("/proc/self/stat")?.ppid).toBe(process.ppid);
  });
});

describe("commOf", () => {
  it("is the executable's basename cut to 15 bytes, as the kernel keeps it", () => {
    expect(commOf("/opt/llama/llama-server")).toBe("llama-server");
    expect(commOf("/opt/llama/llama-server-cuda-12")).toBe("llama-server-cu");
    expect(commOf("llama-server")).toBe("llama-server");
  });

  it("matches the command name the kernel gave a process exec'd from a long path", async () => {
    const child = Bun.spawn(["/bin/sh", "-c", "exec sleep 5"], { stdio: ["ignore", "ignore", "ignore"] });
    try {
      let comm = "";
      for (let i = 0; i < 500 && comm !== "sleep"; i++) {
        comm = parseProcStat(readFileSync(`/proc/${child.pid}/stat`, "utf8"))?.comm ?? "";
        if (comm !== "sleep") await Bun.sleep(2);
      }
      expect(comm).toBe(commOf(Bun.which("sleep") ?? "/bin/sleep"));
    } finally {
      child.kill("SIGKILL");
      await child.exited;
    }
  });
});

describe("clockTicks", () => {
  it("is what getconf says, asked once", () => {
    const fromGetconf = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim());
    expect(clockTicks()).toBe(fromGetconf);
  });
});
