// Corral against the real llama.cpp llama-server and a tiny random-weight model, both built by
// `bun run llama:build`. Real binary, real ports, real signals; skipped (with one line) without the build.
import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { join } from "node:path";
import { llamaBuildPaths } from "../../../../scripts/llama-paths.ts";
import { type Controller, createController } from "../../src/lifecycle/controller.ts";
import { createSupervisor, type Supervisor } from "../../src/supervision/supervisor.ts";
import { alive } from "../helpers/home.ts";
import { OwnProcesses } from "./own-processes.ts";
import { makeRealHome, type RealHome, type RealModel } from "./real-home.ts";

const llama = llamaBuildPaths();
if (!llama.ready) console.log(`real llama-server integration tests skipped: ${llama.reason}`);

const homes: RealHome[] = [];
const started = new OwnProcesses();
const supervisors: Supervisor[] = [];
const holder = join(import.meta.dir, "hold-controller.ts");
const HOST = "127.0.0.1";
// Per test: loads take 40 ms idle but seconds on a loaded 2-core machine; never a timing target.
const SLOW = 60_000;

async function setup(models: readonly RealModel[]): Promise<{ home: RealHome; controller: Controller }> {
  const home = makeRealHome(llama, models);
  homes.push(home);
  const controller = await createController({
    home: home.home,
    configFile: home.configFile,
    gpuQuery: async () => undefined,
  });
  // Every server this controller starts is ours to kill if a test fails half-way.
  controller.registry.subscribe((e) => {
    if (e.event === "registered" && e.pid) started.add(e.pid);
  });
  return { home, controller };
}

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, ms = 30000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await Bun.sleep(25);
  }
}

async function healthy(port: number): Promise<boolean> {
  const res = await fetch(`http://${HOST}:${port}/health`).catch(() => undefined);
  return res?.status === 200 && ((await res.json()) as { status?: string }).status === "ok";
}

async function modelPathServed(port: number): Promise<string | undefined> {
  const res = await fetch(`http://${HOST}:${port}/props`);
  return ((await res.json()) as { model_path?: string }).model_path;
}

