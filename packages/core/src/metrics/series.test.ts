import { describe, expect, it } from "bun:test";
import type { ProcessStatus } from "../lifecycle/types.ts";
import { createMetricsRecorder, tickSamples } from "./recorder.ts";
import { chooseStep, gpuUsageSeries, usageMarks, usageRange } from "./series.ts";
import type { GpuSample, MetricSample } from "./store.ts";

const status = (slot: string, pid: number, state = "running"): ProcessStatus =>
  ({
    slot,
    state,
    entry: { pid, model_id: `m${slot}`, restarts: 2 },
    usage: { cpu_percent: 12.5, rss_bytes: 4096, gpu_memory_mib: 900 },
  }) as unknown as ProcessStatus;

describe("tickSamples and the recorder", () => {
  it("writes a row per live process, with the gateway's request rate from the change of its served count", async () => {
    const ticks: { at: number; samples: readonly MetricSample[]; gpus: readonly GpuSample[] }[] = [];
    let served = 10;
    const recorder = createMetricsRecorder({
      store: { insertTick: (at, samples, gpus = []) => void ticks.push({ at, samples, gpus }) },
      requests: async () => [{ id: "m0", served, tokens_per_second: 40 }],
    });
    const gpu = { taken_at: "", gpus: [], processes: [{ pid: 10, used_memory_mib: 900, gpu_index: 0 }] };
    await recorder.record(1000, [status("0", 10), status("1", 11, "exited")], gpu);
    served = 20;
    await recorder.record(6000, [status("0", 10)], gpu);
    expect(ticks[0]!.samples).toHaveLength(1);
    expect(ticks[0]!.samples[0]!.requests_per_s).toBeUndefined();
    expect(ticks[1]!.samples[0]).toMatchObject({
      slot: "0",
      cpu_percent: 12.5,
      requests_per_s: 2,
      tokens_per_second: 40,
    });
    expect(ticks[1]!.gpus).toEqual([{ gpu: 0, pid: 10, slot: "0", mib: 900 }]);
  });

  it("leaves the request columns empty without a gateway", () => {
    const { samples } = tickSamples({
      at: 0,
      statuses: [status("0", 10)],
      gpu: undefined,
      requests: new Map(),
      previous: undefined,
    });
    expect(samples[0]).toMatchObject({ restarts: 2, requests_per_s: undefined, tokens_per_second: undefined });
  });
});

describe("series", () => {
  it("marks loads, restarts, crashes and unloads of the slot in the range", () => {
    const at = (s: number) => new Date(s * 1000).toISOString();
    const marks = usageMarks(
      [
        { time: at(1), event: "registered", slot: "0" },
        { time: at(2), event: "status", slot: "0", to: "exited", pid: 7 },
        { time: at(2), event: "crashed", slot: "0", pid: 7 },
        { time: at(2), event: "crash-report", slot: "0", pid: 7, reason: "exit code 1" },
        { time: at(3), event: "restarted", slot: "0" },
        { time: at(4), event: "registered", slot: "1" },
        { time: at(5), event: "status", slot: "0", to: "unhealthy" },
        { time: at(99), event: "unregistered", slot: "0" },
      ],
      "0",
      0,
      10_000,
    );
    expect(marks.map((m) => m.kind)).toEqual(["load", "crash", "restart"]);
    const reported = usageMarks(
      [{ time: at(3), event: "crash-report", slot: "0", pid: 8, reason: "signal 9" }],
      "0",
      0,
      9e9,
    );
    expect(reported).toEqual([{ t: 3000, kind: "crash", event: "crash-report", reason: "signal 9" }]);
  });

  it("puts each GPU's processes on one time axis", () => {
    const body = gpuUsageSeries({
      since: 0,
      until: 2,
      stepMs: 1,
      rows: [
        { gpu: 0, t: 0, pid: 1, slot: "0", mib: 10 },
        { gpu: 0, t: 1, pid: 1, slot: "0", mib: 20 },
        { gpu: 0, t: 1, pid: 9, slot: null, mib: 5 },
      ],
    });
    expect(body.gpus[0]!.t).toEqual([0, 1]);
    expect(body.gpus[0]!.series).toEqual([
      { label: "slot 0", slot: "0", mib: [10, 20] },
      { label: "pid 9", pid: 9, mib: [null, 5] },
    ]);
  });

  it("chooses whole seconds under a minute and whole minutes above", () => {
    expect(chooseStep(0, 3_600_000)).toBe(10_000);
    expect(chooseStep(0, 7 * 86_400_000)).toBe(1_800_000);
    expect(chooseStep(0, 86_400_000)).toBe(240_000);
    expect(chooseStep(0, 60_000)).toBe(1000);
  });

  it("reads since as a range name, a duration, epoch ms or an ISO time, and refuses nonsense naming the field", () => {
    const now = 10 * 86_400_000;
    expect(usageRange({ since: "week" }, now)).toEqual({ since: now - 7 * 86_400_000, until: now, stepMs: 1_800_000 });
    expect(usageRange({ since: "90m", step: "30s" }, now)).toEqual({
      since: now - 5_400_000,
      until: now,
      stepMs: 30_000,
    });
    expect(usageRange({ since: String(now - 1000), step: "1000" }, now).since).toBe(now - 1000);
    expect(usageRange({ since: new Date(now - 2000).toISOString() }, now).since).toBe(now - 2000);
    expect(() => usageRange({ since: "yesterday-ish" }, now)).toThrow(/since/);
    expect(() => usageRange({ since: "week", step: "1ms" }, now)).toThrow(/step/);
    expect(() => usageRange({ since: "week", step: "1s" }, now)).toThrow(/10000 buckets/);
  });
});
