/**
 * The other-user half of scenario 8 (hostile clients), as user `nobody` through setpriv: adopting
 * another user's server, a stdout file swapped for a symlink to a root-only file after adoption,
 * a hand-edited `log_file`, and symlinks planted in a home that others can write. corral, running
 * as root, must never hand out a file nobody could not read, and never write where nobody points it.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, closeSync, copyFileSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type Controller, createController } from "@corral/core";
import { createApp } from "../../packages/api/src/index.ts";
import { freePort, standInServer } from "../../packages/core/test/fixtures/index.ts";
import { bearer, TORTURE_TOKEN } from "./auth.ts";
import { makeHome } from "./home.ts";
import { type Scope, until } from "./scope.ts";
import { runServe } from "./serve-proc.ts";
import type { ScenarioOptions, Tally } from "./types.ts";

const NOBODY = 65_534;
const AS_NOBODY = ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"];
const SECRET = "root:$6$torture-secret-hash:19000:0:99999:7:::";

type App = ReturnType<typeof createApp>;

/** Runs a command as nobody; true when it exits 0. */
function asNobody(argv: readonly string[]): boolean {
  return spawnSync(AS_NOBODY[0] ?? "setpriv", [...AS_NOBODY.slice(1), ...argv]).status === 0;
}

/**
 * The nobody checks of scenario 8, counted in its tally; skipped (with a note) where the run is not
 * root or has no setpriv.
 * @example
 * await hostileUsers(scope, tally, options)
 */
export async function hostileUsers(scope: Scope, tally: Tally, options: ScenarioOptions): Promise<void> {
  if (process.getuid?.() !== 0 || !Bun.which("setpriv")) {
    tally.note("not root or no setpriv: the other-user part did not run");
    return;
  }
  const secret = join(scope.tempDir("hostile-secret"), "shadow");
  writeFileSync(secret, `${SECRET}\n`, { mode: 0o600 });
  const h = await makeHome(scope, join(scope.tempDir("hostile-users"), "home"), [{ id: "tiny" }]);
  const controller = await createController({
    home: h.home,
    configFile: h.configFile,
    probe: scope.probe(),
    gpuQuery: async () => undefined,
  });
  const app = createApp({ controller, token: TORTURE_TOKEN });
  const server = await nobodyServer(scope);
  if (!server) {
    tally.note("nobody cannot run a copy of the stand-in here: the other-user part did not run");
    return;
  }
  await adoptRefused(app, server.pid, tally);
  await swappedStdout(app, controller, server, secret, tally);
  await handEdited(app, controller, server.pid, secret, tally);
  await plantedHome(scope, secret, tally);
  options.log(`hostile clients: other users done, ${tally.failures} failures so far`);
}

interface NobodyServer {
  readonly pid: number;
  /** its stdout file, in a folder nobody owns */
  readonly stdout: string;
}

async function nobodyServer(scope: Scope): Promise<NobodyServer | undefined> {
  const dir = scope.tempDir("hostile-nobody");
  chmodSync(dir, 0o755);
  chownSync(dir, NOBODY, NOBODY);
  const exe = join(dir, "llama-server");
  copyFileSync(await standInServer(), exe);
  chmodSync(exe, 0o755);
  if (!asNobody(["test", "-x", exe])) return undefined;
  const stdout = join(dir, "stdout.log");
  writeFileSync(stdout, "");
  chownSync(stdout, NOBODY, NOBODY);
  const port = await freePort();
  const fd = openSync(stdout, "a");
  let pid: number;
  try {
    const argv = [...AS_NOBODY, exe, "--host", "127.0.0.1", "--port", String(port), "-m", "/models/n.gguf"];
    pid = Bun.spawn(argv, {
      stdio: ["ignore", fd, fd],
      env: { PATH: process.env.PATH ?? "/usr/bin" },
      detached: true,
    }).pid;
  } finally {
    closeSync(fd);
  }
  scope.track(pid);
  const up = await until(
    async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok,
    20_000,
  );
  return up ? { pid, stdout } : undefined;
}

