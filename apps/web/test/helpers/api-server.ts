/**
 * The real `corral serve` as a subprocess (`bun packages/cli/src/main.ts --home <temp> serve`), over
 * a temp home whose corral.yaml points `llama_server` at the stand-in fixture. The CLI is where the
 * API and the page are composed (@corral/api does not depend on the page), so this is the page
 * exactly as users get it; a subprocess also keeps its signals and stdout apart from the test's.
 */

import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { freePort, standInServer, waitFor } from "../../../../packages/core/test/fixtures/index.ts";

export { freePort, spawnStandIn, waitFor } from "../../../../packages/core/test/fixtures/index.ts";

const MAIN = resolve(import.meta.dir, "../../../../packages/cli/src/main.ts");

/** The fake nvidia-smi's folder (it prints three recorded GPUs); put it first on PATH for GPU figures. */
export const FAKE_NVIDIA_SMI_DIR = resolve(import.meta.dir, "../../../../packages/core/test/fixtures/nvidia-smi");

/** Options of {@link startApi}. */
export interface StartApiOptions {
  /** CORRAL_TOKEN of the server @default none: the server makes its own in `<home>/token` */
  readonly token?: string;
  /** a folder put first on the server's PATH, e.g. {@link FAKE_NVIDIA_SMI_DIR} @default none */
  readonly pathFirst?: string;
  /** more keys of corral.yaml, e.g. `{ watch: { interval_ms: 200 } }` @default none */
  readonly config?: Readonly<Record<string, unknown>>;
}

/** A model in the temp home's config. */
export interface TestModel {
  readonly id: string;
  /** stand-in flags, e.g. ["--fake-load-ms", "1500"] */
  readonly args?: readonly string[];
  /** its `gpu` slot, so the gateway can load it on demand @default none */
  readonly gpu?: string;
}

/** A running API subprocess. */
export interface ApiServer {
  readonly url: string;
  /** the server's token: CORRAL_TOKEN where given, else the one it made in `<home>/token` */
  readonly token: string;
  /** the page's link as `corral serve` prints it: with the server's own token in the fragment (none with CORRAL_TOKEN) */
  readonly pageUrl: string;
  readonly home: string;
  readonly exe: string;
  /** what it printed so far */
  output(): string;
  /** stops the API, SIGKILLs the llama-servers its registry ever recorded, removes the home */
  stop(): Promise<void>;
}

/**
 * Starts the API on a free port and waits until its health route answers.
 * @example
 * const api = await startApi([{ id: "tiny", args: ["--fake-load-ms", "1500"] }], { token: "s3cret" })
 */
export async function startApi(models: readonly TestModel[], options: StartApiOptions = {}): Promise<ApiServer> {
  const home = mkdtempSync(join(tmpdir(), "corral-web-"));
  const exe = await standInServer();
  const [port, base] = [await freePort(), await freePort()];
  const config = {
    llama_server: exe,
    host: "127.0.0.1",
    ports: { range: [base, Math.min(base + 40, 65_535)], gpu: {} },
    timeouts: { load_ms: 20_000, stop_ms: 3_000, health_ms: 1_000 },
    gpu_release_wait_ms: 0,
    models: models.map((m) => {
      const path = join(home, `${m.id}.gguf`);
      writeFileSync(path, "GGUF stand-in model\n");
      return { id: m.id, path, args: m.args ?? [], ...(m.gpu === undefined ? {} : { gpu: m.gpu }) };
    }),
    ...options.config,
  };
  // JSON is YAML: corral.yaml holds it as is.
  writeFileSync(join(home, "corral.yaml"), JSON.stringify(config, null, 2));
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env))
    if (value !== undefined && key !== "CORRAL_TOKEN") env[key] = value;
  if (options.token) env.CORRAL_TOKEN = options.token;
  if (options.pathFirst) env.PATH = `${options.pathFirst}:${env.PATH ?? ""}`;
  const proc = Bun.spawn([process.execPath, MAIN, "--home", home, "serve", "--port", String(port)], {
    env,
    stdout: "pipe",
    stderr: "pipe",
  });
  let output = "";
  for (const stream of [proc.stdout, proc.stderr]) {
    void (async () => {
      const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
      for (let r = await reader.read(); !r.done; r = await reader.read()) output += r.value;
    })();
  }
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => proc.exitCode === null && (await fetch(`${url}/api/v1/health`)).ok,
    20_000,
    `the API on ${url}`,
  ).catch((e: Error) => {
    proc.kill("SIGKILL");
    throw new Error(`${e.message}\n${output}`);
  });
  const token = options.token ?? readFileSync(join(home, "token"), "utf8").trim();
  const pageUrl = options.token ? `${url}/` : `${url}/#token=${token}`;
  return { url, token, pageUrl, home, exe, output: () => output, stop: () => stop(proc, url, home, exe, token) };
}

async function stop(
  proc: Subprocess,
  url: string,
  home: string,
  exe: string,
  token: string | undefined,
): Promise<void> {
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  const history = (await fetch(`${url}/api/v1/history?limit=10000`, { headers })
    .then((r) => r.json())
    .catch(() => ({ events: [] }))) as { events?: Array<{ pid?: number }> };
  proc.kill("SIGTERM");
  await Promise.race([proc.exited, Bun.sleep(5000)]);
  proc.kill("SIGKILL");
  const pids = new Set((history.events ?? []).flatMap((e) => (typeof e.pid === "number" ? [e.pid] : [])));
  killStandIns(pids, exe);
  rmSync(home, { recursive: true, force: true });
}

/**
 * SIGKILLs each PID's process group, but only while the PID still runs the stand-in executable:
 * a PID this test once saw may belong to someone else's process by now.
 * @example
 * killStandIns([orphan.pid], api.exe)
 */
export function killStandIns(pids: Iterable<number>, exe: string): void {
  for (const pid of pids) {
    const link = `/proc/${pid}/exe`;
    let current: string | undefined;
    try {
      current = existsSync(link) ? readlinkSync(link).replace(/ \(deleted\)$/, "") : undefined;
    } catch {
      current = undefined;
    }
    if (current !== exe) continue;
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}
