import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { createController } from "../src/lifecycle/controller.ts";
import { createMetricsRecorder } from "../src/metrics/recorder.ts";
import { openMetricsStore } from "../src/metrics/store.ts";
import type { GpuSnapshot } from "../src/server/gpu.ts";
import { createSupervisor, type Supervisor } from "../src/supervision/supervisor.ts";
import { killAll, makeHome, type TestHome } from "./helpers/home.ts";

const homes: TestHome[] = [];
const started = new Set<number>();
const supervisors: Supervisor[] = [];

afterEach(async () => {
  for (const s of supervisors.splice(0)) await s.stop();
  killAll(started);
});
afterAll(() => {
  killAll(started);
  for (const t of homes) t.cleanup();
});

describe("the supervisor's samples in metrics.db", () => {
  it("writes a row per tick for a real server with its CPU, RSS, GPU memory and the gateway's figures", async () => {
    const t = await makeHome([{ id: "tiny" }]);
    homes.push(t);
    let pid = 0;
    const gpu = async (): Promise<GpuSnapshot> => ({
      taken_at: new Date().toISOString(),
      gpus: [{ index: 0, name: "Fake", memory_total_mib: 8000, memory_used_mib: 1234 }],
      processes: pid ? [{ pid, used_memory_mib: 1234, gpu_index: 0 }] : [],
    });
    // Each reading of the clock a millisecond on: four quick ticks get four distinct times.
    let clock = Date.now();
    const now = () => (clock += 1);
    const controller = await createController({ home: t.home, configFile: t.configFile, gpuQuery: gpu, now });
    const { entry } = await controller.load("tiny", { gpu: 0 });
    pid = entry.pid;
    started.add(pid);
    const store = openMetricsStore({ home: t.home, now });
    let served = 0;
    const metrics = createMetricsRecorder({
      store,
      requests: async () => {
        served += 5;
        return [{ id: "tiny", served, tokens_per_second: 33 }];
      },
    });
    const supervisor = createSupervisor(controller, { intervalMs: 50, metrics, followHistory: false });
    supervisors.push(supervisor);
    for (let i = 0; i < 4; i++) await supervisor.tick();
    const rows = store.usage("0", { since: 0, stepMs: 1 });
    expect(rows.length).toBe(4);
    const last = rows.at(-1)!;
    expect(last.rss_bytes!).toBeGreaterThan(1024 * 1024);
    expect(last.cpu_percent).not.toBeNull();
    expect(last.gpu_memory_mib).toBe(1234);
    expect(last.tokens_per_second).toBe(33);
    expect(last.requests_per_s!).toBeGreaterThan(0);
    expect(store.gpuUsage({ since: 0, stepMs: 1 }).at(-1)).toMatchObject({ gpu: 0, pid, slot: "0", mib: 1234 });
    store.close();
  });

  it("keeps supervising when the store cannot be written, and says so in lastError", async () => {
    const t = await makeHome([{ id: "tiny" }]);
    homes.push(t);
    const controller = await createController({
      home: t.home,
      configFile: t.configFile,
      gpuQuery: async () => undefined,
    });
    const { entry } = await controller.load("tiny", { gpu: 0 });
    started.add(entry.pid);
    const store = openMetricsStore({ home: t.home });
    store.close();
    const supervisor = createSupervisor(controller, {
      metrics: createMetricsRecorder({ store }),
      followHistory: false,
    });
    supervisors.push(supervisor);
    const report = await supervisor.tick();
    expect(report.statuses.map((s) => s.state)).toEqual(["running"]);
    expect(supervisor.lastError?.where).toBe("metrics");
  });
});