/** Whether this process can bind the port now, the way llama-server would. */
function canBind(port: number): boolean {
  try {
    Bun.listen({ hostname: HOST, port, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  }
}

/** PIDs of live llama-servers carrying this home's marker that the registry does not track. */
async function untrackedOfOurs(controller: Controller): Promise<number[]> {
  return (await controller.registry.findOrphans()).filter((o) => o.verdict === "ours").map((o) => o.pid);
}

/** Starts hold-controller.ts and resolves once it says the server answers /health. */
async function holdingController(home: RealHome, modelId: string, gpu: string) {
  const child = Bun.spawn(["bun", holder, home.home, home.configFile, modelId, gpu], {
    stdout: "pipe",
    stderr: "inherit",
  });
  started.add(child.pid);
  let out = "";
  const decoder = new TextDecoder();
  const reader = child.stdout.getReader();
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    out += decoder.decode(chunk.value, { stream: true });
    for (const m of out.matchAll(/spawned (\d+)/g)) started.add(Number(m[1]));
    const loaded = /loaded (\d+)/.exec(out);
    if (loaded) {
      reader.releaseLock();
      return { child, serverPid: Number(loaded[1]) };
    }
  }
  throw new Error(`the controller process ended (${child.exitCode ?? child.signalCode}) before loading: ${out}`);
}

afterEach(async () => {
  for (const s of supervisors.splice(0)) await s.stop();
  started.killAll();
});
afterAll(() => {
  started.killAll();
  for (const h of homes) h.cleanup();
});

describe.skipIf(!llama.ready)("corral with the real llama-server", () => {
  it(
    "loads the tiny model to running, and /props serves the registry's model_path",
    async () => {
      const { controller } = await setup([{ id: "tiny" }]);
      const { slot, entry } = await controller.load("tiny", { gpu: 0 });
      expect(slot).toBe("0");
      expect(entry).toMatchObject({ status: "running", model_id: "tiny", model_path: llama.model });
      expect(entry.executable).toBe(llama.server);
      expect(await healthy(entry.port)).toBe(true);
      expect(await modelPathServed(entry.port)).toBe((await controller.registry.get("0"))!.model_path);
      const [row] = await controller.status();
      expect(row).toMatchObject({ slot: "0", state: "running", health: { ok: true, state: "ok" } });
      await controller.unload("0");
    },
    SLOW,
  );

  it(
    "recovers a running server after its controller is SIGKILLed, leaving no orphan or duplicate",
    async () => {
      const { home, controller } = await setup([{ id: "tiny" }]);
      const { child, serverPid } = await holdingController(home, "tiny", "0");
      child.kill("SIGKILL");
      await child.exited;
      expect(child.signalCode).toBe("SIGKILL");
      expect(alive(serverPid)).toBe(true);

      const report = await controller.recover();
      expect(report).toEqual([
        expect.objectContaining({ slot: "0", pid: serverPid, outcome: "running", model_id: "tiny" }),
      ]);
      const entries = await controller.registry.list();
      expect(entries).toHaveLength(1);
      expect(entries[0]?.entry).toMatchObject({ pid: serverPid, status: "running", model_path: llama.model });
      expect(await modelPathServed(entries[0]!.entry.port)).toBe(llama.model);
      expect(await untrackedOfOurs(controller)).toEqual([]);

      // A second recovery (another controller restart) changes nothing.
      const again = await createController({
        home: home.home,
        configFile: home.configFile,
        gpuQuery: async () => undefined,
      });
      expect(await again.recover()).toEqual([
        expect.objectContaining({ slot: "0", pid: serverPid, outcome: "running" }),
      ]);
      expect((await again.registry.list()).map((e) => e.entry.pid)).toEqual([serverPid]);
      await again.unload("0");
      expect(alive(serverPid)).toBe(false);
    },
    SLOW,
  );

  it(
    "unloads with SIGTERM alone, and the port is free once unload returns",
    async () => {
      const { controller } = await setup([{ id: "tiny" }]);
      const { entry } = await controller.load("tiny", { gpu: 0 });
      const before = performance.now();
      const result = await controller.unload("0");
      const wallMs = Math.round(performance.now() - before);
      expect(result).toMatchObject({ pid: entry.pid, signalled: true, escalated: false, portFreed: true });
      expect(alive(entry.pid)).toBe(false);
      expect(canBind(entry.port)).toBe(true);
      expect(await controller.registry.list()).toEqual([]);
      const killed = (await controller.registry.history.read({ slot: "0" })).find((e) => e.event === "killed");
      expect(killed?.reason).toContain("(SIGTERM, ");
      expect(killed?.reason).not.toContain("after timeout");
      console.log(`real llama-server stopped by SIGTERM in ${result.ms} ms (unload returned after ${wallMs} ms)`);
    },
    SLOW,
  );

  it(
    "finds a hand-started llama-server as an orphan, adopts it from its command line, and unloads it",
    async () => {
      const { controller } = await setup([{ id: "tiny" }]);
      const port = await freePortNear(controller);
      const proc = Bun.spawn([llama.server, "-m", llama.model, "--host", HOST, "--port", String(port)], {
        env: { ...process.env, CUDA_VISIBLE_DEVICES: "1", GGML_NO_BACKTRACE: "1" },
        stdout: "ignore",
        stderr: "ignore",
      });
      started.add(proc.pid);
      await waitFor("the hand-started server answers /health", () => healthy(port));

      const orphan = (await controller.registry.findOrphans()).find((o) => o.pid === proc.pid);
      expect(orphan).toMatchObject({
        verdict: "likely-ours",
        model_path: llama.model,
        port,
        host: HOST,
        executable: llama.server,
      });
      expect(orphan?.marker).toBeUndefined();

      const entry = await controller.adopt(proc.pid);
      expect(entry).toMatchObject({
        pid: proc.pid,
        gpu_id: "1",
        port,
        model_id: "tiny",
        model_path: llama.model,
        adopted: true,
        status: "running",
      });
      expect((await controller.registry.findOrphans()).some((o) => o.pid === proc.pid)).toBe(false);

      const result = await controller.unload("1");
      expect(result).toMatchObject({ signalled: true, escalated: false, portFreed: true });
      expect(await proc.exited).toBe(0);
      expect(await controller.registry.list()).toEqual([]);
    },
    SLOW,
  );

  it(
    "recovers a just-spawned server that does not answer yet as loading, and as unhealthy once the load time is over",
    async () => {
      const { controller } = await setup([{ id: "tiny" }]);
      const serverPort = await freePortNear(controller);
      const proc = Bun.spawn([llama.server, "-m", llama.model, "--host", HOST, "--port", String(serverPort)], {
        env: { ...process.env, GGML_NO_BACKTRACE: "1" },
        stdout: "ignore",
        stderr: "ignore",
      });
      started.add(proc.pid);
      await waitFor("the server answers /health", () => healthy(serverPort));
      // What a controller that died mid-load leaves: a loading entry whose port does not answer (yet).
      const silentPort = await freePortNear(controller, serverPort);
      const entry = {
        pid: proc.pid,
        model_id: "tiny",
        model_name: "tiny",
        model_path: llama.model,
        gpu_id: "0",
        port: silentPort,
        started_at: new Date().toISOString(),
        command_line: [llama.server],
        status: "loading" as const,
        host: HOST,
      };
      await controller.registry.register("0", entry);
      expect(await controller.recover()).toEqual([expect.objectContaining({ slot: "0", outcome: "loading" })]);

      const loadMs = controller.config.timeouts.load_ms;
      await controller.registry.update("0", { started_at: new Date(Date.now() - loadMs - 1000).toISOString() });
      const [late] = await controller.recover();
      expect(late).toMatchObject({ slot: "0", outcome: "unhealthy" });
      expect(late?.reason).toContain("unreachable");
      expect(alive(proc.pid)).toBe(true);
      await controller.unload("0");
      expect(await proc.exited).toBe(0);
    },
    SLOW,
  );

  it(
    "notices a crash caused by a completion request and restarts the server",
    async () => {
      const { controller } = await setup([{ id: "tiny", restart: "on-failure" }]);
      const first = await controller.load("tiny", { gpu: 0 });
      const supervisor = createSupervisor(controller, { intervalMs: 200 });
      supervisors.push(supervisor);
      supervisor.start();

      // The tiny model has no tokenizer: llama-server aborts on the first prompt, mid-request.
      const answer = await fetch(`http://${HOST}:${first.entry.port}/completion`, {
        method: "POST",
        body: JSON.stringify({ prompt: "hi" }),
      }).catch((error: Error) => error);
      expect(answer).toBeInstanceOf(Error);
      await waitFor("the crashed server is gone", () => !alive(first.entry.pid));

      await waitFor("a restarted server is running", async () => {
        const entry = await controller.registry.get("0");
        return (
          entry !== undefined && entry.pid !== first.entry.pid && entry.status === "running" && entry.restarts === 1
        );
      });
      const entry = (await controller.registry.get("0"))!;
      expect(entry).toMatchObject({ port: first.entry.port, model_id: "tiny" });
      expect(await healthy(entry.port)).toBe(true);
      // The supervisor records "restarted" just after it sets restarts: 1, so wait for it too.
      const history = () => controller.registry.history.read({ slot: "0" });
      const restarted = async () => (await history()).some((e) => e.event === "restarted" && e.pid === entry.pid);
      await waitFor("the restart is in the history", restarted);
      expect((await history()).find((e) => e.event === "status" && e.to === "exited")?.reason).toContain("crashed");
      // The crash report: this process spawned it, so it knows the abort; the log holds llama.cpp's own last words.
      const report = (await history()).find((e) => e.event === "crash-report")?.report;
      console.log(
        `real llama-server crash report: ${report?.exit.signal ?? report?.exit.code}, ${report?.log_tail.length} log lines, restart: ${report?.restart.reason}`,
      );
      expect(report?.exit).toMatchObject({ known: true, signal: "SIGABRT" });
      expect(report?.log_tail.length).toBeGreaterThan(10);
      expect(report?.restart).toMatchObject({ decision: "restart", attempt: 1 });
      await supervisor.stop();
      await controller.unload("0");
    },
    SLOW,
  );
});

/** A port in this home's range that nothing listens on, for the server started by hand. */
async function freePortNear(controller: Controller, besides?: number): Promise<number> {
  const [low, high] = controller.config.ports.range;
  for (let port = high; port > low; port--) if (port !== besides && canBind(port)) return port;
  throw new Error(`no free port in ${low}-${high}`);
}
