// Placement in the load path: a controller over the stand-in llama-server, real GGUF headers (the
// build's tiny-chat.gguf) and the fake nvidia-smi printing recordings with live PIDs swapped in.
import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { llamaBuildPaths } from "../../../scripts/llama-paths.ts";
import { type Controller, createController } from "../src/lifecycle/controller.ts";
import { DoesNotFitError } from "../src/placement/errors.ts";
import { LearnedFigures, learnedKey } from "../src/placement/learned.ts";
import { MARKER_ENV } from "../src/process/types.ts";
import { queryGpus } from "../src/server/gpu.ts";
import { standInServer } from "./fixtures/index.ts";
import { gatewayHome } from "./helpers/gateway-home.ts";
import { OwnProcesses } from "./integration/own-processes.ts";

const llama = llamaBuildPaths();
if (!llama.chatReady) console.log("placement load tests skipped: no tiny-chat.gguf: run `bun run llama:build`");

const FAKE_DIR = join(import.meta.dir, "fixtures", "nvidia-smi");
const own = new OwnProcesses();
const homes: string[] = [];
const controllers: Controller[] = [];
afterEach(async () => {
  for (const c of controllers.splice(0)) {
    for (const { slot } of await c.entries()) await c.unload(slot, { force: true }).catch(() => undefined);
  }
});
afterAll(() => {
  own.killAll();
  for (const h of homes) rmSync(h, { recursive: true, force: true });
});

/** A fake-nvidia-smi query; `pids` is read at each run, so a test can map a recorded PID to a server it just started. */
function fakeGpus(recording: string, pids: Record<number, number>, state?: string) {
  return () =>
    queryGpus({
      env: {
        PATH: `${FAKE_DIR}:${process.env.PATH ?? "/usr/bin:/bin"}`,
        FAKE_NVIDIA_SMI_DIR: join(FAKE_DIR, "recorded", recording),
        FAKE_NVIDIA_SMI_PIDS: Object.entries(pids)
          .map(([from, to]) => `${from}=${to}`)
          .join(" "),
        ...(state ? { FAKE_NVIDIA_SMI_STATE_DIR: state } : {}),
      },
    });
}

/** A live process whose command line reads `<argv0> 60`, with an optional environment. */
async function holder(argv0: string, env: Record<string, string> = {}): Promise<number> {
  const child = Bun.spawn(["bash", "-c", `exec -a '${argv0}' sleep 60`], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "ignore",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
  });
  own.add(child.pid);
  for (let i = 0; i < 400 && !readFileSync(`/proc/${child.pid}/cmdline`, "utf8").startsWith(argv0); i++) {
    await Bun.sleep(5);
  }
  return child.pid;
}

const BIG = ["-c", "8388608"]; // tiny-chat at 8M cells: ~12 GiB of KV cache and mask
const HUGE = ["-c", "16777216"]; // ~24 GiB: more than either GPU of two-gpus-uneven, alone or split
async function setup(
  gpuQuery: () => ReturnType<typeof queryGpus>,
  models: Array<{ id: string; args?: string[]; gpu?: string }>,
  extra: Record<string, unknown> = {},
) {
  const home = mkdtempSync(join(tmpdir(), "corral-placement-load-"));
  homes.push(home);
  const low = 22000 + (process.pid % 50) * 40;
  const configFile = join(home, "corral.json");
  const config = {
    llama_server: await standInServer(),
    ports: { range: [low, low + 39], gpu: {} },
    timeouts: { load_ms: 15000, stop_ms: 3000, health_ms: 1000 },
    gpu_release_wait_ms: 5000,
    models: models.map((m) => ({ path: llama.chatModel, args: [], gpu: "0", ...m })),
    ...extra,
  };
  writeFileSync(configFile, JSON.stringify(config));
  let spawned = 0;
  const controller = await createController({
    home,
    configFile,
    gpuQuery,
    hooks: {
      afterSpawn: (pid) => {
        spawned++;
        own.add(pid);
      },
    },
  });
  controllers.push(controller);
  return { controller, home, spawned: () => spawned };
}

