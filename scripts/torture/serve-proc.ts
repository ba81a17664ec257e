/**
 * `corral serve` as a real process (packages/api/src/main.ts), for the scenarios that SIGKILL it
 * or watch it refuse to start. Its output goes to a file, so a killed server never dies of a
 * full pipe and the scenario can read what it said.
 */

import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort } from "../../packages/core/test/fixtures/index.ts";
import { type Scope, until } from "./scope.ts";

const MAIN = join(import.meta.dir, "..", "..", "packages", "api", "src", "main.ts");

/**
 * A `corral serve` process.
 * @example
 * const res = await fetch(`${server.url}/api/v1/health`)
 */
export interface ServeProcess {
  readonly proc: Subprocess;
  readonly port: number;
  readonly url: string;
  /** everything it printed so far */
  output(): string;
  /** the token it made in `<home>/token` on its first start (what a user's page link carries) */
  token(): string;
}

/**
 * How a start went: listening, or exited (with its code and output), or neither in time.
 * @example
 * if (!start.server) console.error(start.exitCode, start.output)
 */
export interface ServeStart {
  readonly server: ServeProcess | undefined;
  readonly exitCode: number | null;
  readonly output: string;
}

/**
 * Starts `bun packages/api/src/main.ts --home … --config … --port <free>` and waits until it
 * listens or exits. Tracked by the scope, so cleanup kills it.
 * @default timeoutMs = 30000
 * @example
 * const { server } = await startServe(scope, home, configFile); server?.proc.kill("SIGKILL")
 */
export async function startServe(
  scope: Scope,
  home: string,
  configFile: string,
  timeoutMs = 30_000,
): Promise<ServeStart> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const logFile = join(scope.tempDir("serve-log"), "serve.log");
    const fd = openSync(logFile, "a");
    let proc: Subprocess;
    try {
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("CORRAL_")) env[k] = v;
      proc = Bun.spawn([process.execPath, MAIN, "--home", home, "--config", configFile, "--port", String(port)], {
        stdio: ["ignore", fd, fd],
        env,
      });
    } finally {
      closeSync(fd);
    }
    scope.track(proc.pid);
    const output = () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : "");
    const listening = await until(() => output().includes("listening on") || proc.exitCode !== null, timeoutMs);
    if (listening && proc.exitCode === null) {
      const token = () => readFileSync(join(home, "token"), "utf8").trim();
      return {
        server: { proc, port, url: `http://127.0.0.1:${port}`, output, token },
        exitCode: null,
        output: output(),
      };
    }
    if (!listening) proc.kill("SIGKILL");
    await proc.exited;
    // Someone else took the free port between our look and its bind: try another.
    if (/PORT_IN_USE|already in use/i.test(output()) && attempt < 3) continue;
    return { server: undefined, exitCode: listening ? proc.exitCode : null, output: output() };
  }
}

/**
 * Starts `corral serve` expecting it to refuse: returns its exit code and output. One that
 * does start is stopped at once (and reported with exit code null).
 * @default timeoutMs = 30000
 * @example
 * const run = await runServe(scope, home, configFile); if (run.exitCode === 0) console.log("it started")
 */
export async function runServe(
  scope: Scope,
  home: string,
  configFile: string,
  timeoutMs = 30_000,
): Promise<ServeStart> {
  const start = await startServe(scope, home, configFile, timeoutMs);
  if (start.server) {
    start.server.proc.kill("SIGKILL");
    await start.server.proc.exited;
  }
  return start;
}
