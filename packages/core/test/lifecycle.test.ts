import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import {
  LoadFailedError,
  NotOurProcessError,
  PortInUseError,
  PortNotAllowedError,
  SlotInUseError,
} from "../src/errors.ts";
import { type Controller, createController } from "../src/lifecycle/controller.ts";
import { defaultProbe } from "../src/process/probe.ts";
import type { ProcessProbe } from "../src/process/types.ts";
import { isPortFree, pickFreePort } from "../src/server/ports.ts";
import { spawnStandIn } from "./fixtures/index.ts";
import { alive, killAll, makeHome, type TestHome } from "./helpers/home.ts";

const homes: TestHome[] = [];
const started = new Set<number>();

async function setup(models: Parameters<typeof makeHome>[0]): Promise<{ t: TestHome; controller: Controller }> {
  const t = await makeHome(models);
  homes.push(t);
  const controller = await createController({
    home: t.home,
    configFile: t.configFile,
    gpuQuery: async () => undefined,
  });
  controller.registry.subscribe((e) => {
    if (e.pid) started.add(e.pid);
  });
  return { t, controller };
}

afterEach(() => killAll(started));
afterAll(() => {
  killAll(started);
  for (const t of homes) t.cleanup();
});

describe("load", () => {
  it("starts a model, registers it as loading, and marks it running once /health answers 200", async () => {
    const { controller } = await setup([{ id: "tiny", args: ["--fake-load-ms", "300"] }]);
    const seen: string[] = [];
    controller.registry.subscribe((e) => seen.push(`${e.event}:${e.to ?? ""}`));
    const { slot, entry, readyMs } = await controller.load("tiny", { gpu: 0 });
    expect(slot).toBe("0");
    expect(entry.status).toBe("running");
    expect(readyMs).toBeGreaterThanOrEqual(250);
    expect(seen).toEqual(["registered:loading", "status:running"]);
    expect(alive(entry.pid)).toBe(true);
    expect(entry.proc_start_ms).toBeNumber();
    expect(entry.executable).toEndWith("/llama-server");
    expect(existsSync(entry.log_file!)).toBe(true);
    const environ = readFileSync(`/proc/${entry.pid}/environ`, "utf8").split("\0");
    expect(environ).toContain("CUDA_VISIBLE_DEVICES=0");
    expect(environ).toContain(`CORRAL_HOME_ID=${controller.registry.homeId}`);
    expect(environ).toContain(`CORRAL_INSTANCE_ID=${entry.instance_id}`);
    const res = await fetch(`http://127.0.0.1:${entry.port}/health`);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("reports a server that exits while loading with its exit code and log, and cleans up the entry", async () => {
    const { controller } = await setup([{ id: "broken", args: ["--fake-exit-on-start", "3"] }]);
    const error = await controller.load("broken", { gpu: 1 }).catch((e) => e);
    expect(error).toBeInstanceOf(LoadFailedError);
    expect(error.exitCode).toBe(3);
    expect(error.logTail.join("\n").length).toBeGreaterThan(0);
    expect(await controller.registry.list()).toEqual([]);
    const history = await controller.registry.history.read();
    expect(history[0]?.event).toBe("load-failed");
  });

  it("kills the whole tree and says so when the server is not ready in time", async () => {
    const { controller } = await setup([{ id: "slow", args: ["--fake-load-ms", "60000"] }]);
    const error = await controller.load("slow", { gpu: 0, timeoutMs: 500 }).catch((e) => e);
    expect(error).toBeInstanceOf(LoadFailedError);
    expect(error.timedOut).toBe(true);
    expect(error.message).toContain("killed");
    expect(await controller.registry.list()).toEqual([]);
  });

  it("refuses a port held by a foreign process and names its pid", async () => {
    const { controller } = await setup([{ id: "tiny" }]);
    // A port the configuration allows (the range), held by someone else.
    const wanted = await pickFreePort(controller.config.ports.range);
    const holder = Bun.spawn(
      [
        "bun",
        "-e",
        `const s = Bun.serve({ port: ${wanted}, hostname: '127.0.0.1', fetch: () => new Response('x') }); console.log(s.port); setInterval(() => {}, 1000)`,
      ],
      { stdout: "pipe" },
    );
    started.add(holder.pid);
    const reader = holder.stdout.getReader();
    const port = Number(new TextDecoder().decode((await reader.read()).value).trim());
    const error = await controller.load("tiny", { gpu: 0, port }).catch((e) => e);
    expect(error).toBeInstanceOf(PortInUseError);
    expect(error.pid).toBe(holder.pid);
    expect(await controller.registry.list()).toEqual([]);
    holder.kill();
  });

  it("refuses a port outside the configured range and per-GPU ports before spawning anything", async () => {
    const { controller } = await setup([{ id: "tiny" }]);
    for (const port of [22, controller.config.ports.range[1] + 1]) {
      const error = await controller.load("tiny", { gpu: 0, port }).catch((e) => e);
      expect(error).toBeInstanceOf(PortNotAllowedError);
      expect(error.port).toBe(port);
      const switched = await controller.switch("0", "tiny", { port }).catch((e) => e);
      expect(switched).toBeInstanceOf(PortNotAllowedError);
    }
    expect(await controller.registry.list()).toEqual([]);
    expect((await controller.history()).some((e) => e.event === "registered")).toBe(false);
  });

  it("keeps the entry of a server that timed out and could not be killed, so it is never left untracked", async () => {
    const t = await makeHome([{ id: "slow", args: ["--fake-load-ms", "60000"] }]);
    homes.push(t);
    // A probe that stops answering once the server is spawned: the kill at the end of the failed load fails.
    const real = defaultProbe();
    let broken = false;
    const probe: ProcessProbe = {
      list: (options) => (broken ? Promise.reject(new Error("process table unreadable")) : real.list(options)),
      get: (pid) => real.get(pid),
      environ: (pid) => real.environ(pid),
    };
    const controller = await createController({
      home: t.home,
      configFile: t.configFile,
      probe,
      gpuQuery: async () => undefined,
      hooks: {
        afterSpawn: (pid) => {
          started.add(pid);
          broken = true;
        },
      },
    });
    const error = await controller.load("slow", { gpu: 0, timeoutMs: 300 }).catch((e) => e);
    expect(error).toBeInstanceOf(LoadFailedError);
    expect(error.message).toContain("killing it failed");
    const [kept] = await controller.registry.list();
    expect(kept?.entry.status).toBe("unhealthy");
    expect(alive(kept!.entry.pid)).toBe(true);
    expect((await controller.history()).some((e) => e.event === "load-failed")).toBe(false);
  });

  it("refuses a GPU set that overlaps a loaded one, and replaces it when asked", async () => {
    const { controller } = await setup([{ id: "big" }, { id: "small" }]);
    const big = await controller.load("big", { gpu: "0,1" });
    const error = await controller.load("small", { gpu: 1 }).catch((e) => e);
    expect(error).toBeInstanceOf(SlotInUseError);
    expect(error.holder).toEqual({ slot: "0,1", pid: big.entry.pid, model_id: "big" });
    const small = await controller.load("small", { gpu: 1, replace: true });
    expect(alive(big.entry.pid)).toBe(false);
    expect((await controller.registry.list()).map((e) => e.slot)).toEqual(["1"]);
    expect(small.entry.status).toBe("running");
  });

  it("gives two loads started at the same moment in different slots different ports", async () => {
    const { controller } = await setup([{ id: "a" }, { id: "b" }]);
    const [a, b] = await Promise.all([controller.load("a", { gpu: 0 }), controller.load("b", { gpu: 1 })]);
    expect(a.entry.status).toBe("running");
    expect(b.entry.status).toBe("running");
    expect(a.entry.port).not.toBe(b.entry.port);
  });

  it("picks another port once when someone else takes the free port it picked before the server binds it", async () => {
    const t = await makeHome([{ id: "tiny" }]);
    homes.push(t);
    let thief: { port: number; stop(closeActive?: boolean): void } | undefined;
    const controller = await createController({
      home: t.home,
      configFile: t.configFile,
      gpuQuery: async () => undefined,
      hooks: {
        beforeSpawn: (port) => {
          thief ??= Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
        },
      },
    });
    try {
      const { entry } = await controller.load("tiny", { gpu: 0 });
      started.add(entry.pid);
      expect(entry.status).toBe("running");
      expect(entry.port).not.toBe(thief!.port);
      const failed = (await controller.registry.history.read()).find((e) => e.event === "load-failed");
      expect(failed?.reason).toContain("exited");
    } finally {
      thief?.stop(true);
    }
  });

  it("never starts two servers on one port: a second model picks another free port", async () => {
    const { controller } = await setup([{ id: "a" }, { id: "b" }]);
    const a = await controller.load("a", { gpu: 0 });
    const b = await controller.load("b", { gpu: 1 });
    expect(a.entry.port).not.toBe(b.entry.port);
  });
});

describe("unload", () => {
  it("stops the server, frees its port and unregisters it", async () => {
    const { controller } = await setup([{ id: "tiny" }]);
    const { entry } = await controller.load("tiny", { gpu: 0 });
    const result = await controller.unload("0");
    expect(result).toMatchObject({ slot: "0", pid: entry.pid, signalled: true, escalated: false, portFreed: true });
    expect(alive(entry.pid)).toBe(false);
    expect(await isPortFree(entry.port)).toBe(true);
    expect(await controller.registry.list()).toEqual([]);
  });

  it("SIGKILLs a server that ignores SIGTERM after the timeout", async () => {
    const { controller } = await setup([{ id: "stubborn", args: ["--fake-ignore-sigterm"] }]);
    const { entry } = await controller.load("stubborn", { gpu: 0 });
    const result = await controller.unload("0", { timeoutMs: 400 });
    expect(result.escalated).toBe(true);
    expect(alive(entry.pid)).toBe(false);
    const killed = (await controller.registry.history.read()).find((e) => e.event === "killed");
    expect(killed?.reason).toContain("SIGKILL");
  });

  it("kills the server's children and grandchildren too", async () => {
    const { controller } = await setup([{ id: "family", args: ["--fake-child", "--fake-grandchild"] }]);
    const { entry } = await controller.load("family", { gpu: 0 });
    const table = await controller.registry.probe.list();
    const children = table.filter((p) => p.ppid === entry.pid).map((p) => p.pid);
    const grandchildren = table.filter((p) => children.includes(p.ppid)).map((p) => p.pid);
    expect(children.length).toBeGreaterThan(0);
    expect(grandchildren.length).toBeGreaterThan(0);
    const result = await controller.unload("0");
    expect(result.signalled).toBe(true);
    for (const pid of [entry.pid, ...children, ...grandchildren]) expect(alive(pid)).toBe(false);
  });

  it("does not signal an entry whose pid now belongs to another program, and drops the stale entry", async () => {
    const { controller } = await setup([{ id: "tiny" }]);
    const sleeper = Bun.spawn(["sleep", "30"]);
    started.add(sleeper.pid);
    await controller.registry.register("0", {
      pid: sleeper.pid,
      model_id: "tiny",
      model_name: "tiny",
      model_path: "/m/tiny.gguf",
      gpu_id: "0",
      port: 1,
      started_at: new Date().toISOString(),
      command_line: ["llama-server"],
      status: "running",
    });
    const result = await controller.unload("0");
    expect(result.signalled).toBe(false);
    expect(alive(sleeper.pid)).toBe(true);
    expect(await controller.registry.list()).toEqual([]);
    sleeper.kill();
  });
});

describe("switch", () => {
  it("unloads the slot and loads the other model on the same GPU and port", async () => {
    const { controller } = await setup([{ id: "first" }, { id: "second" }]);
    const first = await controller.load("first", { gpu: 0 });
    const second = await controller.switch("0", "second");
    expect(second.slot).toBe("0");
    expect(second.entry.model_id).toBe("second");
    expect(second.entry.port).toBe(first.entry.port);
    expect(second.previous?.model_id).toBe("first");
    expect(second.previous?.pid).toBe(first.entry.pid);
    expect(alive(first.entry.pid)).toBe(false);
  });

  it("says which model it replaced even when another switch ran just before it in the same slot", async () => {
    const { controller } = await setup([{ id: "first" }, { id: "second" }, { id: "third" }]);
    await controller.load("first", { gpu: 0 });
    // Both are queued at once: the second must report "second", which it read inside the slot's queue.
    const [a, b] = await Promise.all([controller.switch("0", "second"), controller.switch("0", "third")]);
    expect(a.previous?.model_id).toBe("first");
    expect(b.previous?.model_id).toBe("second");
    expect(b.previous?.pid).toBe(a.entry.pid);
  });
});

describe("status", () => {
  it("reports a server whose own --host is elsewhere without sending it a request", async () => {
    const { controller } = await setup([{ id: "tiny" }]);
    const server = await spawnStandIn({});
    started.add(server.pid);
    const info = await controller.registry.probe.get(server.pid);
    await controller.registry.register("0", {
      pid: server.pid,
      model_id: "tiny",
      model_name: "tiny",
      model_path: "/m/tiny.gguf",
      gpu_id: "0",
      port: server.port,
      started_at: new Date(info?.startTimeMs ?? Date.now()).toISOString(),
      command_line: [...(info?.cmdline ?? [])],
      status: "running",
      host: "10.255.255.1",
      adopted: true,
    });
    const [row] = await controller.status();
    expect(row?.state).toBe("running");
    expect(row?.health).toMatchObject({ ok: false, state: "error", ms: 0 });
    expect(row?.health?.error).toContain("not probed");
  });
});

describe("kill", () => {
  it("kills a tracked model by name through the slot's unload, and lists exactly what it will kill first", async () => {
    const { controller } = await setup([{ id: "tiny" }]);
    const loaded = await controller.load("tiny", { gpu: 0 });
    const plan = await controller.resolveKillTargets({ name: " TINY " });
    expect(plan.targets.map((t) => [t.pid, t.slot])).toEqual([[loaded.entry.pid, "0"]]);
    const events: string[] = [];
    controller.registry.subscribe((e) => events.push(e.event));
    const outcomes = await controller.kill({ targets: plan.targets });
    expect(outcomes).toEqual([expect.objectContaining({ pid: loaded.entry.pid, slot: "0", signalled: true })]);
    // The unload path: the request is recorded first (a supervisor cancels restarts), then the kill.
    expect(events).toContain("unload-requested");
    expect(events).toContain("killed");
    expect(alive(loaded.entry.pid)).toBe(false);
    expect(await isPortFree(loaded.entry.port)).toBe(true);
  });

  it("refuses a planned kill when the slot has been given to another server since", async () => {
    const { controller } = await setup([{ id: "tiny" }]);
    const first = await controller.load("tiny", { gpu: 0 });
    const plan = await controller.resolveKillTargets({ pid: first.entry.pid });
    await controller.unload("0");
    const second = await controller.load("tiny", { gpu: 0 });
    const error = await controller.kill({ targets: plan.targets }).catch((e) => e);
    expect(error).toBeInstanceOf(AggregateError);
    expect(error.errors[0]).toBeInstanceOf(NotOurProcessError);
    expect(alive(second.entry.pid)).toBe(true);
  });
});

describe("logs", () => {
  it("tails a slot's log, and still finds it after the slot was unloaded", async () => {
    const { controller } = await setup([{ id: "tiny" }]);
    await controller.load("tiny", { gpu: 0 });
    const live = await controller.logs("0", 50);
    expect(live.some((l) => l.includes("corral"))).toBe(true);
    await controller.unload("0");
    expect((await controller.logs("0", 50)).length).toBeGreaterThan(0);
  });
});

describe("cpu affinity and GPU memory", () => {
  it("pins a model to the configured CPUs at spawn and shows it with the process", async () => {
    const t = await makeHome([{ id: "pinned" }]);
    homes.push(t);
    const config = JSON.parse(readFileSync(t.configFile, "utf8"));
    config.models[0].cpu_affinity = "0";
    await Bun.write(t.configFile, JSON.stringify(config));
    const controller = await createController({
      home: t.home,
      configFile: t.configFile,
      gpuQuery: async () => undefined,
    });
    const { entry } = await controller.load("pinned", { gpu: 0 });
    started.add(entry.pid);
    expect(entry.cpu_affinity).toBe("0");
    expect(entry.executable).toEndWith("/llama-server");
    const status = readFileSync(`/proc/${entry.pid}/status`, "utf8");
    expect(status).toMatch(/Cpus_allowed_list:\s+0\n/);
  });

  it("reports when the GPU memory held by an unloaded server is released", async () => {
    const t = await makeHome([{ id: "tiny" }]);
    homes.push(t);
    let holder = 0;
    const gpuQuery = async () => ({
      gpus: [{ index: 0, name: "RTX 4090", memory_total_mib: 24564, memory_used_mib: holder ? 9000 : 0 }],
      processes: holder && alive(holder) ? [{ pid: holder, used_memory_mib: 9000, gpu_index: 0 }] : [],
      taken_at: new Date().toISOString(),
    });
    const controller = await createController({ home: t.home, configFile: t.configFile, gpuQuery });
    const { entry } = await controller.load("tiny", { gpu: 0 });
    holder = entry.pid;
    started.add(entry.pid);
    const [row] = await controller.status();
    expect(row?.usage?.gpu_memory_mib).toBe(9000);
    const result = await controller.unload("0");
    expect(result.gpuReleased).toBe(true);
    const released = (await controller.registry.history.read()).find((e) => e.event === "gpu-released");
    expect(released?.reason).toContain("released");
  });
});
