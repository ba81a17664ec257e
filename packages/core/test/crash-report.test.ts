import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { createController } from "../src/lifecycle/controller.ts";
import { exitStatusOf } from "../src/server/exits.ts";
import type { GpuSnapshot } from "../src/server/views.ts";
import type { HistoryEvent } from "../src/store/schema.ts";
import type { AlertEvent } from "../src/supervision/alerts.ts";
import { createAlerter } from "../src/supervision/alerts.ts";
import { createSupervisor, type Supervisor } from "../src/supervision/supervisor.ts";
import { spawnStandIn } from "./fixtures/index.ts";
import { killAll, makeHome, type TestHome, type TestModel } from "./helpers/home.ts";

const homes: TestHome[] = [];
const started = new Set<number>();
const supervisors: Supervisor[] = [];

afterEach(async () => {
  for (const s of supervisors.splice(0)) await s.stop();
  killAll(started);
});
afterAll(() => {
  killAll(started);
  for (const t of homes) t.cleanup();
});

async function setup(models: TestModel[], gpuQuery: () => Promise<GpuSnapshot | undefined> = async () => undefined) {
  const t = await makeHome(models);
  homes.push(t);
  const controller = await createController({ home: t.home, configFile: t.configFile, gpuQuery });
  controller.registry.subscribe((e) => {
    if (e.pid) started.add(e.pid);
  });
  // A real webhook receiver on a port the kernel picks.
  const alerts: AlertEvent[] = [];
  const hook = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: async (req) => {
      alerts.push((await req.json()) as AlertEvent);
      return new Response("ok");
    },
  });
  const alerter = createAlerter({ urls: [`http://127.0.0.1:${hook.port}/hook`] });
  const supervisor = createSupervisor(controller, { followHistory: false, alerter });
  supervisors.push(supervisor);
  return { controller, supervisor, alerts, hook };
}

async function waitFor<T>(find: () => Promise<T | undefined> | T | undefined, ms = 15000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = await find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(20);
  }
}

const reportOf = async (controller: Awaited<ReturnType<typeof createController>>) =>
  (await controller.history({ limit: 50 })).find((e: HistoryEvent) => e.event === "crash-report");

describe("crash reports", () => {
  it("say how a server this process started ended, with its last log lines, usage, /slots, uptime and the restart decision", async () => {
    // GPU figures as nvidia-smi would give them for the server, once it runs (none for placement before).
    let onGpu: number | undefined;
    const gpuQuery = async (): Promise<GpuSnapshot | undefined> =>
      onGpu === undefined
        ? undefined
        : {
            gpus: [],
            processes: [{ pid: onGpu, used_memory_mib: 1234, gpu_index: 0 }],
            taken_at: new Date().toISOString(),
          };
    const { controller, supervisor, alerts, hook } = await setup(
      [{ id: "tiny", gpu: "0", restart: "on-failure", max_restart_attempts: 2 }],
      gpuQuery,
    );
    const { entry } = await controller.load("tiny");
    onGpu = entry.pid;
    await supervisor.tick(); // alive: its usage and /slots are seen
    process.kill(entry.pid, "SIGSEGV");
    const event = await waitFor(async () => {
      await supervisor.tick();
      return reportOf(controller);
    });
    onGpu = undefined;
    const report = event.report!;
    expect(report.pid).toBe(entry.pid);
    expect(report.exit).toEqual({ code: null, signal: "SIGSEGV", known: true });
    expect(report.log_tail.length).toBeGreaterThan(3);
    expect(report.log_tail.length).toBeLessThanOrEqual(50);
    expect(report.log_tail.join("\n")).toContain("HTTP server is listening");
    expect(report.usage?.rss_bytes).toBeGreaterThan(0);
    expect(report.usage?.gpu_memory_mib).toBe(1234);
    expect(report.slots?.slots[0]?.is_processing).toBe(false);
    expect(report.uptime_ms).toBeGreaterThanOrEqual(0);
    expect(report.restart).toMatchObject({ decision: "restart", attempt: 1, max_attempts: 2, delay_ms: 100 });
    expect(event.reason).toContain("signal SIGSEGV");
    // The same report is the webhook's body.
    const alert = await waitFor(() => alerts.find((a) => a.event === "crash"));
    expect(alert.report?.exit.signal).toBe("SIGSEGV");
    expect(alert.report?.log_tail).toEqual(report.log_tail);
    hook.stop(true);
  });

  it("give the exit code of a server that exits by itself, and say when restart is off", async () => {
    const { controller, supervisor } = await setup([
      { id: "tiny", gpu: "0", args: ["--fake-exit-after-ms", "600", "--fake-exit-code", "3"] },
    ]);
    await controller.load("tiny");
    const event = await waitFor(async () => {
      await supervisor.tick();
      return reportOf(controller);
    });
    expect(event.report?.exit).toEqual({ code: 3, signal: null, known: true });
    expect(event.report?.log_tail.at(-1)).toContain("exiting with code 3");
    expect(event.report?.restart.decision).toBe("none");
  });

  it("say the exit status is unknown for a server this process did not start", async () => {
    const { controller, supervisor } = await setup([{ id: "tiny", gpu: "0" }]);
    // Started elsewhere (as after a restart of corral serve): adopted, so no child of ours.
    const standIn = await spawnStandIn();
    started.add(standIn.pid);
    await controller.adopt(standIn.pid, { slot: "3" });
    await supervisor.tick();
    expect((await exitStatusOf(standIn.pid)).known).toBe(false);
    process.kill(standIn.pid, "SIGKILL");
    const event = await waitFor(async () => {
      await supervisor.tick();
      return reportOf(controller);
    });
    expect(event.report?.exit.known).toBe(false);
    expect(event.report?.exit.note).toContain("unknown");
    expect(event.report?.restart.decision).toBe("none");
  });
});
