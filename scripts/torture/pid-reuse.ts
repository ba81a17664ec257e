/**
 * Scenario 7, PID reuse: registry entries whose PID now belongs to another program (a copy
 * of `sleep` named redis-server) or to another llama-server started later. Whatever corral is
 * asked to do with such an entry (verify, unload, kill, kill by pid or name, prune, recover,
 * the supervisor's crash restart, a load into the same slot, the API), it must never signal
 * that process: it says pid-reused, refuses, or drops the entry without signalling.
 */
import { readFileSync } from "node:fs";
import {
  type Controller,
  createController,
  createSupervisor,
  defaultProbe,
  NotOurProcessError,
  type ProcessEntry,
} from "@corral/core";
import { createApp } from "../../packages/api/src/index.ts";
import { freePort, namedCopy, spawnStandIn } from "../../packages/core/test/fixtures/index.ts";
import { bearer, TORTURE_TOKEN } from "./auth.ts";
import { makeHome } from "./home.ts";
import { Scope, startTicks, stillAlive, until } from "./scope.ts";
import { messageOf, type Scenario, type ScenarioOptions, type ScenarioResult, Tally } from "./types.ts";

/**
 * Scenario 7: entries whose PID now belongs to another process are never signalled.
 * @example
 * const result = await pidReuse.run({ form: "short", seed: 1, log: console.error })
 */
export const pidReuse: Scenario = {
  id: 7,
  name: "PID reuse",
  run: runPidReuse,
};

const SLOT = "3";
const HOUR = 3_600_000;

/** A live process that an entry will wrongly point at. */
interface Victim {
  readonly what: string;
  readonly pid: number;
  readonly ticks: number | undefined;
  readonly startMs: number;
  readonly exe: string;
  /** the stand-in's log, to see whether it ever got SIGTERM */
  readonly logFile?: string;
}

/** One way an entry can point at the wrong process. */
interface Variant {
  readonly name: string;
  readonly victim: Victim;
  readonly fields: Partial<ProcessEntry>;
}

type Action = (c: Controller, v: Variant, app: ReturnType<typeof createApp>) => Promise<string | undefined>;

async function runPidReuse(options: ScenarioOptions): Promise<ScenarioResult> {
  const tally = new Tally(pidReuse.id, pidReuse.name);
  const scope = new Scope();
  try {
    const h = await makeHome(scope, scope.tempDir("pid-reuse"), [{ id: "tiny", restart: "on-failure" }], {
      restart: { backoff_ms: 50, backoff_max_ms: 200, stable_ms: 60_000, max_attempts: 2 },
    });
    const controller = await createController({
      home: h.home,
      configFile: h.configFile,
      probe: scope.probe(),
      gpuQuery: async () => undefined,
    });
    controller.registry.subscribe((e) => e.pid !== undefined && scope.track(e.pid));
    const app = createApp({ controller, token: TORTURE_TOKEN });
    const repetitions = options.form === "long" ? 3 : 1;
    for (let rep = 0; rep < repetitions; rep++) {
      const victims = [await sleeper(scope), await laterServer(scope)];
      for (const variant of variantsFor(victims)) {
        for (const [name, action] of Object.entries(ACTIONS)) {
          tally.trial();
          await runAction(controller, app, variant, name, action, tally);
        }
        options.log(`pid reuse: ${variant.name}: ${tally.failures} failures so far`);
      }
      await untrackedChecks(controller, victims[0]!, tally);
      for (const v of victims) if (stillAlive(v.pid, v.ticks)) process.kill(-v.pid, "SIGKILL");
    }
  } catch (error) {
    tally.fail(`the scenario itself failed: ${messageOf(error)}`);
  } finally {
    await scope.cleanup();
  }
  return tally.result();
}

async function victimOf(scope: Scope, what: string, pid: number, logFile?: string): Promise<Victim> {
  scope.track(pid);
  const info = await until(() => defaultProbe().get(pid), 5_000);
  if (!info?.startTimeMs || !info.exe) throw new Error(`cannot read ${what} (pid ${pid}) from /proc`);
  return {
    what,
    pid,
    ticks: startTicks(pid),
    startMs: info.startTimeMs,
    exe: info.exe,
    ...(logFile ? { logFile } : {}),
  };
}

