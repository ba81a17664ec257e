import { afterEach, describe, expect, it } from "bun:test";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGpuQuery, queryGpus, waitGpuReleased } from "../src/server/gpu.ts";

const FAKE_DIR = join(import.meta.dir, "fixtures", "nvidia-smi");
const recording = (name: string) => join(FAKE_DIR, "recorded", name);

/** An environment with the fake nvidia-smi first on PATH, printing the named recording. */
const fakeEnv = (name: string, extra: Record<string, string> = {}) => ({
  PATH: `${FAKE_DIR}:${process.env.PATH ?? "/usr/bin:/bin"}`,
  FAKE_NVIDIA_SMI_DIR: recording(name),
  ...extra,
});

const temps: string[] = [];
afterEach(async () => {
  for (const dir of temps.splice(0)) await rm(dir, { recursive: true, force: true });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("queryGpus with the fake nvidia-smi", () => {
  it("reports three GPUs, the memory each process holds per GPU, and no process on the idle GPU", async () => {
    const snapshot = await queryGpus({ env: fakeEnv("three-gpus") });
    expect(snapshot).toBeDefined();
    expect(snapshot!.gpus.map((g) => [g.index, g.name, g.memory_total_mib])).toEqual([
      [0, "NVIDIA GeForce RTX 4090", 24564],
      [1, "NVIDIA GeForce RTX 4090", 24564],
      [2, "NVIDIA GeForce RTX 3060", 12288],
    ]);
    expect(snapshot!.processes.map((p) => [p.pid, p.gpu_index, p.used_memory_mib])).toEqual([
      [41001, 0, 17850],
      [41002, 0, 470],
      [41002, 1, 8702],
    ]);
    expect(snapshot!.processes.filter((p) => p.gpu_index === 2)).toEqual([]);
    expect(Number.isNaN(Date.parse(snapshot!.taken_at))).toBe(false);
  });

  it("parses what a real H100 printed, idle and with a torch process holding memory", async () => {
    const uuid = "GPU-723f0526-28d7-1ce6-21b0-37ed60062a4f";
    const idle = await queryGpus({ env: fakeEnv("h100-idle") });
    expect(idle?.gpus).toEqual([
      { index: 0, name: "NVIDIA H100 80GB HBM3", memory_total_mib: 81559, memory_used_mib: 0, uuid },
    ]);
    expect(idle?.processes).toEqual([]);
    const busy = await queryGpus({ env: fakeEnv("h100-busy") });
    expect(busy?.gpus[0]?.memory_used_mib).toBe(783);
    expect(busy?.processes).toEqual([{ pid: 476, used_memory_mib: 774, gpu_uuid: uuid, gpu_index: 0 }]);
  });

  it("handles [N/A] figures from a unified-memory board", async () => {
    const snapshot = await queryGpus({ env: fakeEnv("not-supported") });
    expect(snapshot?.gpus[0]?.memory_total_mib).toBeUndefined();
    expect(snapshot?.processes).toEqual([
      { pid: 51234, used_memory_mib: 0, gpu_uuid: "GPU-0b6f3a1e-2c4d-4e8f-a1b3-c5d7e9f1a3b5", gpu_index: 0 },
    ]);
  });

  it("answers undefined when nvidia-smi is not on PATH", async () => {
    const empty = await mkdtemp(join(tmpdir(), "corral-no-smi-"));
    temps.push(empty);
    expect(await queryGpus({ env: { PATH: empty } })).toBeUndefined();
  });

  it("answers undefined when nvidia-smi cannot talk to the driver or finds no device", async () => {
    expect(await queryGpus({ env: fakeEnv("driver-failure") })).toBeUndefined();
    expect(await queryGpus({ env: fakeEnv("no-devices") })).toBeUndefined();
  });

  it("kills an nvidia-smi that hangs past the timeout and answers undefined", async () => {
    const pidDir = await mkdtemp(join(tmpdir(), "corral-smi-pids-"));
    temps.push(pidDir);
    const snapshot = await queryGpus({ env: fakeEnv("hang", { FAKE_NVIDIA_SMI_PID_DIR: pidDir }), timeoutMs: 1000 });
    expect(snapshot).toBeUndefined();
    const pids = (await readdir(pidDir)).map(Number);
    expect(pids.length).toBe(2);
    for (const pid of pids) {
      for (let i = 0; i < 100 && isAlive(pid); i++) await Bun.sleep(20);
      expect(isAlive(pid)).toBe(false);
    }
  }, 15_000);
});

describe("createGpuQuery", () => {
  it("lets callers in the same moment share one snapshot and queries again after the cache time", async () => {
    const query = createGpuQuery({ env: fakeEnv("three-gpus"), cacheMs: 50 });
    const [a, b] = await Promise.all([query(), query()]);
    expect(a).toBeDefined();
    expect(b).toBe(a);
    expect(await query()).toBe(a);
    await Bun.sleep(100);
    const c = await query();
    expect(c).toBeDefined();
    expect(c).not.toBe(a);
  });
});

describe("waitGpuReleased with the fake nvidia-smi", () => {
  it("sees the PID disappear once nvidia-smi's output changes", async () => {
    let current = "three-gpus";
    setTimeout(() => (current = "released"), 300);
    const result = await waitGpuReleased(41001, {
      intervalMs: 50,
      timeoutMs: 10_000,
      query: () => queryGpus({ env: fakeEnv(current) }),
    });
    expect(result.released).toBe(true);
    expect(result.ms).toBeGreaterThanOrEqual(250);
  }, 15_000);

  it("times out with released false while the PID keeps its memory", async () => {
    const result = await waitGpuReleased(41002, {
      intervalMs: 50,
      timeoutMs: 400,
      query: () => queryGpus({ env: fakeEnv("released") }),
    });
    expect(result.released).toBe(false);
  }, 15_000);

  it("answers undefined without waiting when there is no nvidia-smi", async () => {
    const empty = await mkdtemp(join(tmpdir(), "corral-no-smi-"));
    temps.push(empty);
    const result = await waitGpuReleased(41001, {
      timeoutMs: 10_000,
      query: () => queryGpus({ env: { PATH: empty } }),
    });
    expect(result.released).toBeUndefined();
  });
});