describe.skipIf(!llama.chatReady)("placement before a load", () => {
  it("refuses a load that does not fit before anything is spawned, naming the foreign program in the way", async () => {
    const python = await holder("python train.py");
    const { controller, spawned } = await setup(fakeGpus("foreign-gpu0", { 4242: python }), [{ id: "big", args: BIG }]);
    const error = await controller.load("big").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DoesNotFitError);
    const fit = error as DoesNotFitError;
    expect(fit.detail).toMatch(
      new RegExp(
        `^big needs about \\d+\\.\\d GiB on GPU 0 \\(weights 0\\.0, KV 4\\.0 at ctx 8388608, compute 8\\.0\\); ` +
          `9\\.2 GiB free: 14\\.3 GiB held by pid ${python} \\(python train\\.py 60, not corral's\\)$`,
      ),
    );
    expect(fit.fit).toMatchObject([{ gpu: 0, free_mib: 9421, fits: false, state: "occupied" }]);
    expect(spawned()).toBe(0);
    expect(await controller.entries()).toEqual([]);
    expect((await controller.history()).some((e) => e.event === "registered")).toBe(false);
  });

  it("loads anyway with force, and says so in the result", async () => {
    const python = await holder("python train.py");
    const { controller } = await setup(fakeGpus("foreign-gpu0", { 4242: python }), [{ id: "big", args: BIG }]);
    const result = await controller.load("big", { force: true });
    expect(result.placement).toMatchObject({ checked: true, fits: false, forced: true, source: "estimate" });
    expect(result.placement?.message).toStartWith("loaded anyway (force): big needs about");
    expect(result.entry.status).toBe("running");
  });

  it("does no check without nvidia-smi, and the result says it did none", async () => {
    const { controller } = await setup(async () => undefined, [{ id: "tiny" }]);
    const result = await controller.load("tiny");
    expect(result.placement).toEqual({
      checked: false,
      slot: "0",
      message: "no GPU figures (nvidia-smi): no placement check",
    });
  });

  it("gpu auto picks the GPU with the most room that nobody else occupies", async () => {
    // three-gpus: GPU 0 held by a server of this home (5.6 GiB free), GPU 1 by another corral home's
    // (15 GiB free, but occupied by others), GPU 2 idle (12 GiB free): auto must take GPU 2.
    const pids: Record<number, number> = {};
    const { controller } = await setup(fakeGpus("three-gpus", pids), [{ id: "tiny", gpu: "auto" }]);
    pids[41001] = await holder("llama-server", { [MARKER_ENV.home]: controller.registry.homeId });
    pids[41002] = await holder("llama-server", { [MARKER_ENV.home]: "another-home" });
    const placed = await controller.load("tiny");
    expect(placed.slot).toBe("2");
    expect(placed.placement).toMatchObject({ checked: true, fits: true, slot: "2" });
  });

  it("gpu auto takes the GPU with more free memory of two, and refuses when no GPU or pair has enough", async () => {
    const pids: Record<number, number> = {};
    const { controller } = await setup(fakeGpus("two-gpus-uneven", pids), [
      { id: "tiny", gpu: "auto" },
      { id: "huge", gpu: "auto", args: HUGE },
    ]);
    const marker = { [MARKER_ENV.home]: controller.registry.homeId };
    pids[41001] = await holder("llama-server", marker);
    pids[41002] = await holder("llama-server", marker);
    expect((await controller.load("tiny")).slot).toBe("1");
    const refused = await controller.load("huge").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DoesNotFitError);
    expect((refused as DoesNotFitError).detail).toMatch(
      /^no GPU or GPU set fits huge: GPU 0 has 6\.0 GiB free of the \d+\.\d GiB it needs there; GPU 1 has 20\.0 GiB free/,
    );
  });

  it("waits, bounded, until nvidia-smi no longer shows memory of a server it just unloaded", async () => {
    const state = mkdtempSync(join(tmpdir(), "corral-smi-state-"));
    homes.push(state);
    const pids: Record<number, number> = {};
    const { controller } = await setup(fakeGpus("releasing", pids, state), [{ id: "tiny" }]);
    // Load and unload without GPU figures in the way, then let the recording show the old PID's memory.
    const first = await controller.load("tiny", { force: true });
    await controller.unload("0");
    pids[41003] = first.entry.pid;
    writeFileSync(join(state, "apps-runs"), "0");
    const second = await controller.load("tiny");
    expect(second.placement?.waited).toMatchObject({ pids: [first.entry.pid], released: true });
    // The recording shows the memory for 3 runs: the load queried until the 4th.
    expect(Number(readFileSync(join(state, "apps-runs"), "utf8"))).toBeGreaterThanOrEqual(4);
  });

  it("records each load's GPU memory and load time, and the next load uses them instead of the estimate", async () => {
    const pids: Record<number, number> = {};
    const { controller, home } = await setup(fakeGpus("two-gpus-uneven", pids), [{ id: "tiny", gpu: "1" }]);
    const marker = { [MARKER_ENV.home]: controller.registry.homeId };
    pids[41001] = await holder("llama-server", marker);
    // The recording's 3600 MiB on GPU 1 become the server's own once it is spawned.
    const spawned = controller.registry.subscribe((e) => {
      if (e.event === "registered" && e.pid) pids[41002] = e.pid;
    });
    const first = await controller.load("tiny");
    spawned();
    const key = learnedKey("tiny", llama.chatModel, [], "1");
    const learned = await new LearnedFigures({ file: join(home, "learned.json") }).get(key);
    expect(learned).toMatchObject({ peak_mib: { "1": 3600 }, ready_ms: first.readyMs });
    pids[41002] = await holder("llama-server", marker);
    await controller.unload("1");
    const second = await controller.load("tiny");
    expect(second.placement).toMatchObject({
      source: "measured",
      gpus: [{ gpu: 1, need_mib: 3960, fits: true }],
      expected_ready_ms: first.readyMs,
      timeout_ms: 15000,
    });
    expect(second.placement?.message).toStartWith("fits (as measured at its last load, plus a margin)");
    // The loading entry and its registered event carry the expected time, for /events and the page.
    expect(second.entry.expected_ready_ms).toBe(first.readyMs);
    const registered = (await controller.history()).find((e) => e.event === "registered" && e.pid === second.entry.pid);
    expect(registered?.reason).toBe(`load requested; ready in about ${(first.readyMs / 1000).toFixed(1)} s last time`);
  });

  it("raises the learned peak when a running server comes to hold more GPU memory than at ready", async () => {
    let serverPid = 0;
    let heldMib = 3600;
    // A plain fake snapshot: one idle 24 GiB GPU where the test decides what the server holds.
    const gpuQuery = async () => ({
      gpus: [{ index: 0, name: "fake", memory_total_mib: 24564, memory_used_mib: heldMib, uuid: "GPU-fake-0" }],
      processes: serverPid ? [{ pid: serverPid, used_memory_mib: heldMib, gpu_index: 0, gpu_uuid: "GPU-fake-0" }] : [],
      taken_at: new Date().toISOString(),
    });
    const { controller, home } = await setup(gpuQuery, [{ id: "tiny" }]);
    const spawned = controller.registry.subscribe((e) => {
      if (e.event === "registered" && e.pid) serverPid = e.pid;
    });
    const first = await controller.load("tiny");
    spawned();
    const learned = new LearnedFigures({ file: join(home, "learned.json") });
    const key = learnedKey("tiny", llama.chatModel, [], "0");
    expect((await learned.get(key))?.peak_mib).toEqual({ "0": 3600 });
    heldMib = 5200; // the context filled up
    await controller.status();
    expect(await learned.get(key)).toMatchObject({ peak_mib: { "0": 5200 }, ready_ms: first.readyMs });
    heldMib = 4000; // a peak is a peak: less later does not lower it
    await controller.status();
    expect((await learned.get(key))?.peak_mib).toEqual({ "0": 5200 });
    serverPid = 0; // the snapshot no longer shows it, so the unload after the test need not wait for it
  });

  it("refuses by a measured figure that no longer fits, saying it was measured", async () => {
    const pids: Record<number, number> = {};
    const { controller, home } = await setup(fakeGpus("two-gpus-uneven", pids), [{ id: "tiny", gpu: "1" }]);
    const key = learnedKey("tiny", llama.chatModel, [], "1");
    await new LearnedFigures({ file: join(home, "learned.json") }).record(key, {
      peak_mib: { "1": 19500 },
      ready_ms: 50,
    });
    const error = (await controller.load("tiny").catch((e: unknown) => e)) as DoesNotFitError;
    expect(error).toBeInstanceOf(DoesNotFitError);
    expect(error.detail).toStartWith(
      "tiny needs about 20.9 GiB on GPU 1 (measured at its last load, plus a margin); 20.0 GiB free",
    );
  });

  it("plans the gateway's room: the least recently used idle model of ours on that GPU, and no more", async () => {
    const pids: Record<number, number> = {};
    const { controller } = await setup(fakeGpus("three-gpus", pids), [
      { id: "a" },
      { id: "b", gpu: "1" },
      { id: "big", args: BIG },
    ]);
    // GPU 0 holds our "a" (17850 MiB, 5.7 GiB free); big needs ~12 GiB there.
    const a = await controller.load("a", { force: true });
    const b = await controller.load("b", { force: true });
    pids[41001] = a.entry.pid;
    pids[41002] = b.entry.pid;
    const candidates = [
      { slot: "1", pid: b.entry.pid, model_id: "b", last_used: 1, pinned: false, busy: false },
      { slot: "0", pid: a.entry.pid, model_id: "a", last_used: 2, pinned: false, busy: false },
    ];
    const plan = await controller.planRoom("big", "0", candidates);
    const pinned = await controller.planRoom("big", "0", [{ ...candidates[1]!, pinned: true }]);
    // The recording no longer shows them, so their unloads after the test need not wait for it.
    delete pids[41001];
    delete pids[41002];
    // b is the least recently used and holds 470 MiB of GPU 0, but only unloading a makes room.
    expect(plan?.unload.map((c) => c.model_id)).toEqual(["a"]);
    expect(plan?.fits).toBe(true);
    expect(pinned?.fits).toBe(false);
  });
});

describe.skipIf(!llama.chatReady)("placement in the gateway's on-demand loads", () => {
  it("places a gpu auto model on the GPU placement picks, with another model already loaded", async () => {
    const pids: Record<number, number> = {};
    const h = await gatewayHome(
      [
        { id: "a", gpu: "0", path: llama.chatModel },
        { id: "tiny", gpu: "auto", path: llama.chatModel },
      ],
      {},
      {},
      { gpuQuery: fakeGpus("three-gpus", pids) },
    );
    try {
      // three-gpus: GPU 0 held by our "a", GPU 1 by another corral home's server, GPU 2 idle.
      const a = await h.gateway.acquire("a");
      a.done();
      pids[41001] = a.entry.pid;
      pids[41002] = await holder("llama-server", { [MARKER_ENV.home]: "another-home" });
      const tiny = await h.gateway.acquire("tiny");
      tiny.done();
      expect(tiny.slot).toBe("2");
      // "a" was not in the way (another slot, and GPU 2 had room): it still runs.
      expect((await h.controller.entries()).map((e) => e.slot).sort()).toEqual(["0", "2"]);
    } finally {
      delete pids[41001];
      await h.cleanup();
    }
  });
});
