/**
 * Scenario 5, disk full: the home lives on a 64 KiB tmpfs that a filler file fills up, then
 * frees a little at a time. Every write either takes effect or fails with StoreWriteError
 * leaving the previous file byte for byte; a load either works or refuses with a typed error
 * and leaves no server behind; and once there is room again, writes work (nothing left behind
 * blocks them). Skipped, with the reason, where this process may not mount a tmpfs.
 */
import { spawnSync } from "node:child_process";
import { closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { type Controller, CorralError, createController, type ProcessEntry, StoreWriteError } from "@corral/core";
import { createApp } from "../../packages/api/src/index.ts";
import { bearer, TORTURE_TOKEN } from "./auth.ts";
import { makeHome } from "./home.ts";
import { Rng } from "./random.ts";
import { Scope, until } from "./scope.ts";
import { messageOf, type Scenario, type ScenarioOptions, type ScenarioResult, Tally } from "./types.ts";

/**
 * Scenario 5: on a full tmpfs, writes fail with StoreWriteError and leave the previous file intact.
 * @example
 * const result = await diskFull.run({ form: "short", seed: 1, log: console.error })
 */
export const diskFull: Scenario = {
  id: 5,
  name: "disk full",
  run: runDiskFull,
};

const SIZE = "64k";

function entry(slot: string, id: string, pad: number): ProcessEntry {
  return {
    pid: 50_000 + Number(slot),
    model_id: "tiny",
    model_name: "tiny",
    model_path: "/models/tiny.gguf",
    gpu_id: slot,
    port: 31_000 + Number(slot),
    started_at: new Date().toISOString(),
    command_line: ["llama-server", "-m", "/models/tiny.gguf", "x".repeat(pad)],
    status: "running",
    proc_start_ms: 1_700_000_000_000,
    executable: "/opt/llama/llama-server",
    instance_id: id,
  };
}

/** Writes to `fd` until the disk says ENOSPC, in big steps and then single bytes; returns the size. */
function fill(fd: number, from: number): number {
  let size = from;
  for (const step of [4096, 256, 1]) {
    const chunk = Buffer.alloc(step, 0x2e);
    for (;;) {
      try {
        size += writeSync(fd, chunk, 0, step, size);
      } catch {
        break;
      }
    }
  }
  return size;
}

async function runDiskFull(options: ScenarioOptions): Promise<ScenarioResult> {
  const tally = new Tally(diskFull.id, diskFull.name);
  if (process.getuid?.() !== 0) {
    tally.skip("not root: cannot mount a tmpfs here");
    return tally.result();
  }
  const scope = new Scope();
  const mount = join(scope.tempDir("disk-full"), "mnt");
  mkdirSync(mount);
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${SIZE},mode=0700`, "tmpfs", mount], {
    encoding: "utf8",
  });
  if (mounted.status !== 0) {
    await scope.cleanup();
    tally.skip(`mounting a tmpfs is not allowed here: ${(mounted.stderr || mounted.error?.message || "").trim()}`);
    return tally.result();
  }
  scope.mounted(mount);
  let fd: number | undefined;
  try {
    const h = await makeHome(scope, join(mount, "home"), [{ id: "tiny" }]);
    const controller = await createController({
      home: h.home,
      configFile: h.configFile,
      probe: scope.probe(),
      gpuQuery: async () => undefined,
    });
    const model = new Map<string, string>();
    for (const slot of ["0", "1", "2"]) {
      await controller.registry.register(slot, entry(slot, `seed-${slot}`, 200));
      model.set(slot, `seed-${slot}`);
    }
    fd = openSync(join(mount, "filler"), "w");
    const full = fill(fd, 0);
    tally.note(`the filler took ${full} bytes of ${SIZE}`);
    await writesUnderPressure(controller, h.registry, fd, full, model, new Rng(options.seed), options, tally);
    ftruncateSync(fd, 0);
    fill(fd, 0);
    await loadOnFullDisk(scope, controller, h.registry, tally);
    ftruncateSync(fd, 0);
    tally.trial();
    try {
      await controller.registry.register("99", entry("99", "after", 0));
      model.set("99", "after");
    } catch (error) {
      tally.fail(`with room again, a write failed: ${messageOf(error)}`);
    }
    const { entries } = await controller.registry.snapshot();
    for (const [slot, id] of model) {
      if (entries[slot]?.instance_id !== id)
        tally.lose(1, `slot ${slot} should hold ${id}, holds ${entries[slot]?.instance_id ?? "nothing"}`);
    }
  } catch (error) {
    tally.fail(`the scenario itself failed: ${messageOf(error)}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
    await scope.cleanup();
  }
  return tally.result();
}

