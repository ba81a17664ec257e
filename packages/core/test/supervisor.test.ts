import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { closeSync, openSync, rmSync, writeFileSync } from "node:fs";
import { RegistryCorruptError } from "../src/errors.ts";
import { createController } from "../src/lifecycle/controller.ts";
import type { HistoryEvent } from "../src/store/schema.ts";
import { createSupervisor, type Supervisor } from "../src/supervision/supervisor.ts";
import { freePort } from "./fixtures/index.ts";
import { alive, killAll, makeHome, type TestHome, type TestModel } from "./helpers/home.ts";

const homes: TestHome[] = [];
const started = new Set<number>();
const supervisors: Supervisor[] = [];

async function setup(models: TestModel[], extra: Record<string, unknown> = {}) {
  const t = await makeHome(models, extra);
  homes.push(t);
  const controller = await createController({
    home: t.home,
    configFile: t.configFile,
    gpuQuery: async () => undefined,
  });
  controller.registry.subscribe((e) => {
    if (e.pid) started.add(e.pid);
  });
  const supervisor = createSupervisor(controller, { intervalMs: 100 });
  supervisors.push(supervisor);
  const events: HistoryEvent[] = [];
  supervisor.subscribe((e) => events.push(e));
  return { t, controller, supervisor, events };
}

async function waitFor(cond: () => Promise<boolean> | boolean, ms = 15000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(25);
  }
}

const has = (events: HistoryEvent[], name: string) => events.some((e) => e.event === name);

afterEach(async () => {
  for (const s of supervisors.splice(0)) await s.stop();
  killAll(started);
});
afterAll(() => {
  killAll(started);
  for (const t of homes) t.cleanup();
});

describe("supervisor", () => {
  it("restarts a crashed server with backoff and records it", async () => {
    const { controller, supervisor, events } = await setup([
      { id: "tiny", restart: "on-failure", max_restart_attempts: 3 },
    ]);
    const first = await controller.load("tiny", { gpu: 0 });
    supervisor.start();
    process.kill(first.entry.pid, "SIGKILL");
    await waitFor(async () => {
      const entry = await controller.registry.get("0");
      return entry !== undefined && entry.pid !== first.entry.pid && entry.status === "running";
    });
    const entry = (await controller.registry.get("0"))!;
    expect(entry.restarts).toBe(1);
    expect(entry.port).toBe(first.entry.port);
    await waitFor(() => has(events, "restarted"));
    const names = events.map((e) => e.event);
    expect(names.indexOf("restart-scheduled")).toBeLessThan(names.indexOf("restarted"));
    expect(events.find((e) => e.event === "status" && e.to === "exited")?.reason).toContain("crashed");
  });

  it("gives up after the maximum number of attempts", async () => {
    const { controller, supervisor, events } = await setup([
      {
        id: "flaky",
        restart: "on-failure",
        max_restart_attempts: 2,
        args: ["--fake-exit-after-ms", "200", "--fake-exit-code", "1"],
      },
    ]);
    await controller.load("flaky", { gpu: 0 });
    supervisor.start();
    await waitFor(() => has(events, "give-up"), 20000);
    const restarts = events.filter((e) => e.event === "restart-scheduled");
    expect(restarts).toHaveLength(2);
    expect(events.find((e) => e.event === "give-up")?.reason).toContain("2 restart attempts");
    await waitFor(async () => (await controller.registry.list()).length === 0);
  }, 30000);

  it("never restarts a server that was unloaded on purpose", async () => {
    const { controller, supervisor, events } = await setup([{ id: "tiny", restart: "on-failure" }]);
    supervisor.start();
    const { entry } = await controller.load("tiny", { gpu: 0 });
    await waitFor(() => has(events, "status") || has(events, "registered"));
    await controller.unload("0");
    expect(alive(entry.pid)).toBe(false);
    // Passes that see the server gone: any of them would have scheduled a restart.
    for (let i = 0; i < 3; i++) await supervisor.tick();
    expect(await controller.registry.list()).toEqual([]);
    expect(has(events, "restart-scheduled")).toBe(false);
  });

  it("marks a server that stops answering /health as unhealthy", async () => {
    const { controller, supervisor } = await setup([{ id: "tiny" }]);
    const { entry } = await controller.load("tiny", { gpu: 0 });
    process.kill(entry.pid, "SIGSTOP");
    try {
      await supervisor.tick();
      const row = (await controller.registry.get("0"))!;
      expect(row.status).toBe("unhealthy");
      expect(row.status_reason).toContain("/health");
    } finally {
      process.kill(entry.pid, "SIGCONT");
    }
    await supervisor.tick();
    expect((await controller.registry.get("0"))?.status).toBe("running");
  });

  it("reports CPU and memory for a live process and says how fresh the figures are", async () => {
    const { controller, supervisor } = await setup([{ id: "tiny" }]);
    await controller.load("tiny", { gpu: 0 });
    const [row] = await supervisor.statuses(0);
    expect(row?.usage?.rss_bytes).toBeGreaterThan(1024 * 1024);
    expect(row?.usage?.cpu_percent).toBeGreaterThanOrEqual(0);
    expect(row?.uptime_ms).toBeGreaterThanOrEqual(0);
    expect(Date.now() - Date.parse(row!.checked_at)).toBeLessThan(5000);
  });

  it("posts a crash alert to a webhook", async () => {
    const received: unknown[] = [];
    const receiver = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async (req) => {
        received.push(await req.json());
        return new Response("ok");
      },
    });
    try {
      const { controller, supervisor } = await setup([{ id: "tiny" }], {
        webhooks: [`http://127.0.0.1:${receiver.port}/hook`],
      });
      const { entry } = await controller.load("tiny", { gpu: 0 });
      supervisor.start();
      process.kill(entry.pid, "SIGKILL");
      await waitFor(() => received.length > 0);
      expect(received[0]).toMatchObject({ event: "crash", slot: "0", model: "tiny", pid: entry.pid });
    } finally {
      receiver.stop(true);
    }
  });
});

