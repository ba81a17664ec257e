/**
 * Helpers for the CLI's process-level tests: a temp corral home whose corral.yaml points at
 * the stand-in llama-server, corral run as a real subprocess, and a real pseudo-terminal
 * (tmux on a socket of its own) for the interactive flows.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, standInServer, waitFor } from "../../core/test/fixtures/index.ts";

/** corral's entry point, run as `bun <MAIN>` like `bun run corral` does. */
export const MAIN = join(import.meta.dir, "..", "src", "main.ts");
/** The repository root (the working folder of every corral subprocess). */
export const REPO = join(import.meta.dir, "..", "..", "..");

/** A temp corral home with two configured models on the stand-in llama-server. */
export interface TestHome {
  readonly dir: string;
  readonly configFile: string;
  readonly modelFile: string;
  /** configured ports of model "tiny" (GPU 0), "other" (GPU 1) and "slow" (GPU 2, never ready within a test) */
  readonly ports: { readonly tiny: number; readonly other: number; readonly slow: number };
  /** unloads (SIGKILL) whatever is still registered in this home, then deletes it */
  cleanup(): Promise<void>;
}

/**
 * Creates a home. `loadMs` is how long the stand-in answers 503 "loading" before 200.
 * @default loadMs = 200
 * @example
 * const home = await makeHome(); afterAll(() => home.cleanup())
 */
export async function makeHome(options: { readonly loadMs?: number } = {}): Promise<TestHome> {
  const dir = mkdtempSync(join(tmpdir(), "corral-cli-test-"));
  const modelFile = join(dir, "tiny.gguf");
  writeFileSync(modelFile, "GGUF not really a model\n");
  const exe = await standInServer();
  const ports = { tiny: await freePort(), other: await freePort(), slow: await freePort() };
  const loadMs = String(options.loadMs ?? 200);
  const configFile = join(dir, "corral.yaml");
  writeFileSync(
    configFile,
    [
      `llama_server: ${JSON.stringify(exe)}`,
      "timeouts: { load_ms: 20000, stop_ms: 3000, health_ms: 1000 }",
      "gpu_release_wait_ms: 0",
      "ports: { gpu: {} }",
      "models:",
      "  - id: tiny",
      "    name: Tiny Test Model",
      `    path: ${JSON.stringify(modelFile)}`,
      "    gpu: 0",
      `    port: ${ports.tiny}`,
      `    args: ["--fake-load-ms", "${loadMs}"]`,
      "  - id: other",
      `    path: ${JSON.stringify(modelFile)}`,
      "    gpu: 1",
      `    port: ${ports.other}`,
      `    args: ["--fake-load-ms", "${loadMs}"]`,
      "  - id: slow",
      `    path: ${JSON.stringify(modelFile)}`,
      "    gpu: 2",
      `    port: ${ports.slow}`,
      '    args: ["--fake-load-ms", "60000"]',
      "",
    ].join("\n"),
  );
  return {
    dir,
    configFile,
    modelFile,
    ports,
    async cleanup() {
      for (const { slot, pid } of registered(dir)) {
        const r = await corral({ dir }, ["unload", slot, "--force", "--yes"]);
        // Unload refuses a PID that is no longer our process; only then is nothing left to stop.
        if (r.code !== 0 && isAlive(pid))
          console.warn(`cleanup: could not unload slot ${slot} (pid ${pid}): ${r.stderr}`);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The slots and PIDs registered in a home's processes.json, read straight from the file.
 * @example
 * registered(home.dir) // [{ slot: "0", pid: 4242 }]
 */
export function registered(dir: string): { slot: string; pid: number }[] {
  const file = join(dir, "processes.json");
  if (!existsSync(file)) return [];
  const doc = JSON.parse(readFileSync(file, "utf8")) as { processes: Record<string, { pid: number }> };
  return Object.entries(doc.processes).map(([slot, entry]) => ({ slot, pid: entry.pid }));
}

/**
 * Whether a PID exists (signal 0).
 * @example
 * isAlive(process.pid) // true
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether a PID is gone or a zombie: a killed detached server may linger as a zombie until reaped.
 * @example
 * await waitFor(() => isGone(pid))
 */
export function isGone(pid: number): boolean {
  if (!isAlive(pid)) return true;
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

/** What a corral subprocess did. */
export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `bun packages/cli/src/main.ts --home <home> …args` with stdin closed (so never a terminal)
 * and colour off, and waits for it.
 * @example
 * const { code, stdout } = await corral(home, ["ls", "--json"])
 */
export async function corral(
  home: Pick<TestHome, "dir"> | undefined,
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): Promise<RunResult> {
  const proc = spawnCorral(home, args, env);
  const [code, stdout, stderr] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  return { code, stdout, stderr };
}

/**
 * Starts corral without waiting (for `logs --follow` and `serve`).
 * @example
 * const proc = spawnCorral(home, ["serve", "--port", "0"])
 */
export function spawnCorral(
  home: Pick<TestHome, "dir"> | undefined,
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
) {
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, NO_COLOR: "1", FORCE_COLOR: undefined, ...env })) {
    if (v !== undefined) merged[k] = v;
  }
  const homeArgs = home ? ["--home", home.dir] : [];
  return Bun.spawn([process.execPath, MAIN, ...homeArgs, ...args], {
    cwd: REPO,
    env: merged,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
}

/**
 * Reads a growing stream until `match` appears in it, returning everything read so far.
 * @example
 * await readUntil(proc.stdout, /serving on/)
 */
export async function readUntil(
  stream: ReadableStream<Uint8Array>,
  match: RegExp,
  timeoutMs = 20_000,
): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + timeoutMs;
  try {
    while (!match.test(text)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${match} in:\n${text}`);
      const chunk = await Promise.race([reader.read(), Bun.sleep(left).then(() => undefined)]);
      if (!chunk) continue;
      if (chunk.done) throw new Error(`stream ended before ${match} appeared:\n${text}`);
      text += decoder.decode(chunk.value, { stream: true });
    }
    return text;
  } finally {
    reader.releaseLock();
  }
}

export { waitFor };
