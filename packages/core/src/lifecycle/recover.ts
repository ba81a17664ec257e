import type { RecoveredSlot } from "./types.ts";
import { checkHealth, fetchProps } from "../server/health.ts";
import { killTree } from "../process/kill-tree.ts";
import type { Controller } from "./controller.ts";
import { SPAWN_ENV } from "../server/spawn.ts";
import type { Orphan } from "../process/orphans.ts";
import type { VerifiedEntry } from "../registry/registry.ts";
import { adoptOrphan } from "./adopt.ts";
import { slotsOverlap } from "../slots.ts";

/**
 * Picks everything up after a controller restart (or crash at any moment):
 * - entries whose process is gone are removed, with the reason in the history;
 * - an entry caught mid-unload (`stopping`) is stopped for good;
 * - live entries are health-checked (and `/props` model_path compared) → running, loading or unhealthy;
 * - processes this home spawned but never registered (the controller died between spawn and
 *   register) are adopted into their slot, or killed when that slot is held by another live entry.
 * @example
 * const report = await recover(controller)
 */
export async function recover(controller: Controller): Promise<RecoveredSlot[]> {
  const { registry } = controller;
  const processes = await registry.probe.list();
  const verified = await registry.verifyAll({ processes });
  const report = await Promise.all(verified.map((v) => recoverEntry(controller, v)));
  const orphans = (await registry.findOrphans({ processes })).filter((o) => o.verdict === "ours");
  for (const orphan of orphans) report.push(await reclaim(controller, orphan));
  await registry.record({
    event: "recovered",
    reason: summary(report),
  });
  return report;
}

async function recoverEntry(controller: Controller, v: VerifiedEntry): Promise<RecoveredSlot> {
  const { registry, config } = controller;
  const { slot, entry, probe } = v;
  const base = { slot, pid: entry.pid, model_id: entry.model_id };
  if (probe.state === "exited" || probe.state === "pid-reused") {
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
  const host = entry.host ?? config.host;
  const health = await checkHealth({ host, port: entry.port, timeoutMs: config.timeouts.health_ms });
  let status: "running" | "loading" | "unhealthy" =
    health.state === "ok" ? "running" : health.state === "loading" ? "loading" : "unhealthy";
  let reason =
    health.state === "ok" ? "alive and healthy" : `health: ${health.state}${health.error ? ` (${health.error})` : ""}`;
  // A server spawned moments ago may not listen yet: the same grace the supervisor gives (watch-rules).
  const started = Date.parse(entry.started_at);
  if (status === "unhealthy" && entry.status === "loading" && controller.now() - started < config.timeouts.load_ms) {
    status = "loading";
    reason = `starting up, ${reason}`;
  }
  if (status === "running") {
    const props = await fetchProps({ host, port: entry.port, timeoutMs: config.timeouts.health_ms });
    if (props?.model_path && !samePath(props.model_path, entry.model_path)) {
      status = "unhealthy";
      reason = `serves ${props.model_path}, registry says ${entry.model_path}`;
    }
  }
  if (entry.status !== status) await registry.update(slot, { status }, `recovery: ${reason}`);
  return { ...base, outcome: status, reason };
}

async function reclaim(controller: Controller, orphan: Orphan): Promise<RecoveredSlot> {
  const { registry } = controller;
  const env = (await registry.probe.environ(orphan.pid)) ?? {};
  const slot = env[SPAWN_ENV.slot];
  const modelId = env[SPAWN_ENV.model] ?? "unknown";
  const held = slot ? (await registry.list()).find((e) => slotsOverlap(e.slot, slot)) : undefined;
  if (slot && !held) {
    try {
      const entry = await adoptOrphan(controller, orphan.pid, {
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
  await killTree(orphan.pid, { timeoutMs: controller.config.timeouts.stop_ms, probe: registry.probe }).catch(
    () => undefined,
  );
  await registry.record({
    event: "orphan-killed",
    slot,
    pid: orphan.pid,
    model_id: modelId,
    reason: held ? `duplicate of slot ${held.slot} (pid ${held.entry.pid})` : "spawned by this home without a slot",
  });
  return {
    slot: slot ?? "?",
    pid: orphan.pid,
    model_id: modelId,
    outcome: "killed-duplicate",
    reason: "duplicate of a tracked server",
  };
}

function samePath(a: string, b: string): boolean {
  const norm = (p: string) => p.replaceAll("\\", "/").replace(/\/+$/, "");
  return norm(a) === norm(b) || norm(a).endsWith(`/${norm(b)}`) || norm(b).endsWith(`/${norm(a)}`);
}

function summary(report: readonly RecoveredSlot[]): string {
  if (report.length === 0) return "nothing to recover";
  const counts = new Map<string, number>();
  for (const r of report) counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} ${k}`).join(", ");
}
