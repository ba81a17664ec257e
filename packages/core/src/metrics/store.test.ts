import { afterEach, describe, expect, it } from "bun:test";
import { lstatSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type MetricSample, openMetricsStore } from "./store.ts";

const homes: string[] = [];
function home(): string {
  const dir = mkdtempSync(join(tmpdir(), "corral-metrics-"));
  homes.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of homes.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const T0 = Date.parse("2026-11-01T00:00:00.000Z");
const sample = (slot: string, cpu: number, extra: Partial<MetricSample> = {}): MetricSample => ({
  slot,
  pid: 100 + Number(slot),
  model_id: `m${slot}`,
  cpu_percent: cpu,
  rss_bytes: 1000 * cpu,
  restarts: 0,
  ...extra,
});

describe("openMetricsStore", () => {
  it("creates metrics.db 0600 in WAL mode", () => {
    const dir = home();
    const store = openMetricsStore({ home: dir, now: () => T0 });
    store.insertTick(T0, [sample("0", 5)]);
    expect(statSync(join(dir, "metrics.db")).mode & 0o777).toBe(0o600);
    expect(lstatSync(join(dir, "metrics.db-wal")).mode & 0o777).toBe(0o600);
    store.close();
  });

  it("refuses a metrics.db that is a symlink, and a home that is a symlink", () => {
    const dir = home();
    const target = join(dir, "elsewhere");
    writeFileSync(target, "");
    symlinkSync(target, join(dir, "metrics.db"));
    expect(() => openMetricsStore({ home: dir })).toThrow(/symbolic link/);
    const linked = join(home(), "link");
    symlinkSync(home(), linked);
    expect(() => openMetricsStore({ home: linked })).toThrow(/not a plain folder/);
  });
});

describe("MetricsStore", () => {
  it("serves one row per tick at full resolution, averaged per step", () => {
    let now = T0;
    const store = openMetricsStore({ home: home(), now: () => now });
    for (let i = 0; i < 12; i++) store.insertTick(T0 + i * 5000, [sample("0", i), sample("1", 100)]);
    now = T0 + 60_000;
    const rows = store.usage("0", { since: T0, stepMs: 5000 });
    expect(rows.map((r) => r.cpu_percent)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const coarse = store.usage("0", { since: T0, stepMs: 30_000 });
    expect(coarse.map((r) => r.cpu_percent)).toEqual([2.5, 8.5]);
    expect(coarse.map((r) => r.t)).toEqual([T0, T0 + 30_000]);
    store.close();
  });

  it("rolls each ended minute into its average and answers minute steps from those rows and the minute under way", () => {
    let now = T0;
    const store = openMetricsStore({ home: home(), now: () => now });
    for (let i = 0; i < 30; i++) store.insertTick(T0 + i * 5000, [sample("0", i < 12 ? 10 : 20)]);
    now = T0 + 150_000;
    expect(store.counts().minutes).toBe(2);
    const rows = store.usage("0", { since: T0, stepMs: 60_000 });
    expect(rows.map((r) => r.cpu_percent)).toEqual([10, 20, 20]);
    store.close();
  });

  it("rolls ten minutes into their average and answers wide steps from those rows, the minutes and the raw ticks", () => {
    let now = T0;
    const store = openMetricsStore({ home: home(), now: () => now });
    // 25 minutes of 5 s ticks: cpu 1 in the first ten minutes, 2 in the next ten, 3 after
    for (let t = T0; t < T0 + 25 * 60_000; t += 5000)
      store.insertTick(t, [sample("0", 1 + Math.floor((t - T0) / 600_000))]);
    now = T0 + 25 * 60_000;
    expect(store.counts().tens).toBe(2);
    expect(store.counts().minutes).toBe(24);
    const rows = store.usage("0", { since: T0, stepMs: 600_000 });
    expect(rows.map((r) => r.cpu_percent)).toEqual([1, 2, 3]);
    expect(rows.map((r) => r.t)).toEqual([T0, T0 + 600_000, T0 + 1_200_000]);
    store.close();
  });

  it("keeps full resolution a day, minutes for the retention, and deletes what is older", () => {
    let now = T0;
    const store = openMetricsStore({ home: home(), now: () => now, retentionDays: 2, pruneEveryMs: 0 });
    const minute = 60_000;
    // a sample every 10 minutes for 3 days
    for (let t = T0; t < T0 + 3 * 86_400_000; t += 10 * minute) {
      now = t;
      store.insertTick(t, [sample("0", 1)]);
    }
    const counts = store.counts();
    expect(counts.samples).toBeLessThanOrEqual(6 * 24 + 1);
    expect(counts.samples).toBeGreaterThanOrEqual(6 * 24 - 1);
    expect(counts.minutes).toBeLessThanOrEqual(6 * 48 + 1);
    expect(store.usage("0", { since: T0, stepMs: minute })[0]!.t).toBeGreaterThanOrEqual(now - 2 * 86_400_000);
    store.close();
  });

  it("reads a retention given as a function at each pruning (a reloaded configuration applies at once)", () => {
    let now = T0;
    let days = 30;
    const store = openMetricsStore({ home: home(), now: () => now, retentionDays: () => days, pruneEveryMs: 0 });
    for (let t = T0; t < T0 + 3 * 86_400_000; t += 10 * 60_000) {
      now = t;
      store.insertTick(t, [sample("0", 1)]);
    }
    expect(store.usage("0", { since: T0, stepMs: 600_000 })[0]!.t).toBe(T0);
    days = 1;
    store.insertTick(now + 5000, [sample("0", 1)]);
    expect(store.usage("0", { since: T0, stepMs: 600_000 })[0]!.t).toBeGreaterThanOrEqual(now - 86_400_000);
    store.close();
  });

  it("carries the roll-up point over a reopen, so no minute is rolled twice or missed", () => {
    const dir = home();
    let now = T0;
    const first = openMetricsStore({ home: dir, now: () => now });
    for (let i = 0; i < 18; i++) first.insertTick(T0 + i * 5000, [sample("0", 4)]);
    first.close();
    now = T0 + 120_000;
    const second = openMetricsStore({ home: dir, now: () => now });
    second.insertTick(now, [sample("0", 4)]);
    expect(second.counts().minutes).toBe(2);
    expect(second.usage("0", { since: T0, stepMs: 60_000 }).map((r) => r.cpu_percent)).toEqual([4, 4, 4]);
    second.close();
  });

  it("keeps each process's memory per GPU", () => {
    let now = T0;
    const store = openMetricsStore({ home: home(), now: () => now });
    store.insertTick(
      T0,
      [],
      [
        { gpu: 0, pid: 10, slot: "0", mib: 1000 },
        { gpu: 1, pid: 77, mib: 300 },
      ],
    );
    store.insertTick(T0 + 5000, [], [{ gpu: 0, pid: 10, slot: "0", mib: 2000 }]);
    now = T0 + 10_000;
    expect(store.gpuUsage({ since: T0, stepMs: 60_000 })).toEqual([
      { gpu: 0, t: T0, pid: 10, slot: "0", mib: 1500 },
      { gpu: 1, t: T0, pid: 77, slot: null, mib: 300 },
    ]);
    store.close();
  });
});