/** Frees the disk a little at a time; at each step one random write must work or fail cleanly. */
async function writesUnderPressure(
  controller: Controller,
  file: string,
  fd: number,
  full: number,
  model: Map<string, string>,
  rng: Rng,
  options: ScenarioOptions,
  tally: Tally,
): Promise<void> {
  const { registry } = controller;
  const steps = options.form === "long" ? 160 : 40;
  let refused = 0;
  for (let step = 0; step < steps; step++) {
    tally.trial();
    // From full to 24 KiB free and back, so writes land on every side of a page boundary.
    const free = Math.round(((step % 40) / 40) * 24_576);
    ftruncateSync(fd, Math.max(0, full - free));
    const before = readFileSync(file);
    const slot = String(rng.int(3, 30));
    const id = `w${step}`;
    const held = model.has(slot);
    const op = held && rng.chance(0.5) ? "unregister" : held ? "setStatus" : "register";
    try {
      if (op === "register") await registry.register(slot, entry(slot, id, rng.int(0, 6000)));
      else if (op === "unregister") await registry.unregister(slot);
      else await registry.setStatus(slot, rng.pick(["running", "unhealthy", "loading"] as const), "torture");
      if (op === "register") model.set(slot, id);
      if (op === "unregister") model.delete(slot);
      const now = (await registry.snapshot()).entries[slot];
      tally.check(
        op === "unregister" ? now === undefined : now?.instance_id === model.get(slot),
        `${op} of slot ${slot} resolved but did not take effect`,
      );
    } catch (error) {
      if (error instanceof StoreWriteError) {
        refused++;
        tally.check(readFileSync(file).equals(before), `a failed ${op} changed processes.json`);
        tally.check(
          error.file === file && /intact/.test(error.message),
          `StoreWriteError does not say which file, or that it is intact: ${error.message}`,
        );
      } else {
        tally.fail(`${op} with ${free} bytes free failed with ${messageOf(error)}, not StoreWriteError`);
      }
    }
    const temps = readdirSync(registry.paths.home).filter((n) => n.endsWith(".tmp"));
    tally.check(temps.length === 0, `temp files left behind after a failed write: ${temps.join(", ")}`);
  }
  tally.note(`${refused} of ${steps} writes refused with StoreWriteError, the rest took effect`);
}

/** A load on a full disk: a typed refusal (503 through the API, never 500), and no server left running. */
async function loadOnFullDisk(scope: Scope, controller: Controller, file: string, tally: Tally): Promise<void> {
  tally.trial();
  const before = readFileSync(file);
  const outcome = await controller.load("tiny", { gpu: 7, timeoutMs: 15_000 }).then(
    (r) => `it loaded (pid ${r.entry.pid})`,
    (e: unknown) => (e instanceof CorralError ? undefined : messageOf(e)),
  );
  tally.check(outcome === undefined, () => `a load on a full disk did not refuse with a typed error: ${outcome}`);
  const app = createApp({ controller, token: TORTURE_TOKEN });
  const res = await app.handle(
    new Request("http://localhost/api/v1/models/load", {
      method: "POST",
      headers: bearer({ "content-type": "application/json" }),
      body: JSON.stringify({ model_id: "tiny", gpu_id: 6 }),
    }),
  );
  const body = await res.text();
  tally.check(
    res.status !== 500 && res.status >= 400,
    `POST /api/v1/models/load on a full disk answered ${res.status}: ${body.slice(0, 200)}`,
  );
  tally.check(readFileSync(file).equals(before), "a refused load changed processes.json");
  const leftover = await until(async () => (await scope.markedServers()).length === 0, 5_000);
  tally.check(leftover === true, "a refused load left a llama-server running");
}
