import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { join } from "node:path";
import { type Controller, createController } from "../src/lifecycle/controller.ts";
import { defaultProbe } from "../src/process/probe.ts";
import type { ProcessProbe } from "../src/process/types.ts";
import { alive, killAll, makeHome, type TestHome, type TestModel } from "./helpers/home.ts";

const homes: TestHome[] = [];
const started = new Set<number>();
const helper = join(import.meta.dir, "helpers", "controller-proc.ts");

async function setup(models: TestModel[]): Promise<{ t: TestHome; controller: Controller }> {
  const t = await makeHome(models);
  homes.push(t);
  const controller = await createController({
    home: t.home,
    configFile: t.configFile,
    gpuQuery: async () => undefined,
  });
  return { t, controller };
}

/** Runs a controller in a child process; resolves with it once it has printed `line`. */
async function runController(t: TestHome, args: string[], until: (out: string) => boolean) {
  const child = Bun.spawn(["bun", helper, t.home, t.configFile, ...args], { stdout: "pipe", stderr: "inherit" });
  started.add(child.pid);
  let out = "";
  const reader = child.stdout.getReader();
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      out += new TextDecoder().decode(value);
      for (const m of out.matchAll(/spawned (\d+)/g)) started.add(Number(m[1]));
    }
  })();
  const deadline = Date.now() + 15000;
  while (!until(out) && Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    await Bun.sleep(10);
  }
  return { child, output: () => out, pump };
}

async function waitFor(cond: () => Promise<boolean> | boolean, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(20);
  }
}

afterEach(() => killAll(started));
afterAll(() => {
  killAll(started);
  for (const t of homes) t.cleanup();
});

