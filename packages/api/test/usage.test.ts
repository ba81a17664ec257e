import { afterAll, describe, expect, it } from "bun:test";
import {
  createMetricsRecorder,
  createSupervisor,
  type GpuSnapshot,
  openMetricsStore,
  type Supervisor,
} from "@corral/core";
import { call, type TestHome, testHome } from "./helpers.ts";

const homes: TestHome[] = [];
const supervisors: Supervisor[] = [];
afterAll(async () => {
  for (const s of supervisors) await s.stop();
  for (const t of homes) t.cleanup();
});

describe("usage routes", () => {
  it("serve a real server's samples as columns, with its load and crash marked, and each GPU's processes", async () => {
    let pid = 0;
    const gpuQuery = async (): Promise<GpuSnapshot> => ({
      taken_at: new Date().toISOString(),
      gpus: [{ index: 0, name: "Fake", memory_total_mib: 8000, memory_used_mib: 700 }],
      processes: pid ? [{ pid, used_memory_mib: 700, gpu_index: 0 }] : [],
    });
    const t = await testHome([{ id: "tiny" }], { gpuQuery });
    homes.push(t);
    const metrics = openMetricsStore({ home: t.home });
    const supervisor = createSupervisor(t.controller, {
      followHistory: false,
      metrics: createMetricsRecorder({ store: metrics }),
    });
    supervisors.push(supervisor);
    const { entry } = await t.controller.load("tiny", { gpu: 0 });
    pid = entry.pid;
    for (let i = 0; i < 3; i++) await supervisor.tick();
    process.kill(pid, "SIGKILL");
    await supervisor.tick();
    const app = t.app({ metrics });

    const { status, body } = await call(app, "GET", "/api/v1/processes/0/usage?since=hour&step=1000");
    expect(status).toBe(200);
    expect(body.step_ms).toBe(1000);
    expect(body.t.length).toBeGreaterThanOrEqual(1);
    expect(body.rss_bytes.every((v: number) => v > 1024 * 1024)).toBe(true);
    expect(body.gpu_memory_mib.at(-1)).toBe(700);
    expect(body.marks.map((m: { kind: string }) => m.kind)).toEqual(["load", "crash"]);

    const gpus = await call(app, "GET", "/api/v1/gpus/usage?since=10m");
    expect(gpus.status).toBe(200);
    expect(gpus.body.gpus[0].series[0]).toMatchObject({ label: "slot 0", slot: "0" });
    expect(gpus.body.gpus[0].series[0].mib).toContain(700);
    metrics.close();
  });

  it("refuses a since it cannot read, naming the field, and answers empty columns without a store", async () => {
    const t = await testHome([{ id: "tiny" }]);
    homes.push(t);
    const bad = await call(t.app(), "GET", "/api/v1/processes/0/usage?since=someday");
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("since");
    const empty = await call(t.app(), "GET", "/api/v1/processes/0/usage");
    expect(empty.status).toBe(200);
    expect(empty.body).toMatchObject({ slot: "0", t: [], cpu_percent: [], marks: [] });
  });
});
