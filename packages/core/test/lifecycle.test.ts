import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { createController, type Controller } from "../src/lifecycle/controller.ts";
import { LoadFailedError, PortInUseError, SlotInUseError } from "../src/errors.ts";
import { isPortFree } from "../src/server/ports.ts";
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
    const holder = Bun.spawn(
      [
        "bun",
        "-e",
        "const s = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: () => new Response('x') }); console.log(s.port); setInterval(() => {}, 1000)",
      ],
      { stdout: "pipe" },
    );
    started.add(holder.pid);
    const reader = holder.stdout.getReader();
    const port = Number(new TextDecoder().decode((await reader.read()).value).trim());
    const { controller } = await setup([{ id: "tiny" }]);
    const error = await controller.load("tiny", { gpu: 0, port }).catch((e) => e);
    expect(error).toBeInstanceOf(PortInUseError);
    expect(error.pid).toBe(holder.pid);
    expect(await controller.registry.list()).toEqual([]);
    holder.kill();
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
    expect(alive(first.entry.pid)).toBe(false);
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
