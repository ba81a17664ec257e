import type { CorralConfig } from "../config/load.ts";
import { NotOurProcessError } from "../errors.ts";
import { isGone } from "../process/identity.ts";
import type { Registry } from "../registry/registry.ts";
import type { KillOutcome } from "../registry/types.ts";
import { type GpuSnapshot, waitGpuReleased } from "../server/gpu.ts";
import { waitPortFree } from "../server/ports.ts";
import type { UnloadOptions, UnloadResult } from "./types.ts";

/** What an unload needs from its controller; `gpuQuery` should not be cached (it is polled). */
export interface UnloadContext {
  readonly registry: Registry;
  readonly config: CorralConfig;
  readonly gpuQuery: () => Promise<GpuSnapshot | undefined>;
}

/**
 * Stops the server in a slot (the controller calls it inside the slot's queue): records the
 * request first (a supervisor cancels any pending restart), SIGTERM to its tree, SIGKILL after
 * the timeout, then waits for the port to close and the GPU memory to be released. An entry whose
 * process is already gone is removed without signalling anything.
 * @example
 * const { result, killed } = await unloadSlot({ registry, config, gpuQuery: () => queryGpus() }, "0", {})
 */
export async function unloadSlot(
  ctx: UnloadContext,
  slot: string,
  options: UnloadOptions,
): Promise<{ result: UnloadResult; killed: KillOutcome }> {
  const reason = options.reason ?? "unload requested";
  const { entry, probe } = await ctx.registry.verify(slot);
  const base = { slot, pid: entry.pid, model_id: entry.model_id, escalated: false, ms: 0 };
  // Recorded first, so a supervisor (here or in another process) cancels any pending restart.
  await ctx.registry.record({ event: "unload-requested", slot, pid: entry.pid, model_id: entry.model_id, reason });
  if (isGone(probe.state)) {
    await ctx.registry.unregister(slot, {
      pid: entry.pid,
      event: "pruned",
      reason: `not signalled: ${probe.reason}`,
    });
    const result = { ...base, signalled: false, portFreed: true, reason: probe.reason };
    return { result, killed: { pid: entry.pid, slot, signalled: false, tree: undefined } };
  }
  if (probe.state !== "running") throw new NotOurProcessError(entry.pid, probe.reason);
  const killed = await ctx.registry.kill(slot, {
    force: options.force,
    timeoutMs: options.timeoutMs ?? ctx.config.timeouts.stop_ms,
    reason,
  });
  const portFreed = await waitPortFree(entry.port, { host: entry.host ?? ctx.config.host, timeoutMs: 3000 });
  const gpu = await waitGpuReleased(entry.pid, {
    timeoutMs: ctx.config.gpu_release_wait_ms,
    query: ctx.gpuQuery,
  });
  if (gpu.released !== undefined) {
    await ctx.registry.record({
      event: "gpu-released",
      slot,
      pid: entry.pid,
      model_id: entry.model_id,
      reason: gpu.released ? `GPU memory released after ${gpu.ms} ms` : `GPU memory still held after ${gpu.ms} ms`,
    });
  }
  const result = {
    ...base,
    signalled: killed.signalled,
    escalated: killed.tree?.escalated ?? false,
    ms: killed.tree?.ms ?? 0,
    portFreed,
    ...(gpu.released !== undefined ? { gpuReleased: gpu.released } : {}),
    reason,
  };
  return { result, killed };
}
