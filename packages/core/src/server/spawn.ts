import { randomUUID } from "node:crypto";
import { closeSync, writeSync } from "node:fs";
import type { ModelConfig } from "../config/load.ts";
import { LoadFailedError } from "../errors.ts";
import { MARKER_ENV } from "../process/types.ts";
import { rememberChild } from "./exits.ts";
import { logFileFor, openLogForAppend } from "./logs.ts";

/** Environment variables corral adds besides the markers, so a crashed controller's spawn can be reattached. */
export const SPAWN_ENV = { slot: "CORRAL_SLOT", model: "CORRAL_MODEL_ID" } as const;

/** What {@link spawnServer} needs. */
export interface SpawnRequest {
  readonly model: ModelConfig;
  readonly slot: string;
  readonly executable: string;
  readonly host: string;
  readonly port: number;
  readonly logsDir: string;
  readonly homeId: string;
  /** base environment @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** @default Date.now() */
  readonly now?: number;
  /**
   * The server's own API key (`server_api_key: auto`), given as llama-server's `LLAMA_API_KEY`
   * (its `--api-key` option's variable), so it is in no command line: /proc/<pid>/cmdline is
   * world-readable and the registry's command_line is shown by the API. @default none
   */
  readonly apiKey?: string;
}

/** A started server. `exited` resolves with its exit code (only in the process that spawned it). */
export interface SpawnedServer {
  readonly pid: number;
  readonly argv: string[];
  readonly logFile: string;
  readonly instanceId: string;
  readonly exited: Promise<number | null>;
}

/**
 * Starts one llama-server: detached (its own session, so it outlives a controller crash), stdin
 * ignored, stdout and stderr appended to a fresh log file (a pipe to a dead controller would kill
 * it with SIGPIPE), the GPUs in `CUDA_VISIBLE_DEVICES`/`HIP_VISIBLE_DEVICES`, corral's markers in
 * its environment, pinned with `taskset` where the model has a `cpu_affinity`. A log that cannot
 * be written (disk full) refuses the load before anything starts.
 * @example
 * const { pid, logFile } = spawnServer({ model, slot: "0", executable, host: "127.0.0.1", port: 8081, logsDir, homeId })
 */
export function spawnServer(request: SpawnRequest): SpawnedServer {
  const { model, slot, executable, host, port } = request;
  const now = request.now ?? Date.now();
  const logFile = logFileFor(request.logsDir, slot, model.id, now);
  const instanceId = randomUUID();
  const server = [executable, "-m", model.path, "--host", host, "--port", String(port), ...model.args];
  const argv =
    model.cpu_affinity && process.platform === "linux" && Bun.which("taskset")
      ? ["taskset", "-c", model.cpu_affinity, ...server]
      : server;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...(request.env ?? process.env), ...model.env }))
    if (v !== undefined) env[k] = v;
  if (request.apiKey !== undefined) env.LLAMA_API_KEY = request.apiKey;
  Object.assign(env, {
    CUDA_VISIBLE_DEVICES: slot,
    HIP_VISIBLE_DEVICES: slot,
    [MARKER_ENV.home]: request.homeId,
    [MARKER_ENV.instance]: instanceId,
    [SPAWN_ENV.slot]: slot,
    [SPAWN_ENV.model]: model.id,
  });
  let fd: number;
  try {
    fd = openLogForAppend(logFile);
  } catch (error) {
    throw logFailure(logFile, slot, model.id, error);
  }
  try {
    writeSync(fd, `--- corral ${new Date(now).toISOString()}: ${argv.join(" ")} (slot ${slot})\n`);
  } catch (error) {
    closeSync(fd);
    throw logFailure(logFile, slot, model.id, error);
  }
  try {
    const child = Bun.spawn(argv, { stdin: "ignore", stdout: fd, stderr: fd, env, detached: true });
    child.unref();
    // Only this process can ever learn how the child ends: crash reports ask for it.
    rememberChild(child.pid, child, instanceId);
    return { pid: child.pid, argv, logFile, instanceId, exited: child.exited };
  } finally {
    closeSync(fd);
  }
}

function logFailure(logFile: string, slot: string, modelId: string, error: unknown): LoadFailedError {
  const reason = `could not write its log file ${logFile}: ${(error as Error).message}`;
  return new LoadFailedError({ slot, modelId, reason }, { cause: error });
}