async function post(app: App, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await app.handle(
    new Request(`http://localhost${path}`, {
      method: "POST",
      headers: bearer({ "content-type": "application/json" }),
      body: JSON.stringify(body),
    }),
  );
  return { status: res.status, json: await res.json().catch(() => undefined) };
}

async function get(app: App, path: string): Promise<{ status: number; text: string }> {
  const res = await app.handle(new Request(`http://localhost${path}`, { headers: bearer() }));
  return { status: res.status, text: await res.text() };
}

async function adoptRefused(app: App, pid: number, tally: Tally): Promise<void> {
  tally.trial();
  const r = await post(app, `/api/v1/orphans/${pid}/adopt`, { slot: "6" });
  tally.check(r.status === 403, () => `adopting nobody's server without include_foreign answered ${r.status}`);
}

/** Adopted on purpose (include_foreign), then nobody swaps its stdout file for a symlink to a root-only file. */
async function swappedStdout(app: App, c: Controller, s: NobodyServer, secret: string, tally: Tally) {
  tally.trial();
  const r = await post(app, `/api/v1/orphans/${s.pid}/adopt`, { slot: "6", include_foreign: true });
  if (!tally.check(r.status === 200, () => `adopt with include_foreign answered ${r.status} ${JSON.stringify(r.json)}`))
    return;
  const entry = await c.registry.get("6");
  tally.check(entry?.log_file === s.stdout, () => `the adopted log_file is ${entry?.log_file}, not its stdout file`);
  const ok = await get(app, "/api/v1/logs?gpu_id=6");
  tally.check(ok.status === 200, () => `its own stdout file was not served: ${ok.status} ${ok.text.slice(0, 200)}`);
  tally.check(
    asNobody(["sh", "-c", `rm -f '${s.stdout}' && ln -s '${secret}' '${s.stdout}'`]),
    "nobody could not plant",
  );
  for (const path of ["/api/v1/logs?gpu_id=6", "/api/v1/logs?gpu_id=6&lines=5"]) {
    tally.trial();
    const swapped = await get(app, path);
    tally.check(
      swapped.status === 403 && swapped.text.includes("UNSAFE_PATH") && !swapped.text.includes("torture-secret-hash"),
      () => `after the swap ${path} answered ${swapped.status}: ${swapped.text.slice(0, 200)}`,
    );
  }
}

/** A `log_file` edited by hand in processes.json to a root-only file, on nobody's entry. */
async function handEdited(app: App, c: Controller, pid: number, secret: string, tally: Tally): Promise<void> {
  tally.trial();
  await c.registry.store.update((entries) => {
    const e = entries["6"];
    if (e) entries["6"] = { ...e, pid, log_file: secret };
  });
  const r = await get(app, "/api/v1/logs?gpu_id=6");
  tally.check(
    r.status === 403 && !r.text.includes("torture-secret-hash"),
    () => `a hand-edited log_file of another user's entry answered ${r.status}: ${r.text.slice(0, 200)}`,
  );
}

/** A home that others can write, with nobody's symlinks in it: corral must refuse to start and write nothing. */
async function plantedHome(scope: Scope, secret: string, tally: Tally): Promise<void> {
  const h = await makeHome(scope, join(scope.tempDir("hostile-planted"), "home"), [{ id: "tiny" }]);
  chmodSync(dirname(h.home), 0o755); // nobody must reach the home to plant in it
  chmodSync(h.home, 0o777);
  const planted = ["history.jsonl", "processes.json.lock", "token", "logs"];
  tally.trial();
  tally.check(
    asNobody(["sh", "-c", planted.map((n) => `ln -s '${secret}' '${join(h.home, n)}'`).join(" && ")]),
    "nobody could not plant symlinks in the open home",
  );
  const run = await runServe(scope, h.home, h.configFile);
  tally.check(
    run.exitCode === 1,
    () => `corral serve in a world-writable home exited ${run.exitCode}: ${run.output.slice(-300)}`,
  );
  tally.check(
    run.output.includes(h.home) && run.output.includes("chmod 700"),
    () => `the refusal does not name the home and the fix: ${run.output.slice(-300)}`,
  );
  tally.check(readFileSync(secret, "utf8") === `${SECRET}\n`, "the planted symlinks' target was written");
}