/** A copy of `sleep` named redis-server: another program on the PID. */
async function sleeper(scope: Scope): Promise<Victim> {
  const exe = namedCopy(Bun.which("sleep") ?? "/bin/sleep", "redis-server");
  const proc = Bun.spawn([exe, "600"], { stdio: ["ignore", "ignore", "ignore"], detached: true });
  return victimOf(scope, "redis-server (a copied sleep)", proc.pid);
}

/** A llama-server started after the entry was written: the same name on the PID, another process. */
async function laterServer(scope: Scope): Promise<Victim> {
  const s = await spawnStandIn({ model: "/models/someone-else.gguf", wait: "healthy" });
  return victimOf(scope, "a llama-server started later", s.pid, s.logFile);
}

function variantsFor([redis, server]: Victim[]): Variant[] {
  const iso = (ms: number) => new Date(ms).toISOString();
  return [
    {
      name: "redis-server on the pid, recorded start an hour earlier",
      victim: redis!,
      fields: { proc_start_ms: redis!.startMs - HOUR, executable: "/opt/llama/llama-server" },
    },
    {
      name: "redis-server on the pid, legacy entry written before it started",
      victim: redis!,
      fields: { started_at: iso(redis!.startMs - HOUR) },
    },
    {
      name: "redis-server on the pid, legacy entry whose times fit",
      victim: redis!,
      fields: { started_at: iso(Date.now() + HOUR) },
    },
    {
      name: "later llama-server on the pid, recorded start an hour earlier",
      victim: server!,
      fields: { proc_start_ms: server!.startMs - HOUR, executable: server!.exe },
    },
    {
      name: "later llama-server on the pid, legacy entry written before it started",
      victim: server!,
      fields: { started_at: iso(server!.startMs - HOUR) },
    },
    {
      name: "llama-server on the pid with the recorded start but another executable",
      victim: server!,
      fields: { proc_start_ms: server!.startMs, executable: "/opt/old/llama-server" },
    },
  ];
}

/** Writes the stale entry straight into the store: register() would look the identity up and fix it. */
async function plant(c: Controller, v: Variant): Promise<void> {
  const port = await freePort();
  const entry: ProcessEntry = {
    pid: v.victim.pid,
    model_id: "tiny",
    model_name: "tiny",
    model_path: "/models/tiny.gguf",
    gpu_id: SLOT,
    port,
    started_at: new Date(v.victim.startMs - HOUR).toISOString(),
    command_line: ["llama-server", "-m", "/models/tiny.gguf", "--port", String(port)],
    status: "running",
    ...v.fields,
  };
  await c.registry.store.update((entries) => {
    for (const slot of Object.keys(entries)) delete entries[slot];
    entries[SLOT] = entry;
  });
}

/** Each action returns undefined when it behaved, else what went wrong. */
const ACTIONS: Record<string, Action> = {
  "verify says pid-reused": async (c) => {
    const { probe } = await c.registry.verify(SLOT);
    return probe.state === "pid-reused" ? undefined : `verify said ${probe.state}: ${probe.reason}`;
  },
  "unload drops it unsignalled": async (c) => {
    const r = await c.unload(SLOT, { timeoutMs: 2000 });
    const gone = (await c.registry.get(SLOT)) === undefined;
    return !r.signalled && gone ? undefined : `unload: signalled ${r.signalled}, entry still there: ${!gone}`;
  },
  "kill refuses": (c) => refuses(() => c.registry.kill(SLOT, { timeoutMs: 2000 })),
  "kill by pid refuses": (c, v) => refuses(() => c.kill({ pid: v.victim.pid }, { timeoutMs: 2000 })),
  "kill by name refuses": (c) => refuses(() => c.kill({ name: "tiny" }, { timeoutMs: 2000 })),
  "prune drops it": async (c) => {
    const gone = await c.registry.prune();
    return gone.some((g) => g.slot === SLOT) && !(await c.registry.get(SLOT))
      ? undefined
      : "prune kept the stale entry";
  },
  "recover drops it": async (c) => {
    const report = await c.recover();
    const mine = report.find((r) => r.slot === SLOT);
    return mine?.outcome === "removed" ? undefined : `recover said ${mine?.outcome ?? "nothing"} about slot ${SLOT}`;
  },
  "the supervisor's crash restart replaces it unsignalled": (c) => supervisorRestart(c),
  "a load into the slot replaces it unsignalled": async (c) => {
    const { entry } = await c.load("tiny", { gpu: SLOT });
    await c.unload(SLOT, { timeoutMs: 2000 });
    return entry.pid > 0 ? undefined : "the load gave no pid";
  },
  "DELETE /processes/:slot drops it unsignalled": async (_c, _v, app) => {
    const res = await app.handle(
      new Request(`http://localhost/api/v1/processes/${SLOT}`, { method: "DELETE", headers: bearer() }),
    );
    const body = (await res.json()) as { signalled?: boolean };
    return res.status === 200 && body.signalled === false
      ? undefined
      : `DELETE answered ${res.status} ${JSON.stringify(body)}`;
  },
  "POST /kill with its pid is 403": async (_c, v, app) => {
    const res = await app.handle(
      new Request("http://localhost/api/v1/kill", {
        method: "POST",
        headers: bearer({ "content-type": "application/json" }),
        body: JSON.stringify({ pid: v.victim.pid }),
      }),
    );
    return res.status === 403 ? undefined : `POST /kill answered ${res.status} ${await res.text()}`;
  },
};

