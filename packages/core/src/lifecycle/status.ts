import type { ProcessInfo } from "../process/types.ts";
import { createUsageSampler, type UsageSampler } from "../process/usage.ts";
import type { VerifiedEntry } from "../registry/registry.ts";
import type { GpuSnapshot } from "../server/gpu.ts";
import { checkHealth, notProbed, probeHost } from "../server/health.ts";
import type { ProcessEntry } from "../store/schema.ts";
import type { LifecycleContext } from "./context.ts";
import type { HealthReport, ProcessStatus, ProcessUsage } from "./types.ts";

/** Options of {@link collectStatus}. */
export interface CollectStatusOptions {
  /** keeps CPU figures between calls @default a new sampler (first figures are averages since start) */
  readonly usage?: UsageSampler;
  /** reuse a process-table scan */
  readonly processes?: readonly ProcessInfo[];
  /** reuse a GPU snapshot @default ctx.gpuQuery() */
  readonly gpu?: GpuSnapshot | undefined;
  /** skip the `/health` requests @default false */
  readonly skipHealth?: boolean;
}

/**
 * Everything known about every tracked process right now: identity verdict, `/health`,
 * uptime, CPU, memory and GPU memory. Reads only the tracked PIDs (no full scan where the
 * probe allows); health requests in parallel.
 * @example
 * for (const s of await collectStatus(ctx)) console.log(s.slot, s.state, s.health?.state, s.usage?.rss_bytes)
 */
export async function collectStatus(
  ctx: LifecycleContext,
  options: CollectStatusOptions = {},
): Promise<ProcessStatus[]> {
  const { registry, config } = ctx;
  const verified = await registry.verifyAll(options.processes ? { processes: options.processes } : {});
  if (verified.length === 0) return [];
  const live = verified.filter((v) => v.probe.state === "running").map((v) => v.entry.pid);
  const sampler = options.usage ?? createUsageSampler();
  const [health, usage, gpu] = await Promise.all([
    Promise.all(
      verified.map((v) =>
        v.probe.state === "running" && !options.skipHealth
          ? healthOf(v.entry, config.host, config.timeouts.health_ms)
          : Promise.resolve(undefined),
      ),
    ),
    sampler.sample(live),
    "gpu" in options ? Promise.resolve(options.gpu) : ctx.gpuQuery(),
  ]);
  const checkedAt = ctx.now();
  return verified.map((v, i) => toStatus(v, health[i], usage.get(v.entry.pid), gpu, checkedAt));
}

function toStatus(
  v: VerifiedEntry,
  health: HealthReport | undefined,
  usage: { cpu_percent: number; rss_bytes: number } | undefined,
  gpu: GpuSnapshot | undefined,
  checkedAt: number,
): ProcessStatus {
  const gpuMemory = gpu?.processes.filter((p) => p.pid === v.entry.pid).reduce((sum, p) => sum + p.used_memory_mib, 0);
  const started = v.probe.process?.startTimeMs;
  const withGpu: ProcessUsage | undefined = usage
    ? { ...usage, ...(gpu ? { gpu_memory_mib: gpuMemory ?? 0 } : {}) }
    : undefined;
  return {
    slot: v.slot,
    entry: v.entry,
    state: v.probe.state,
    state_reason: v.probe.reason,
    health,
    uptime_ms: v.probe.state === "running" && started !== undefined ? Math.max(0, checkedAt - started) : undefined,
    usage: withGpu,
    checked_at: new Date(checkedAt).toISOString(),
  };
}

/** `/health` of an entry's server, where corral may send it (see probeHost); reported as not probed elsewhere. */
function healthOf(entry: ProcessEntry, configHost: string, timeoutMs: number): Promise<HealthReport> {
  const host = probeHost(entry.host, configHost);
  return host ? checkHealth({ host, port: entry.port, timeoutMs }) : Promise.resolve(notProbed(entry.host ?? ""));
}

/**
 * Whether a loading entry is still within its load time, when a failed `/health` only means it
 * does not listen yet (recovery and the supervisor give the same grace).
 * @example
 * inLoadingGrace(entry, Date.now(), config.timeouts.load_ms) // true for a server spawned a second ago
 */
export function inLoadingGrace(
  entry: Pick<ProcessEntry, "status" | "started_at">,
  now: number,
  loadMs: number,
): boolean {
  const started = Date.parse(entry.started_at);
  return entry.status === "loading" && Number.isFinite(started) && now - started < loadMs;
}
