/**
 * Scenario 6, other users' processes: llama-server stand-ins running as `nobody` (through
 * setpriv), unmarked, marked by another corral home, and with a tree of children. corral must
 * report them as foreign and leave them alone through every path that kills (orphan cleanup,
 * kill by pid, kill by name, recovery, the API) unless foreign processes are explicitly
 * included, and then kill the whole tree.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, closeSync, copyFileSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Controller, createController, defaultProbe, descendantsIn, NotOurProcessError } from "@corral/core";
import { createApp } from "../../packages/api/src/index.ts";
import { freePort, standInServer } from "../../packages/core/test/fixtures/index.ts";
import { bearer, TORTURE_TOKEN } from "./auth.ts";
import { makeHome } from "./home.ts";
import { Scope, startTicks, stillAlive, until } from "./scope.ts";
import { messageOf, type Scenario, type ScenarioOptions, type ScenarioResult, Tally } from "./types.ts";

/**
 * Scenario 6: llama-servers of user nobody are foreign and survive every kill path unless included.
 * @example
 * const result = await foreignUsers.run({ form: "short", seed: 1, log: console.error })
 */
export const foreignUsers: Scenario = {
  id: 6,
  name: "other users' processes",
  run: runForeignUsers,
};

const NOBODY = 65_534;
const AS_NOBODY = ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"];

/** One foreign server and the processes of its tree, with their start times. */
interface Foreign {
  readonly pid: number;
  readonly logFile: string;
  readonly tree: ReadonlyMap<number, number | undefined>;
}

interface Variant {
  readonly name: string;
  readonly env: Record<string, string>;
  readonly args: readonly string[];
}

type App = ReturnType<typeof createApp>;

async function runForeignUsers(options: ScenarioOptions): Promise<ScenarioResult> {
  const tally = new Tally(foreignUsers.id, foreignUsers.name);
  if (process.getuid?.() !== 0) {
    tally.skip("not root: cannot start processes as another user here");
    return tally.result();
  }
  if (!Bun.which("setpriv")) {
    tally.skip("setpriv is not installed: cannot start processes as another user here");
    return tally.result();
  }
  const scope = new Scope();
  try {
    const exe = await nobodyExecutable(scope);
    if (!exe) {
      tally.skip("nobody cannot execute a copy of the stand-in here (noexec temp folder?)");
      return tally.result();
    }
    const h = await makeHome(scope, scope.tempDir("foreign-home"), [{ id: "tiny" }]);
    const controller = await createController({
      home: h.home,
      configFile: h.configFile,
      probe: scope.probe(),
      gpuQuery: async () => undefined,
    });
    const app = createApp({ controller, token: TORTURE_TOKEN });
    const variants: Variant[] = [
      { name: "unmarked", env: {}, args: [] },
      { name: "marked by another corral home", env: { CORRAL_HOME_ID: "0123456789abcdef" }, args: [] },
      { name: "unmarked, with a child and a grandchild", env: {}, args: ["--fake-child", "--fake-grandchild"] },
      // Anyone can copy an environment variable: our marker on another user's process proves nothing.
      {
        name: "carrying this home's own marker",
        env: { CORRAL_HOME_ID: controller.registry.homeId, CORRAL_SLOT: "0" },
        args: [],
      },
    ];
    const repetitions = options.form === "long" ? 3 : 1;
    for (let rep = 0; rep < repetitions; rep++) {
      for (const [i, variant] of variants.entries()) {
        const foreign = await startForeign(scope, exe, variant);
        await leftAlone(controller, app, foreign, variant.name, tally);
        // Once explicitly included, it goes, tree and all: through core, or through the API.
        await killIncluded(controller, app, foreign, variant.name, i % 2 === 1, tally);
        options.log(`other users: ${variant.name}: ${tally.failures} failures so far`);
      }
    }
  } catch (error) {
    tally.fail(`the scenario itself failed: ${messageOf(error)}`);
  } finally {
    await scope.cleanup();
  }
  return tally.result();
}

/** The stand-in copied into a folder nobody may enter (0755), itself 0755; undefined when nobody still cannot run it. */
async function nobodyExecutable(scope: Scope): Promise<string | undefined> {
  const dir = scope.tempDir("foreign-bin");
  chmodSync(dir, 0o755);
  const exe = join(dir, "llama-server");
  copyFileSync(await standInServer(), exe);
  chmodSync(exe, 0o755);
  return spawnSync(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), "test", "-x", exe]).status === 0 ? exe : undefined;
}

async function startForeign(scope: Scope, exe: string, variant: Variant): Promise<Foreign> {
  const port = await freePort();
  const logFile = join(scope.tempDir("foreign-log"), "llama-server.log");
  const fd = openSync(logFile, "a");
  let pid: number;
  try {
    const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/", ...variant.env };
    // setpriv execs the server: the PID we get is the server's.
    const argv = [
      ...AS_NOBODY,
      exe,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "-m",
      "/models/foreign.gguf",
      ...variant.args,
    ];
    pid = Bun.spawn(argv, { stdio: ["ignore", fd, fd], env, detached: true }).pid;
  } finally {
    closeSync(fd);
  }
  scope.track(pid);
  const healthy = await until(async () => {
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    return res.ok && res.headers.get("x-stand-in-pid") === String(pid);
  }, 20_000);
  if (!healthy) throw new Error(`the foreign stand-in did not come up: ${readFileSync(logFile, "utf8").slice(-500)}`);
  const table = new Map((await defaultProbe().list()).map((p) => [p.pid, p]));
  const tree = new Map<number, number | undefined>([[pid, startTicks(pid)]]);
  for (const d of descendantsIn(table, pid)) tree.set(d.pid, startTicks(d.pid));
  if (table.get(pid)?.uid !== NOBODY)
    throw new Error(`the foreign stand-in runs as uid ${table.get(pid)?.uid}, not ${NOBODY}`);
  return { pid, logFile, tree };
}

