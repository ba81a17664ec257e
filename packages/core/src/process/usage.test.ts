import { afterEach, beforeEach, describe, expect, it } from "bun:test";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createUsageSampler } from "./usage.ts";

/** A `/proc/<pid>/stat` line with the fields the sampler reads; the rest are plausible zeros. */
function statLine(
  pid: number,
  o: { comm?: string; state?: string; utime: number; stime: number; start: number; rss: number },
): string {
  const fields = [
    o.state ?? "S",
    1,
    pid,
    pid,
    0,
    -1,
    4194560,
    0,
    0,
    0,
    0,
    o.utime,
    o.stime,
    0,
    0,
    20,
    0,
    1,
    0,
    o.start,
    1e7,
    o.rss,
  ];
  return `${pid} (${o.comm ?? "llama-server"}) ${fields.join(" ")} 18446744073709551615 0 0 0\n`;
}

let procRoot: string;
let clock: number;

async function writeStat(pid: number, o: Parameters<typeof statLine>[1]): Promise<void> {
  await mkdir(join(procRoot, String(pid)), { recursive: true });
  await writeFile(join(procRoot, String(pid), "stat"), statLine(pid, o));
}

beforeEach(async () => {
  procRoot = await mkdtemp(join(tmpdir(), "corral-usage-"));
  clock = 1_000_000;
  // 1000 s after boot.
  await writeFile(join(procRoot, "uptime"), "1000.00 1900.00\n");
});
afterEach(async () => {
  await rm(procRoot, { recursive: true, force: true });
});

const sampler = () => createUsageSampler({ procRoot, now: () => clock, clockTicks: 100, pageSize: 4096 });

describe("createUsageSampler on procfs", () => {
  it("reports CPU since the process started on its first sample and resident pages times the page size", async () => {
    // Started 900 s after boot, alive 100 s, used 50 s of CPU: 50 %.
    await writeStat(7, { utime: 4000, stime: 1000, start: 90_000, rss: 2560 });
    const usage = await sampler().sample([7]);
    expect(usage.get(7)).toEqual({ cpu_percent: 50, rss_bytes: 2560 * 4096 });
  });

  it("reports CPU between two samples of the same process", async () => {
    const s = sampler();
    await writeStat(7, { utime: 4000, stime: 1000, start: 90_000, rss: 10 });
    await s.sample([7]);
    // 2 s later, 300 more ticks = 3 CPU-seconds: 150 % (one and a half cores).
    clock += 2000;
    await writeStat(7, { utime: 4200, stime: 1100, start: 90_000, rss: 10 });
    expect((await s.sample([7])).get(7)?.cpu_percent).toBe(150);
  });

  it("starts over when the PID now belongs to a process with another start time", async () => {
    const s = sampler();
    await writeStat(7, { utime: 90_000, stime: 0, start: 1000, rss: 10 });
    await s.sample([7]);
    clock += 1000;
    // PID reused by a process started at 990 s that used 5 s of CPU in its 10 s: 50 %, not a negative delta.
    await writeStat(7, { utime: 500, stime: 0, start: 99_000, rss: 10 });
    expect((await s.sample([7])).get(7)?.cpu_percent).toBe(50);
  });

  it("omits PIDs with no stat file, zombies and invalid PIDs, and keeps the living", async () => {
    await writeStat(7, { utime: 0, stime: 0, start: 90_000, rss: 10 });
    await writeStat(8, { state: "Z", utime: 0, stime: 0, start: 90_000, rss: 0 });
    const usage = await sampler().sample([7, 8, 9, 0, -3, 1.5]);
    expect([...usage.keys()]).toEqual([7]);
    expect(usage.get(7)?.cpu_percent).toBe(0);
  });

  it("returns the previous figure when two samples carry the same time", async () => {
    const s = sampler();
    await writeStat(7, { utime: 4000, stime: 1000, start: 90_000, rss: 10 });
    await s.sample([7]);
    await writeStat(7, { utime: 4100, stime: 1000, start: 90_000, rss: 10 });
    expect((await s.sample([7])).get(7)?.cpu_percent).toBe(50);
  });
});

describe("createUsageSampler on ps", () => {
  it("turns the memory percentage into bytes with the total memory and keeps only the asked PIDs", async () => {
    const s = createUsageSampler({
      source: "ps",
      totalMemory: 8 * 1024 ** 3,
      list: async () => [
        { pid: 7, cpu: 12.34, memory: 25 },
        { pid: 8, cpu: 1, memory: 1 },
        // what ps-list gives on Windows: no figures
        { pid: 9 },
      ],
    });
    const usage = await s.sample([7, 9, 10]);
    expect([...usage.entries()]).toEqual([[7, { cpu_percent: 12.3, rss_bytes: 2 * 1024 ** 3 }]]);
  });
});
