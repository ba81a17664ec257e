import { newSecret } from "../auth/tokens.ts";
import { modelFingerprint, staleReason } from "../config/fingerprint.ts";
import type { CorralConfig, ModelConfig } from "../config/load.ts";
import { LoadFailedError } from "../errors.ts";
import { identityOf } from "../process/identity.ts";
import { killTree } from "../process/kill-tree.ts";
import type { Registry } from "../registry/registry.ts";
import { waitReady } from "../server/health.ts";
import { tailFile } from "../server/logs.ts";
import { spawnServer } from "../server/spawn.ts";
import type { LoadOptions, LoadResult } from "./types.ts";

/** Points in a load where instrumentation (and crash tests) can step in. */
export interface ControllerHooks {
  /** with the chosen port, right before the server is spawned */
  readonly beforeSpawn?: (port: number) => void | Promise<void>;
  /** right after the server is spawned, before it is registered */
  readonly afterSpawn?: (pid: number) => void | Promise<void>;
}

/** What one load needs from its controller. */
export interface LoadContext {
  readonly registry: Registry;
  readonly config: CorralConfig;
  readonly now: () => number;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly hooks: ControllerHooks;
}

/**
 * Spawns a server on a chosen port, registers it as `loading` and waits for its `/health`:
 * `running` once ready. A server that exits while loading is unregistered and the error carries
 * its exit code and last log lines; one that times out is killed first, and when it will not die
 * its entry is kept (marked unhealthy) so no live server is left untracked.
 * @example
 * const { entry, readyMs } = await spawnAndWait(ctx, model, "0", "/opt/llama/llama-server", 8081, {})
 */
export async function spawnAndWait(
  ctx: LoadContext,
  model: ModelConfig,
  slot: string,
  executable: string,
  port: number,
  options: LoadOptions,
): Promise<LoadResult> {
  const host = ctx.config.host;
  const spawnedWith = { llama_server: ctx.config.llama_server, host };
  await ctx.hooks.beforeSpawn?.(port);
  const apiKey = ctx.config.server_api_key === "auto" ? newSecret() : undefined;
  const spawned = spawnServer({
    ...(apiKey === undefined ? {} : { apiKey }),
    model,
    slot,
    executable,
    host,
    port,
    logsDir: ctx.registry.paths.logs,
    homeId: ctx.registry.homeId,
    env: ctx.env,
    now: ctx.now(),
  });
  const { pid, argv, logFile, instanceId, exited } = spawned;
  await ctx.hooks.afterSpawn?.(pid);
  try {
    await ctx.registry.register(
      slot,
      {
        pid,
        model_id: model.id,
        model_name: model.name,
        model_path: model.path,
        gpu_id: slot,
        port,
        started_at: new Date(ctx.now()).toISOString(),
        command_line: argv,
        status: "loading",
        log_file: logFile,
        instance_id: instanceId,
        ...(apiKey === undefined ? {} : { api_key: apiKey }),
        host,
        restarts: options.restarts ?? 0,
        config_hash: modelFingerprint(spawnedWith, model),
        ...(model.cpu_affinity ? { cpu_affinity: model.cpu_affinity } : {}),
        ...(options.expectedReadyMs !== undefined ? { expected_ready_ms: options.expectedReadyMs } : {}),
      },
      { reason: (options.reason ?? "load requested") + expectedNote(options.expectedReadyMs) },
    );
  } catch (error) {
    // Another controller took the slot between our check and our spawn: ours must not linger.
    await killTree(pid, { force: true, probe: ctx.registry.probe }).catch((killError: unknown) => {
      throw new AggregateError([error, killError], `pid ${pid} could not be registered nor killed: it runs untracked`);
    });
    throw error;
  }
  const timeoutMs = options.timeoutMs ?? ctx.config.timeouts.load_ms;
  const outcome = await waitReady({ host, port, timeoutMs, exited });
  if (outcome.ready) {
    const info = await ctx.registry.probe.get(pid);
    // Re-read the identity: a cpu_affinity wrapper (taskset) has exec'd into llama-server by now.
    const identity = info ? identityOf(info) : {};
    // A reload while it loaded may have changed its model since it was started: say so at once.
    const stale = staleReason(ctx.config, { model_id: model.id, config_hash: modelFingerprint(spawnedWith, model) });
    const entry = await ctx.registry.update(
      slot,
      { status: "running", ...identity, ...(stale ? { stale } : {}) },
      `ready in ${outcome.ms} ms`,
    );
    return { slot, entry, readyMs: outcome.ms };
  }
  if (outcome.reason !== "exited") await killFailedLoad(ctx, slot, model, pid, outcome.reason);
  const logTail = await tailFile(logFile, 20);
  const reason =
    outcome.reason === "exited"
      ? `llama-server exited with code ${outcome.exitCode} while loading`
      : `not ready after ${timeoutMs} ms; the process tree was killed`;
  await ctx.registry.unregister(slot, { pid, event: "load-failed", reason });
  throw new LoadFailedError({
    slot,
    modelId: model.id,
    reason,
    exitCode: outcome.reason === "exited" ? outcome.exitCode : undefined,
    timedOut: outcome.reason === "timeout",
    logTail,
  });
}

/** A failed load's server is stopped; if it will not stop, its entry stays (marked unhealthy) and the load fails saying so. */
async function killFailedLoad(
  ctx: LoadContext,
  slot: string,
  model: ModelConfig,
  pid: number,
  why: string,
): Promise<void> {
  try {
    await killTree(pid, { timeoutMs: ctx.config.timeouts.stop_ms, probe: ctx.registry.probe });
  } catch (error) {
    const reason = `${why} and killing it failed: ${(error as Error).message}; the entry is kept, so it stays tracked`;
    await ctx.registry.update(slot, { status: "unhealthy" }, reason).catch(() => undefined);
    throw new LoadFailedError({ slot, modelId: model.id, reason }, { cause: error });
  }
}

/** "; ready in about 8.2 s last time": what `/events` shows of a load's expected time. */
function expectedNote(ms: number | undefined): string {
  return ms === undefined ? "" : `; ready in about ${(ms / 1000).toFixed(1)} s last time`;
}