async function refuses(op: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await op();
    return "it did not refuse";
  } catch (error) {
    const all = error instanceof AggregateError ? error.errors : [error];
    return all.every((e) => e instanceof NotOurProcessError)
      ? undefined
      : `refused with ${messageOf(error)}, not NotOurProcessError`;
  }
}

/** A supervisor tick sees the entry's process "crashed" and restarts the model: a new server, the victim untouched. */
async function supervisorRestart(c: Controller): Promise<string | undefined> {
  const supervisor = createSupervisor(c, { followHistory: false });
  try {
    await supervisor.tick();
    const restarted = await until(async () => {
      const e = await c.registry.get(SLOT);
      return (
        e &&
        e.status === "running" &&
        e.model_id === "tiny" &&
        (await c.registry.verify(SLOT)).probe.state === "running"
      );
    }, 20_000);
    return restarted ? undefined : `no restart within 20 s (slot holds ${JSON.stringify(await c.registry.get(SLOT))})`;
  } finally {
    await supervisor.stop();
    if (await c.registry.get(SLOT)) await c.unload(SLOT, { timeoutMs: 2000 }).catch(() => undefined);
  }
}

async function runAction(
  c: Controller,
  app: ReturnType<typeof createApp>,
  v: Variant,
  name: string,
  action: Action,
  tally: Tally,
): Promise<void> {
  const say = (what: string) => `${v.name}: ${name}: ${what}`;
  try {
    await plant(c, v);
    const wrong = await action(c, v, app);
    if (wrong) tally.fail(say(wrong));
  } catch (error) {
    tally.fail(say(`threw ${messageOf(error)}`));
  }
  await Bun.sleep(20); // a signal sent just now would have landed by then
  tally.check(stillAlive(v.victim.pid, v.victim.ticks), () => say(`${v.victim.what} (pid ${v.victim.pid}) was killed`));
  if (v.victim.logFile) {
    tally.check(!/cleaning up before exit/.test(readFileSync(v.victim.logFile, "utf8")), () =>
      say(`${v.victim.what} got a signal`),
    );
  }
  await c.registry.store.update((entries) => {
    for (const slot of Object.keys(entries)) delete entries[slot];
  });
}

/** The same process untracked: killing it by pid or cleaning it up as an orphan is refused too. */
async function untrackedChecks(c: Controller, redis: Victim, tally: Tally): Promise<void> {
  tally.trial();
  const byPid = await refuses(() => c.kill({ pid: redis.pid }));
  if (byPid) tally.fail(`untracked redis-server: kill by pid: ${byPid}`);
  const cleanup = await c.registry.cleanupOrphans({ pids: [redis.pid] });
  tally.check(
    cleanup.every((r) => !r.killed),
    "untracked redis-server: orphan cleanup killed it",
  );
  tally.check(stillAlive(redis.pid, redis.ticks), "untracked redis-server was killed");
}