function untouched(f: Foreign): string | undefined {
  for (const [pid, ticks] of f.tree) if (!stillAlive(pid, ticks)) return `pid ${pid} of its tree is gone`;
  if (/cleaning up before exit/.test(readFileSync(f.logFile, "utf8"))) return "it got a signal";
  return undefined;
}

async function post(app: App, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await app.handle(
    new Request(`http://localhost${path}`, {
      method: "POST",
      headers: bearer(body === undefined ? {} : { "content-type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  return { status: res.status, json: await res.json().catch(() => undefined) };
}

/** Every path that kills, without foreign processes included: each must refuse or skip it. */
async function leftAlone(c: Controller, app: App, f: Foreign, variant: string, tally: Tally): Promise<void> {
  const { registry } = c;
  const checks: Record<string, () => Promise<string | undefined>> = {
    "findOrphans calls it foreign": async () => {
      const o = (await registry.findOrphans()).find((x) => x.pid === f.pid);
      return o?.verdict === "foreign" && o.uid === NOBODY
        ? undefined
        : `verdict ${o?.verdict ?? "not found"}, uid ${o?.uid}`;
    },
    "cleanupOrphans() skips it": async () => {
      const r = (await registry.cleanupOrphans({ timeoutMs: 2000 })).find((x) => x.pid === f.pid);
      return r && !r.killed && /foreign/.test(r.reason ?? "") ? undefined : `result ${JSON.stringify(r)}`;
    },
    "cleanupOrphans({ pids }) skips it": async () => {
      const r = (await registry.cleanupOrphans({ pids: [f.pid], timeoutMs: 2000 })).find((x) => x.pid === f.pid);
      return r && !r.killed ? undefined : `result ${JSON.stringify(r)}`;
    },
    "kill by pid refuses": () => refuses(() => c.kill({ pid: f.pid }, { timeoutMs: 2000 })),
    "kill by name refuses": () => refuses(() => c.kill({ name: "llama-server" }, { timeoutMs: 2000 })),
    "recover leaves it": async () => {
      const report = await c.recover();
      return report.some((r) => r.pid === f.pid) ? `recover acted on it: ${JSON.stringify(report)}` : undefined;
    },
    "POST /orphans/:pid/kill is 403": async () => {
      const r = await post(app, `/api/v1/orphans/${f.pid}/kill`);
      return r.status === 403 ? undefined : `answered ${r.status} ${JSON.stringify(r.json)}`;
    },
    "POST /cleanup-orphaned kills nothing": async () => {
      const r = await post(app, "/api/v1/cleanup-orphaned");
      return r.status === 200 && r.json?.killed_count === 0
        ? undefined
        : `answered ${r.status} ${JSON.stringify(r.json)}`;
    },
    "POST /kill with its pid is 403": async () => {
      const r = await post(app, "/api/v1/kill", { pid: f.pid });
      return r.status === 403 ? undefined : `answered ${r.status} ${JSON.stringify(r.json)}`;
    },
  };
  for (const [name, check] of Object.entries(checks)) {
    tally.trial();
    try {
      const wrong = await check();
      if (wrong) tally.fail(`${variant}: ${name}: ${wrong}`);
    } catch (error) {
      tally.fail(`${variant}: ${name}: threw ${messageOf(error)}`);
    }
    await Bun.sleep(20);
    const harmed = untouched(f);
    if (harmed) tally.fail(`${variant}: after "${name}": ${harmed}`);
  }
}

async function refuses(op: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await op();
    return "it did not refuse";
  } catch (error) {
    const all = error instanceof AggregateError ? error.errors : [error];
    return all.every((e) => e instanceof NotOurProcessError) ? undefined : `refused with ${messageOf(error)}`;
  }
}

async function killIncluded(
  c: Controller,
  app: App,
  f: Foreign,
  variant: string,
  viaApi: boolean,
  tally: Tally,
): Promise<void> {
  tally.trial();
  try {
    if (viaApi) {
      const r = await post(app, `/api/v1/orphans/${f.pid}/kill?include_foreign=true`);
      tally.check(
        r.status === 200 && r.json?.killed === true,
        `${variant}: POST /orphans/:pid/kill?include_foreign=true answered ${r.status}`,
      );
    } else {
      const [r] = await c.registry.cleanupOrphans({ pids: [f.pid], includeForeign: true, timeoutMs: 3000 });
      tally.check(
        r?.killed === true,
        `${variant}: cleanupOrphans({ includeForeign: true }) did not kill it: ${JSON.stringify(r)}`,
      );
    }
  } catch (error) {
    tally.fail(`${variant}: killing it explicitly threw ${messageOf(error)}`);
  }
  const gone = await until(() => [...f.tree].every(([pid, ticks]) => !stillAlive(pid, ticks)), 5_000);
  tally.check(gone === true, `${variant}: explicitly included, its tree was not all killed`);
}
