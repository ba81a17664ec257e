import { isGone } from "../process/identity.ts";
import { killTree } from "../process/kill-tree.ts";
import type { Orphan } from "../process/orphans.ts";
import type { VerifiedEntry } from "../registry/registry.ts";
import { checkHealth, fetchProps, notProbed, probeHost, statusOfHealth } from "../server/health.ts";
import { SPAWN_ENV } from "../server/spawn.ts";
import { slotsOverlap } from "../slots.ts";
import { adoptJudged } from "./adopt.ts";
import type { LifecycleContext } from "./context.ts";
import { inLoadingGrace } from "./status.ts";
import type { RecoveredSlot } from "./types.ts";

/**
 * Picks everything up after a controller restart (or crash at any moment):
 * - entries whose process is gone are removed, with the reason in the history;
 * - an entry caught mid-unload (`stopping`) is stopped for good;
 * - live entries are health-checked (and `/props` model_path compared) → running, loading or unhealthy;
 * - processes this home spawned but never registered (the controller died between spawn and
 *   register) are adopted into their slot, or killed when that slot is held by another live entry.
 * @example
 * const report = await recover(ctx)
 */
export async function recover(ctx: LifecycleContext): Promise<RecoveredSlot[]> {
  const { registry } = ctx;
  const processes = await registry.probe.list();
  const verified = await registry.verifyAll({ processes });
  const report = await Promise.all(verified.map((v) => recoverEntry(ctx, v)));
  const orphans = (await registry.findOrphans({ processes })).filter((o) => o.verdict === "ours");
  for (const orphan of orphans) report.push(await reclaim(ctx, orphan));
  await registry.record({
    event: "recovered",
    reason: summary(report),
  });
  return report;
}

async function recoverEntry(ctx: LifecycleContext, v: VerifiedEntry): Promise<RecoveredSlot> {
  const { registry, config } = ctx;
  const { slot, entry, probe } = v;
  const base = { slot, pid: entry.pid, model_id: entry.model_id };
  if (isGone(probe.state)) {
    await registry.unregister(slot, {
      pid: entry.pid,
      event: "pruned",
      reason: `found ${probe.state} on recovery: ${probe.reason}`,
    });
    return { ...base, outcome: "removed", reason: probe.reason };
  }
  if (probe.state !== "running") return { ...base, outcome: "kept", reason: probe.reason };
  if (entry.status === "stopping") {
    // The controller died mid-unload: the user asked for this process to go.
    await registry.kill(slot, { timeoutMs: config.timeouts.stop_ms, reason: "finishing an interrupted unload" });
    return { ...base, outcome: "stopped", reason: "unload was interrupted; finished it" };
  }
  const host = probeHost(entry.host, config.host);
  const health = host
    ? await checkHealth({ host, port: entry.port, timeoutMs: config.timeouts.health_ms })
    : notProbed(entry.host ?? "");
  let status = statusOfHealth(health);
  let reason =
    health.state === "ok" ? "alive and healthy" : `health: ${health.state}${health.error ? ` (${health.error})` : ""}`;
  // A server spawned moments ago may not listen yet: the same grace the supervisor gives (watch-rules).
  if (status === "unhealthy" && host && inLoadingGrace(entry, ctx.now(), config.timeouts.load_ms)) {
    status = "loading";
    reason = `starting up, ${reason}`;
  }
  if (status === "running" && host) {
    const props = await fetchProps({
      host,
      port: entry.port,
      timeoutMs: config.timeouts.health_ms,
      ...(entry.api_key === undefined ? {} : { apiKey: entry.api_key }),
    });
    if (props?.model_path && !servesSameModel(props.model_path, entry.model_path)) {
      status = "unhealthy";
      reason = `serves ${props.model_path}, registry says ${entry.model_path}`;
    }
  }
  if (entry.status !== status) await registry.update(slot, { status }, `recovery: ${reason}`);
  return { ...base, outcome: status, reason };
}

async function reclaim(ctx: LifecycleContext, orphan: Orphan): Promise<RecoveredSlot> {
  const { registry } = ctx;
  const env = (await registry.probe.environ(orphan.pid)) ?? {};
  const slot = env[SPAWN_ENV.slot];
  const modelId = env[SPAWN_ENV.model] ?? "unknown";
  const held = slot ? (await registry.list()).find((e) => slotsOverlap(e.slot, slot)) : undefined;
  if (slot && !held) {
    try {
      const entry = await adoptJudged(ctx, orphan, {
        slot,
        modelId,
        reason: "spawned by a controller that crashed before registering it",
      });
      return {
        slot,
        pid: orphan.pid,
        model_id: entry.model_id,
        outcome: "adopted",
        reason: "spawned but never registered; adopted",
      };
    } catch (error) {
      return {
        slot,
        pid: orphan.pid,
        model_id: modelId,
        outcome: "kept",
        reason: `could not adopt: ${(error as Error).message}`,
      };
    }
  }
  // A duplicate: its slot is held by another live server (or it has no slot): ours, and unwanted.
  const why = held ? `duplicate of slot ${held.slot} (pid ${held.entry.pid})` : "spawned by this home without a slot";
  try {
    await killTree(orphan.pid, { timeoutMs: ctx.config.timeouts.stop_ms, probe: registry.probe });
  } catch (error) {
    // Only a kill that happened is recorded as one: this server is still running, and says so.
    return {
      slot: slot ?? "?",
      pid: orphan.pid,
      model_id: modelId,
      outcome: "kept",
      reason: `${why}, but killing it failed: ${(error as Error).message}`,
    };
  }
  await registry.record({ event: "orphan-killed", slot, pid: orphan.pid, model_id: modelId, reason: why });
  return {
    slot: slot ?? "?",
    pid: orphan.pid,
    model_id: modelId,
    outcome: "killed-duplicate",
    reason: "duplicate of a tracked server",
  };
}

/** Whether `/props`'s model path is the registered one (one may be relative, or a suffix, of the other). */
function servesSameModel(a: string, b: string): boolean {
  const norm = (p: string) => p.replaceAll("\\", "/").replace(/\/+$/, "");
  return norm(a) === norm(b) || norm(a).endsWith(`/${norm(b)}`) || norm(b).endsWith(`/${norm(a)}`);
}

function summary(report: readonly RecoveredSlot[]): string {
  if (report.length === 0) return "nothing to recover";
  const counts = new Map<string, number>();
  for (const r of report) counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} ${k}`).join(", ");
}

/**
 * How many servers a recovery left tracked and alive (running, loading, unhealthy or adopted):
 * the one "reattached N" count every front-end shows.
 * @example
 * reattached(await controller.recover()) // 2
 */
export function reattached(report: readonly RecoveredSlot[]): number {
  const live = new Set<RecoveredSlot["outcome"]>(["running", "loading", "unhealthy", "adopted"]);
  return report.filter((r) => live.has(r.outcome)).length;
}