describe("recover after the controller is SIGKILLed", () => {
  it("adopts a server spawned by a controller that died before registering it", async () => {
    const { t, controller } = await setup([{ id: "tiny" }]);
    const { child } = await runController(t, ["load", "tiny", "0", "after-spawn"], () => false);
    await child.exited;
    expect(child.signalCode).toBe("SIGKILL");
    expect(await controller.registry.list()).toEqual([]);
    const orphans = await controller.registry.findOrphans();
    const ours = orphans.filter((o) => o.verdict === "ours");
    expect(ours).toHaveLength(1);
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${ours[0]!.port}/health`).catch(() => undefined))?.ok === true,
    );
    const report = await controller.recover();
    expect(report).toEqual([
      expect.objectContaining({ slot: "0", pid: ours[0]!.pid, outcome: "adopted", model_id: "tiny" }),
    ]);
    const [tracked] = await controller.registry.list();
    expect(tracked?.entry).toMatchObject({ pid: ours[0]!.pid, status: "running", model_id: "tiny" });
    expect((await controller.registry.findOrphans()).filter((o) => o.verdict === "ours")).toEqual([]);
    await controller.unload("0");
    expect(alive(ours[0]!.pid)).toBe(false);
  });

  it("kills a duplicate of a held slot, and records orphan-killed only when the kill succeeded", async () => {
    const { t, controller } = await setup([{ id: "tiny" }]);
    await controller.load("tiny", { gpu: 0 });
    const duplicate = () => {
      const env = { ...process.env, CORRAL_HOME_ID: controller.registry.homeId, CORRAL_SLOT: "0" };
      const child = Bun.spawn([t.server, "-m", t.modelPath("tiny"), "--port", "0"], { env, stdout: "ignore" });
      started.add(child.pid);
      return child;
    };
    const first = duplicate();
    await waitFor(async () => (await controller.registry.findOrphans()).some((o) => o.pid === first.pid));
    // The kill fails (the process table cannot be read after recover's first scan): no orphan-killed.
    const real = defaultProbe();
    let lists = 0;
    const failing: ProcessProbe = {
      list: (o) => (++lists > 1 ? Promise.reject(new Error("process table unreadable")) : real.list(o)),
      get: (pid) => real.get(pid),
      environ: (pid) => real.environ(pid),
    };
    const broken = await createController({
      home: t.home,
      configFile: t.configFile,
      probe: failing,
      gpuQuery: async () => undefined,
    });
    const report = await broken.recover();
    expect(report.find((r) => r.pid === first.pid)).toMatchObject({ outcome: "kept" });
    expect(alive(first.pid)).toBe(true);
    const events = async () => (await controller.history()).filter((e) => e.event === "orphan-killed");
    expect(await events()).toEqual([]);
    // With a working probe the same duplicate is killed, and that is recorded.
    const again = await controller.recover();
    expect(again.find((r) => r.pid === first.pid)).toMatchObject({ outcome: "killed-duplicate" });
    expect(alive(first.pid)).toBe(false);
    expect((await events()).map((e) => e.pid)).toEqual([first.pid]);
  });

  it("picks up a server that was still loading, and sees it become ready", async () => {
    const { t, controller } = await setup([{ id: "slow", args: ["--fake-load-ms", "2500"] }]);
    const { child } = await runController(t, ["load", "slow", "0"], (out) => out.includes("spawned"));
    await waitFor(async () => (await controller.registry.get("0"))?.status === "loading");
    child.kill("SIGKILL");
    await child.exited;
    const entry = (await controller.registry.get("0"))!;
    expect(alive(entry.pid)).toBe(true);
    const first = await controller.recover();
    expect(first).toEqual([expect.objectContaining({ slot: "0", outcome: "loading" })]);
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${entry.port}/health`).catch(() => undefined))?.ok === true,
      10000,
    );
    const second = await controller.recover();
    expect(second).toEqual([expect.objectContaining({ slot: "0", outcome: "running" })]);
    expect(await controller.registry.findOrphans()).not.toContainEqual(expect.objectContaining({ verdict: "ours" }));
  });

  it("finishes an unload that was interrupted", async () => {
    const { t, controller } = await setup([{ id: "stubborn", args: ["--fake-ignore-sigterm"] }]);
    const { entry } = await controller.load("stubborn", { gpu: 0 });
    started.add(entry.pid);
    const { child } = await runController(t, ["unload", "0", "20000"], (out) => out.includes("ready"));
    await waitFor(async () => (await controller.registry.get("0"))?.status === "stopping");
    child.kill("SIGKILL");
    await child.exited;
    expect(alive(entry.pid)).toBe(true);
    const report = await controller.recover();
    expect(report).toEqual([expect.objectContaining({ slot: "0", outcome: "stopped" })]);
    expect(alive(entry.pid)).toBe(false);
    expect(await controller.registry.list()).toEqual([]);
  }, 20000);

  it("removes entries whose process died while no controller ran, saying why", async () => {
    const { controller } = await setup([{ id: "tiny" }]);
    const { entry } = await controller.load("tiny", { gpu: 0 });
    process.kill(entry.pid, "SIGKILL");
    await waitFor(() => !alive(entry.pid));
    const report = await controller.recover();
    expect(report).toEqual([expect.objectContaining({ slot: "0", outcome: "removed" })]);
    const pruned = (await controller.registry.history.read()).find((e) => e.event === "pruned");
    expect(pruned?.reason).toContain("exited");
  });

  it("never signals a live process that took over a recorded pid", async () => {
    const { controller } = await setup([{ id: "tiny" }]);
    const sleeper = Bun.spawn(["sleep", "30"]);
    started.add(sleeper.pid);
    await controller.registry.register("1", {
      pid: sleeper.pid,
      model_id: "tiny",
      model_name: "tiny",
      model_path: "/m/tiny.gguf",
      gpu_id: 1,
      port: 1,
      started_at: "2020-01-01T00:00:00",
      command_line: ["llama-server"],
      status: "running",
    });
    const report = await controller.recover();
    expect(report).toEqual([expect.objectContaining({ slot: "1", outcome: "removed" })]);
    expect(alive(sleeper.pid)).toBe(true);
    sleeper.kill();
  });
});
