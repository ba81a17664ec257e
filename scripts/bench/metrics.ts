/**
 * Scenario 11: the supervisor's own cost and the metrics store (issue 17).
 * - Eight tracked stand-in llama-servers, one supervisor as `corral serve` runs it (history
 *   follower, 5 s ticks, samples into metrics.db), left alone for a minute: this process's CPU
 *   time over the wall time is the server's idle CPU share (target under 0.5% of one core).
 * - CPU time of one tick, with and without the metrics recording, interleaved in the same run.
 * - Memory over 10,000 back-to-back ticks (after 500 to warm up, a full GC before each reading):
 *   RSS at five points (it moves by several MiB either way: the allocator's noise, a bare supervisor
 *   does the same) and the JS heap, whose growth is what a leak would show (target under 1 MiB).
 * - The store alone: insert cost per tick (8 processes + 8 GPU rows, roll-ups and deletes
 *   included), a simulated month (a tick a minute for 29 days, every 5 s the last day: the rows a
 *   month of 5 s ticks leaves after roll-up), the week's chart query for 8 processes (target
 *   under 20 ms) beside the hour's and the day's, and the database's size.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  chooseStep,
  createController,
  createMetricsRecorder,
  createSupervisor,
  type GpuSample,
  type MetricSample,
  openMetricsStore,
  USAGE_RANGES,
} from "@corral/core";
import { makeHome } from "../../packages/core/test/helpers/home.ts";
import { type Figure, figure, median, percentile, round, type Scenario } from "./harness.ts";

const SERVERS = 8;
const MIB = 1024 * 1024;

export const metricsScenario: Scenario = {
  scenario: 11,
  name: "supervisor cost and metrics store",
  async run(ctx) {
    const figures: Figure[] = [];
    figures.push(...storeFigures(ctx.quick, ctx.log));
    figures.push(...(await supervisorFigures(ctx)));
    return figures;
  },
};

function rows(at: number): { samples: MetricSample[]; gpus: GpuSample[] } {
  const samples: MetricSample[] = [];
  const gpus: GpuSample[] = [];
  for (let i = 0; i < SERVERS; i++) {
    const wobble = (at / 5000 + i) % 17;
    samples.push({
      slot: String(i),
      pid: 1000 + i,
      model_id: `model-${i}`,
      cpu_percent: 2 + wobble,
      rss_bytes: 700 * MIB + wobble * MIB,
      gpu_memory_mib: 6000 + wobble,
      requests_per_s: wobble / 10,
      tokens_per_second: 40 + wobble,
      restarts: 0,
    });
    gpus.push({ gpu: i, pid: 1000 + i, slot: String(i), mib: 6000 + wobble });
  }
  return { samples, gpus };
}

function storeFigures(quick: boolean, log: (m: string) => void): Figure[] {
  // --quick: 8 days (enough for the week's chart), the last hour at 5 s.
  const days = quick ? 8 : 30;
  const home = mkdtempSync(join(tmpdir(), "corral-bench-metrics-"));
  try {
    const day = USAGE_RANGES.day;
    const end = Date.now();
    const fine = quick ? USAGE_RANGES.hour : day;
    const start = end - days * day;
    let now = start;
    const store = openMetricsStore({ home, now: () => now });
    const inserts: number[] = [];
    const built = performance.now();
    // A tick a minute until the last day, then every 5 s: what a month of 5 s ticks leaves.
    for (let t = start; t < end; t += t < end - fine ? 60_000 : 5000) {
      now = t;
      const { samples, gpus } = rows(t);
      const t0 = performance.now();
      store.insertTick(t, samples, gpus);
      if (t >= end - fine) inserts.push(performance.now() - t0);
    }
    now = end;
    const buildS = (performance.now() - built) / 1000;
    const counts = store.counts();
    const chart = (range: number) => {
      const since = end - range;
      const stepMs = chooseStep(since, end);
      const times: number[] = [];
      let points = 0;
      for (let i = -2; i < (quick ? 5 : 21); i++) {
        const t0 = performance.now();
        points = 0;
        for (let s = 0; s < SERVERS; s++) points += store.usage(String(s), { since, until: end, stepMs }).length;
        if (i >= 0) times.push(performance.now() - t0);
      }
      return { ms: median(times), points };
    };
    const hour = chart(USAGE_RANGES.hour);
    const dayChart = chart(USAGE_RANGES.day);
    const week = chart(USAGE_RANGES.week);
    const gpuTimes: number[] = [];
    for (let i = -1; i < (quick ? 3 : 9); i++) {
      const since = end - USAGE_RANGES.week;
      const t0 = performance.now();
      store.gpuUsage({ since, until: end, stepMs: chooseStep(since, end) });
      if (i >= 0) gpuTimes.push(performance.now() - t0);
    }
    store.close();
    const size = statSync(join(home, "metrics.db")).size;
    log(
      `metrics store: ${days} days built in ${buildS.toFixed(1)} s (${counts.samples} raw rows, ${counts.minutes} minutes, ${counts.tens} ten-minutes, ` +
        `${counts.gpu_samples + counts.gpu_minutes + counts.gpu_tens} GPU rows), ${(size / MIB).toFixed(1)} MiB; week chart ` +
        `${week.ms.toFixed(2)} ms for ${week.points} points, day ${dayChart.ms.toFixed(2)} ms, hour ${hour.ms.toFixed(2)} ms`,
    );
    return [
      figure(
        11,
        "metrics.insert.p50",
        "metrics.db insert, one tick of 8 processes (median)",
        round(median(inserts)),
        "ms",
      ),
      figure(
        11,
        "metrics.insert.p99",
        "metrics.db insert, one tick (p99: roll-ups and deletes)",
        round(percentile(inserts, 99)),
        "ms",
      ),
      figure(11, "metrics.chart.hour", "chart query, last hour, 8 processes", round(hour.ms), "ms"),
      figure(11, "metrics.chart.day", "chart query, last day, 8 processes", round(dayChart.ms), "ms"),
      figure(11, "metrics.chart.week", "chart query, last week, 8 processes", round(week.ms), "ms", {
        op: "<",
        value: 20,
      }),
      figure(11, "metrics.chart.gpus", "GPU chart query, last week, 8 GPUs", round(median(gpuTimes)), "ms"),
      figure(
        11,
        "metrics.db.month",
        `metrics.db after a simulated ${quick ? "8 days" : "month"}, 8 processes`,
        round(size / MIB),
        "MiB",
        undefined,
        quick ? "quick: 8 days, the last hour at full resolution" : undefined,
      ),
    ];
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

async function supervisorFigures(ctx: Parameters<Scenario["run"]>[0]): Promise<Figure[]> {
  const models = Array.from({ length: SERVERS }, (_, i) => ({ id: `m${i}` }));
  const home = await makeHome(models);
  ctx.tracker.dir(home.home);
  const controller = await createController({ home: home.home, configFile: home.configFile });
  const off = controller.registry.subscribe((event) => {
    if (event.event === "registered" && event.pid) ctx.tracker.group(event.pid);
  });
  const store = openMetricsStore({ home: home.home });
  try {
    for (let i = 0; i < SERVERS; i++) await controller.load(`m${i}`, { gpu: i });
    // Interleaved: one tick with the recording, one without, same servers.
    const recording = createSupervisor(controller, {
      followHistory: false,
      metrics: createMetricsRecorder({ store }),
    });
    const bare = createSupervisor(controller, { followHistory: false });
    const withCpu: number[] = [];
    const withoutCpu: number[] = [];
    for (let i = -5; i < ctx.runs(200, 40); i++) {
      let c = cpuMs();
      await recording.tick();
      const a = cpuMs() - c;
      c = cpuMs();
      await bare.tick();
      const b = cpuMs() - c;
      if (i < 0) continue;
      withCpu.push(a);
      withoutCpu.push(b);
    }

    // Idle, side by side: this process with nothing running (the floor: Bun's own timers and GC on a
    // shared machine), the ticks alone, and the supervisor as serve runs it (5 s ticks, metrics.db, the
    // history follower polling every 100 ms).
    const window = async (ms: number, supervisor?: ReturnType<typeof createSupervisor>) => {
      Bun.gc(true);
      const c0 = cpuMs();
      const w0 = performance.now();
      supervisor?.start();
      await Bun.sleep(ms);
      await supervisor?.stop();
      return ((cpuMs() - c0) / (performance.now() - w0)) * 100;
    };
    const sideMs = ctx.quick ? 5000 : 20_000;
    const idleMs = ctx.quick ? 15_000 : 60_000;
    const floor = await window(sideMs);
    const ticksOnly = await window(
      sideMs,
      createSupervisor(controller, {
        intervalMs: 5000,
        followHistory: false,
        metrics: createMetricsRecorder({ store }),
      }),
    );
    const idleShare = await window(
      idleMs,
      createSupervisor(controller, { intervalMs: 5000, metrics: createMetricsRecorder({ store }) }),
    );

    // Memory over many ticks: RSS (the allocator's pages, which move by several MiB either way) read
    // at five points, and the JS heap after a full GC (what a leak of ours would grow).
    const ticks = ctx.runs(10_000, 1_000);
    const warm = 500;
    const memory = () => {
      Bun.gc(true);
      const { rss, heapUsed } = process.memoryUsage();
      return { rss: rss / MIB, heap: heapUsed / MIB };
    };
    for (let i = 0; i < warm; i++) await recording.tick();
    const before = memory();
    const readings: number[] = [];
    let after = before;
    const t0 = performance.now();
    for (let part = 0; part < 5; part++) {
      for (let i = 0; i < ticks / 5; i++) await recording.tick();
      after = memory();
      readings.push(after.rss - before.rss);
    }
    const tickWall = (performance.now() - t0) / ticks;
    const growth = after.rss - before.rss;
    const heapGrowth = after.heap - before.heap;
    ctx.log(
      `supervisor: tick CPU ${median(withCpu).toFixed(2)} ms with metrics, ${median(withoutCpu).toFixed(2)} ms without; ` +
        `idle ${idleShare.toFixed(3)}% of a core over ${idleMs / 1000} s (floor ${floor.toFixed(3)}%, ticks alone ${ticksOnly.toFixed(3)}%); RSS ${readings.map((r) => r.toFixed(1)).join(" / ")} MiB over ${ticks} ticks (heap ${heapGrowth.toFixed(2)} MiB) ` +
        `(${tickWall.toFixed(2)} ms a tick back to back)`,
    );
    return [
      figure(
        11,
        "supervisor.tick.cpu",
        "supervisor tick CPU, 8 servers, recording metrics",
        round(median(withCpu)),
        "ms",
      ),
      figure(
        11,
        "supervisor.tick.cpu.bare",
        "supervisor tick CPU, 8 servers, no metrics",
        round(median(withoutCpu)),
        "ms",
      ),
      figure(
        11,
        "supervisor.idle.floor",
        `idle floor: the same process, nothing running, ${sideMs / 1000} s`,
        round(floor),
        "% core",
      ),
      figure(
        11,
        "supervisor.idle.ticks",
        `5 s ticks + metrics.db, no history follower, ${sideMs / 1000} s`,
        round(ticksOnly),
        "% core",
      ),
      figure(
        11,
        "supervisor.idle.cpu",
        `corral serve's supervisor idle, 8 servers, 5 s ticks, over ${idleMs / 1000} s`,
        round(idleShare),
        "% core",
        { op: "<", value: 0.5 },
      ),
      figure(
        11,
        "supervisor.rss.growth",
        `RSS growth over ${ticks} ticks (after ${warm})`,
        round(growth),
        "MiB",
        undefined,
        `RSS after each fifth: ${readings.map((r) => r.toFixed(1)).join(", ")} MiB${ctx.quick ? " (quick: 1,000 ticks)" : ""}`,
      ),
      figure(
        11,
        "supervisor.heap.growth",
        `JS heap growth over ${ticks} ticks, after a full GC`,
        round(heapGrowth),
        "MiB",
        {
          op: "<",
          value: 1,
        },
      ),
    ];
  } finally {
    off();
    store.close();
    for (let i = 0; i < SERVERS; i++) await controller.unload(String(i)).catch(() => undefined);
    home.cleanup();
  }
}
