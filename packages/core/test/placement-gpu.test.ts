// GPU classification and the fit decision from the fake nvidia-smi, with real processes standing in
// for the holders (a foreign program, a server of this home, one of another corral home).
import { afterAll, describe, expect, it } from "bun:test";
import { join } from "node:path";
import type { MemoryEstimate } from "../src/placement/estimate.ts";
import { decideFit } from "../src/placement/fit.ts";
import { classifyGpus } from "../src/placement/gpu-state.ts";
import { procfsProbe } from "../src/process/procfs.ts";
import { MARKER_ENV } from "../src/process/types.ts";
import { queryGpus } from "../src/server/gpu.ts";
import type { ProcessEntry } from "../src/store/schema.ts";
import { OwnProcesses } from "./integration/own-processes.ts";

const FAKE_DIR = join(import.meta.dir, "fixtures", "nvidia-smi");
const fakeEnv = (name: string, pids: Record<number, number>) => ({
  PATH: `${FAKE_DIR}:${process.env.PATH ?? "/usr/bin:/bin"}`,
  FAKE_NVIDIA_SMI_DIR: join(FAKE_DIR, "recorded", name),
  FAKE_NVIDIA_SMI_PIDS: Object.entries(pids)
    .map(([from, to]) => `${from}=${to}`)
    .join(" "),
});
const own = new OwnProcesses();
afterAll(() => own.killAll());

/** A live process whose command line reads `python train.py` (sleep under another argv[0]). */
function spawnHolder(argv0: string, env: Record<string, string> = {}): number {
  const child = Bun.spawn(["bash", "-c", `exec -a '${argv0}' sleep 60`], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "ignore",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
  });
  own.add(child.pid);
  return child.pid;
}

async function waitForExec(pid: number, argv0: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const info = await procfsProbe().get(pid);
    if (info?.cmdline[0] === argv0) return;
    await Bun.sleep(5);
  }
  throw new Error(`pid ${pid} never exec'd into ${argv0}`);
}

const GIB = 2 ** 30;
/** The example: weights 18.1, KV 2.6 at ctx 8192, compute 0.7 → 21.4 GiB on GPU 0. */
const estimate: MemoryEstimate = {
  ctx: 8192,
  parallel: 1,
  flash_attn: true,
  gpu_layers: 64,
  layers: 64,
  devices: [
    { device: "cpu", layers: 0, weights_bytes: 0.5 * GIB, kv_bytes: 0, compute_bytes: 0, total_bytes: 0.5 * GIB },
    {
      device: 0,
      layers: 64,
      weights_bytes: 18.1 * GIB,
      kv_bytes: 2.6 * GIB,
      compute_bytes: 0.7 * GIB,
      total_bytes: 21.4 * GIB,
    },
  ],
};

describe("GPUs judged from nvidia-smi", () => {
  it("calls GPU 0 occupied when a foreign program holds most of it, and names the program in the refusal", async () => {
    const pid = spawnHolder("python train.py");
    await waitForExec(pid, "python train.py");
    const snapshot = await queryGpus({ env: fakeEnv("foreign-gpu0", { 4242: pid }) });
    const states = await classifyGpus(snapshot!, { entries: [], homeId: "home-a", probe: procfsProbe() });
    expect(states.map((s) => [s.index, s.state, s.others_mib, s.free_mib])).toEqual([
      [0, "occupied", 14643, 9421],
      [1, "idle", 0, 24563],
    ]);
    expect(states[0]?.held).toEqual([
      { pid, used_mib: 14643, command: "python train.py 60", holder: { kind: "other" } },
    ]);
    const fit = decideFit("qwen-32b", estimate, states);
    expect(fit.fits).toBe(false);
    expect(fit.message).toBe(
      `qwen-32b needs about 21.4 GiB on GPU 0 (weights 18.1, KV 2.6 at ctx 8192, compute 0.7); ` +
        `9.2 GiB free: 14.3 GiB held by pid ${pid} (python train.py 60, not corral's)`,
    );
    expect(fit.gpus).toEqual([{ gpu: 0, need_mib: 21914, free_mib: 9421, fits: false, state: "occupied" }]);
  });

  it("tells this home's servers (by slot) from another corral home's, and counts only others toward occupied", async () => {
    const ours = spawnHolder("llama-server");
    const theirs = spawnHolder("llama-server", { [MARKER_ENV.home]: "home-b" });
    await Promise.all([waitForExec(ours, "llama-server"), waitForExec(theirs, "llama-server")]);
    const entry = { pid: ours, model_id: "qwen-7b", port: 8081 } as ProcessEntry;
    const snapshot = await queryGpus({ env: fakeEnv("three-gpus", { 41001: ours, 41002: theirs }) });
    const states = await classifyGpus(snapshot!, {
      entries: [{ slot: "0", entry }],
      homeId: "home-a",
      probe: procfsProbe(),
    });
    // GPU 0: ours 17850 MiB, the other home's 470 (under 1024); GPU 1: the other home's 8702.
    expect(states.map((s) => [s.index, s.state, s.others_mib])).toEqual([
      [0, "ours", 470],
      [1, "occupied", 8702],
      [2, "idle", 0],
    ]);
    expect(states[0]?.held.map((h) => h.holder)).toEqual([
      { kind: "ours", slot: "0", model_id: "qwen-7b" },
      { kind: "other-home", home_id: "home-b" },
    ]);
    const strict = await classifyGpus(snapshot!, {
      entries: [{ slot: "0", entry }],
      homeId: "home-a",
      probe: procfsProbe(),
      occupiedMb: 400,
    });
    expect(strict[0]?.state).toBe("occupied");
  });

  it("fits on the GPU with room, and uses a measured figure instead of the estimate where it has one", async () => {
    const snapshot = await queryGpus({ env: fakeEnv("foreign-gpu0", {}) });
    const states = await classifyGpus(snapshot!, { entries: [], homeId: "home-a", probe: procfsProbe() });
    const onGpu1: MemoryEstimate = {
      ...estimate,
      devices: estimate.devices.map((d) => (d.device === 0 ? { ...d, device: 1 } : d)),
    };
    expect(decideFit("qwen-32b", onGpu1, states)).toMatchObject({ fits: true, message: "" });
    const measured = decideFit("qwen-32b", estimate, states, new Map([[0, 9000]]));
    expect(measured).toMatchObject({ fits: true, gpus: [{ gpu: 0, need_mib: 9000, free_mib: 9421, fits: true }] });
  });
});