describe("adopt", () => {
  it("takes a hand-started llama-server into the registry and unloads it like any other", async () => {
    const { t, controller } = await setup([{ id: "tiny" }]);
    const port = await freePort();
    const logFile = `${t.home}/by-hand.log`;
    const fd = openSync(logFile, "a");
    const hand = Bun.spawn([t.server, "-m", t.modelPath("tiny"), "--port", String(port)], {
      env: { ...process.env, CUDA_VISIBLE_DEVICES: "1" },
      stdout: fd,
      stderr: fd,
    });
    closeSync(fd);
    started.add(hand.pid);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok === true);
    const orphan = (await controller.registry.findOrphans()).find((o) => o.pid === hand.pid);
    expect(orphan).toMatchObject({ verdict: "likely-ours", port, model_path: t.modelPath("tiny") });
    const entry = await controller.adopt(hand.pid);
    expect(entry).toMatchObject({
      pid: hand.pid,
      gpu_id: "1",
      port,
      model_id: "tiny",
      adopted: true,
      status: "running",
      log_file: logFile,
    });
    expect((await controller.logs("1", 20)).join("\n")).toContain("listening");
    expect((await controller.registry.findOrphans()).some((o) => o.pid === hand.pid)).toBe(false);
    const result = await controller.unload("1");
    expect(result.signalled).toBe(true);
    await hand.exited;
    expect(await controller.registry.list()).toEqual([]);
  });
});

describe("supervisor errors", () => {
  it("reports every error of its loop to onError and keeps the latest, instead of swallowing it", async () => {
    const t = await makeHome([{ id: "tiny" }]);
    homes.push(t);
    const controller = await createController({
      home: t.home,
      configFile: t.configFile,
      gpuQuery: async () => undefined,
    });
    const seen: Array<{ where: string; error: unknown }> = [];
    const supervisor = createSupervisor(controller, {
      intervalMs: 50,
      followHistory: false,
      onError: (error, where) => seen.push({ error, where }),
    });
    supervisors.push(supervisor);
    expect(supervisor.lastError).toBeUndefined();
    writeFileSync(controller.paths.registry, "{ not json");
    supervisor.start();
    await waitFor(() => seen.length > 0);
    expect(seen[0]?.where).toBe("tick");
    expect(seen[0]?.error).toBeInstanceOf(RegistryCorruptError);
    expect(supervisor.lastError).toMatchObject({ where: "tick", code: "REGISTRY_CORRUPT" });
    expect(supervisor.lastError?.message).toContain("corrupt");
    // Once the registry is readable again, a good tick clears the tick's error.
    rmSync(controller.paths.registry, { force: true });
    await waitFor(() => supervisor.lastError === undefined);
  });
});
