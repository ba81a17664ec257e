import {
  ForeignProcessError,
  InvalidNameError,
  NameNotFoundError,
  NotOrphanError,
  NotOurProcessError,
  ProcessNotFoundError,
} from "../errors.ts";
import { baseName, isServerProcess, startTimeMatches } from "../process/identity.ts";
import { ancestorsOf, assertKillable, killTree } from "../process/kill-tree.ts";
import { describeOrphan, type Orphan } from "../process/orphans.ts";
import type { ProcessInfo, ProcessProbe } from "../process/types.ts";
import type { HistoryEvent, ProcessEntry } from "../store/schema.ts";
import type {
  CleanupResult,
  KillOptions,
  KillOutcome,
  KillPlan,
  KillSelector,
  KillTarget,
  VerifiedEntry,
} from "./types.ts";
import type { CleanupView } from "./views.ts";

/**
 * The one kill rule. A tracked process is stopped through its entry (identity checked first);
 * an untracked llama-server is judged exactly as {@link findOrphans} judges it (ours, likely ours,
 * foreign: another user or another corral home) and a foreign one is touched only with
 * `includeForeign`. PID 1, corral itself and its ancestors are never signalled, nor anything that
 * is not a llama-server.
 */

/** What the kill rule needs from a registry: its records and its probe, not the whole class. */
export interface KillContext {
  readonly probe: ProcessProbe;
  readonly names: readonly string[];
  readonly homeId: string;
  list(): Promise<Array<{ slot: string; entry: ProcessEntry }>>;
  verify(slot: string): Promise<VerifiedEntry>;
  update(slot: string, patch: Partial<ProcessEntry>, reason?: string): Promise<ProcessEntry>;
  unregister(slot: string, options: { reason?: string; pid?: number; event?: string }): Promise<unknown>;
  record(event: Omit<HistoryEvent, "time">): Promise<unknown>;
  findOrphans(): Promise<Orphan[]>;
  /** whether a process is still the one an entry recorded */
  isSame(entry: ProcessEntry, info: ProcessInfo | undefined): boolean;
}

/**
 * Stops an entry's process tree and unregisters it, refusing a PID whose identity no longer
 * matches the record. An entry whose process already exited is just unregistered.
 * @example
 * await killEntry(ctx, "0", { timeoutMs: 5000 })
 */
export async function killEntry(ctx: KillContext, slot: string, options: KillOptions = {}): Promise<KillOutcome> {
  const { entry, probe } = await ctx.verify(slot);
  if (probe.state === "exited") {
    await ctx.unregister(slot, { pid: entry.pid, reason: `already exited: ${probe.reason}` });
    return { pid: entry.pid, slot, signalled: false, tree: undefined };
  }
  if (probe.state !== "running" || !probe.process) throw new NotOurProcessError(entry.pid, probe.reason);
  assertKillable(entry.pid, { ancestors: await ancestorsOf(process.pid, ctx.probe) });
  if (entry.status !== "stopping") await ctx.update(slot, { status: "stopping" }, options.reason ?? "stop requested");
  const tree = await killTree(entry.pid, {
    force: options.force,
    timeoutMs: options.timeoutMs,
    probe: ctx.probe,
    isSame: (info) => ctx.isSame(entry, info),
  });
  await ctx.unregister(slot, {
    pid: entry.pid,
    event: "killed",
    reason: `${options.reason ?? "stopped"} (${tree.signal}${tree.escalated ? " after timeout" : ""}, ${tree.ms} ms)`,
  });
  return { pid: entry.pid, slot, signalled: true, tree };
}

/**
 * Judges one PID as {@link findOrphans} would, reading just that process and its ancestors.
 * @throws ProcessNotFoundError when it is gone (or a zombie)
 * @throws NotOurProcessError when it is not a llama-server
 * @throws NotOrphanError when it, or one of its ancestors, is tracked
 * @example
 * const { orphan } = await judgeOrphan(ctx, 4242); orphan.verdict // "likely-ours"
 */
export async function judgeOrphan(ctx: KillContext, pid: number): Promise<{ orphan: Orphan; info: ProcessInfo }> {
  const info = await ctx.probe.get(pid);
  if (!info || info.state === "Z") throw new ProcessNotFoundError(pid);
  if (!isServerProcess(info, ctx.names)) {
    throw new NotOurProcessError(pid, `it is ${info.exe ?? info.name}, not a llama-server`);
  }
  const tracked = new Map((await ctx.list()).map(({ slot, entry }) => [entry.pid, slot]));
  if (tracked.has(pid)) throw new NotOrphanError(pid, `it is tracked in slot ${tracked.get(pid)}`);
  for (const ancestor of await ancestorsOf(pid, ctx.probe)) {
    const slot = tracked.get(ancestor);
    if (slot !== undefined) throw new NotOrphanError(pid, `it runs under pid ${ancestor}, tracked in slot ${slot}`);
  }
  const orphan = describeOrphan(info, await ctx.probe.environ(pid), ctx.homeId, process.getuid?.());
  return { orphan, info };
}

/** Options of {@link killOrphan}. */
export interface KillOrphanOptions extends KillOptions {
  /** the start time seen when the kill was decided (a confirmation): a different process is refused */
  readonly startTimeMs?: number;
}

/**
 * Kills one untracked llama-server (its whole tree) under the kill rule.
 * @throws NotOurProcessError for PID 1, corral itself and its ancestors
 * @throws ProcessNotFoundError when it is gone; NotOrphanError when it is tracked or not a llama-server
 * @throws ForeignProcessError (a NotOurProcessError) for a foreign one without `includeForeign`
 * @example
 * const { tree, verdict } = await killOrphan(ctx, 4242, { force: true })
 */
export async function killOrphan(ctx: KillContext, pid: number, options: KillOrphanOptions = {}): Promise<KillOutcome> {
  assertKillable(pid, { ancestors: await ancestorsOf(process.pid, ctx.probe) });
  const { orphan, info } = await judgeOrphan(ctx, pid).catch((error: unknown) => {
    // Asked to kill an orphan: anything that is not a llama-server is simply not one.
    if (error instanceof NotOurProcessError) throw new NotOrphanError(pid, error.reason);
    throw error;
  });
  if (options.startTimeMs !== undefined && !startTimeMatches(options.startTimeMs, info, 0)) {
    throw new NotOurProcessError(pid, "the pid now belongs to another process than the one chosen");
  }
  if (orphan.verdict === "foreign" && !options.includeForeign) throw new ForeignProcessError(pid, orphan.reasons);
  return killJudged(ctx, orphan, info.startTimeMs, options);
}

async function killJudged(
  ctx: KillContext,
  orphan: Orphan,
  startTimeMs: number | undefined,
  options: KillOptions,
): Promise<KillOutcome> {
  const { pid, verdict } = orphan;
  const tree = await killTree(pid, {
    force: options.force,
    timeoutMs: options.timeoutMs,
    probe: ctx.probe,
    isSame: (now) => startTimeMs === undefined || startTimeMatches(startTimeMs, now, 0),
  });
  await ctx.record({
    event: "orphan-killed",
    pid,
    reason: `${options.reason ?? "orphan kill requested"} (${verdict}, ${tree.signal})`,
  });
  return { pid, slot: undefined, signalled: true, tree, verdict };
}

/**
 * What a kill by PID or by name will stop, decided before anything is signalled, so a
 * confirmation can show exactly that. By name: tracked entries whose model id or name matches
 * (trimmed, case-insensitive), else llama-server processes with that executable name.
 * Foreign matches are left out (listed in `skipped`) unless `includeForeign`.
 * @throws InvalidNameError for a blank name
 * @throws NameNotFoundError when nothing goes by the name
 * @throws NotOurProcessError, ProcessNotFoundError, NotOrphanError for a PID that may not be killed
 * @example
 * const { targets } = await resolveKillTargets(ctx, { name: "qwen" }); targets.map((t) => t.description)
 */
export async function resolveKillTargets(
  ctx: KillContext,
  selector: KillSelector,
  options: Pick<KillOptions, "includeForeign"> = {},
): Promise<KillPlan> {
  const entries = await ctx.list();
  if (selector.pid !== undefined) {
    const pid = selector.pid;
    assertKillable(pid, { ancestors: await ancestorsOf(process.pid, ctx.probe) });
    const tracked = entries.find(({ entry }) => entry.pid === pid);
    if (tracked) {
      const verdict = await checkTracked(ctx, tracked.slot);
      if ("reason" in verdict) throw new NotOurProcessError(pid, verdict.reason);
      return { targets: [verdict], skipped: [] };
    }
    const { orphan, info } = await judgeOrphan(ctx, pid);
    if (orphan.verdict === "foreign" && !options.includeForeign) throw new ForeignProcessError(pid, orphan.reasons);
    return { targets: [orphanTarget(orphan, info)], skipped: [] };
  }
  const wanted = selector.name.trim().toLowerCase();
  if (wanted === "") throw new InvalidNameError(selector.name);
  const byModel = entries.filter(
    ({ entry }) => entry.model_id.toLowerCase() === wanted || entry.model_name.toLowerCase() === wanted,
  );
  const plan: KillPlan = { targets: [], skipped: [] };
  const addTracked = async (slot: string) => {
    const verdict = await checkTracked(ctx, slot);
    if ("reason" in verdict) plan.skipped.push(verdict);
    else plan.targets.push(verdict);
  };
  if (byModel.length > 0) {
    for (const { slot } of byModel) await addTracked(slot);
    return refuseEmpty(plan, selector.name);
  }
  const named = (await ctx.probe.list()).filter(
    (p) =>
      p.state !== "Z" &&
      p.pid !== process.pid &&
      (p.name.toLowerCase() === wanted || (p.exe !== undefined && baseName(p.exe).toLowerCase() === wanted)),
  );
  if (named.length === 0) throw new NameNotFoundError(selector.name);
  const servers = named.filter((p) => isServerProcess(p, ctx.names));
  const [first] = named;
  if (servers.length === 0 && first)
    throw new NotOurProcessError(first.pid, `"${selector.name}" is not a llama-server`);
  const orphans = new Map((await ctx.findOrphans()).map((o) => [o.pid, o]));
  for (const p of servers) {
    const tracked = entries.find(({ entry }) => entry.pid === p.pid);
    const orphan = orphans.get(p.pid);
    if (tracked) await addTracked(tracked.slot);
    else if (!orphan) plan.skipped.push({ pid: p.pid, reason: "it runs under a tracked server" });
    else if (orphan.verdict === "foreign" && !options.includeForeign)
      plan.skipped.push({ pid: p.pid, reason: `foreign: ${orphan.reasons.join("; ")}` });
    else plan.targets.push(orphanTarget(orphan, p));
  }
  return refuseEmpty(plan, selector.name);
}

/** A plan that would kill nothing is a refusal, naming why the first match was left alone. */
function refuseEmpty(plan: KillPlan, name: string): KillPlan {
  const first = plan.skipped[0];
  if (plan.targets.length === 0 && first) {
    throw new NotOurProcessError(first.pid, `everything named "${name}" is left alone: ${first.reason}`);
  }
  return plan;
}

/**
 * A tracked slot as a target, when its PID is still the recorded process (or has exited: the
 * unload then just drops the entry); a PID that now belongs to another process is left alone.
 */
async function checkTracked(ctx: KillContext, slot: string): Promise<KillTarget | { pid: number; reason: string }> {
  const { entry, probe } = await ctx.verify(slot);
  if (probe.state === "running" || probe.state === "exited") return trackedTarget(slot, entry);
  return { pid: entry.pid, reason: `slot ${slot} recorded pid ${entry.pid}, but ${probe.reason}` };
}

function trackedTarget(slot: string, entry: ProcessEntry): KillTarget {
  return {
    pid: entry.pid,
    slot,
    verdict: "tracked",
    ...(entry.proc_start_ms !== undefined ? { startTimeMs: entry.proc_start_ms } : {}),
    model_id: entry.model_id,
    port: entry.port,
    ...(entry.executable !== undefined ? { executable: entry.executable } : {}),
    command_line: entry.command_line,
    description: `slot ${slot}: ${entry.model_id}, pid ${entry.pid}, port ${entry.port}`,
  };
}

function orphanTarget(orphan: Orphan, info: ProcessInfo): KillTarget {
  const what = orphan.model_path ?? orphan.executable ?? "llama-server";
  return {
    pid: orphan.pid,
    verdict: orphan.verdict,
    ...(info.startTimeMs !== undefined ? { startTimeMs: info.startTimeMs } : {}),
    ...(orphan.port !== undefined ? { port: orphan.port } : {}),
    ...(orphan.executable !== undefined ? { executable: orphan.executable } : {}),
    command_line: orphan.command_line,
    description:
      `untracked pid ${orphan.pid} (${orphan.verdict}, user ${orphan.user ?? orphan.uid ?? "?"}): ${what}` +
      (orphan.port !== undefined ? `, port ${orphan.port}` : ""),
  };
}

/**
 * Kills the orphans asked for and reports per PID (`outcome`): by default every orphan that is
 * ours or likely ours; `pids` narrows it; foreign ones only with `includeForeign`. Kills run at once.
 * @example
 * const results = await cleanupOrphans(ctx, { pids: [4242] }) // [{ pid: 4242, outcome: "killed", … }]
 */
export async function cleanupOrphans(
  ctx: KillContext,
  options: KillOptions & { pids?: readonly number[] } = {},
): Promise<CleanupResult[]> {
  const orphans = await ctx.findOrphans();
  const wanted = options.pids ? new Set(options.pids) : undefined;
  const byPid = new Map(orphans.map((o) => [o.pid, o]));
  const results: CleanupResult[] = [];
  for (const pid of wanted ?? []) {
    if (!byPid.has(pid)) {
      const reason = "not an orphaned llama-server (tracked, gone, or not a llama-server)";
      results.push({ pid, verdict: "unknown", outcome: "not-orphan", killed: false, reason });
    }
  }
  const chosen = orphans.filter((o) => !wanted || wanted.has(o.pid));
  const kills = chosen.map(async (orphan): Promise<CleanupResult> => {
    const base = { pid: orphan.pid, verdict: orphan.verdict };
    if (orphan.verdict === "foreign" && !options.includeForeign) {
      const reason = `foreign: ${orphan.reasons.join("; ")}`;
      return { ...base, outcome: "left-foreign", killed: false, reason };
    }
    try {
      assertKillable(orphan.pid, { ancestors: await ancestorsOf(process.pid, ctx.probe) });
      const startTimeMs = orphan.started_at === undefined ? undefined : Date.parse(orphan.started_at);
      const { tree } = await killJudged(ctx, orphan, startTimeMs, { ...options, reason: "orphan cleanup" });
      return { ...base, outcome: "killed", killed: true, ...(tree ? { tree } : {}) };
    } catch (error) {
      return { ...base, outcome: "failed", killed: false, reason: (error as Error).message };
    }
  });
  results.push(...(await Promise.all(kills)));
  return results.sort((a, b) => a.pid - b.pid);
}

/** Counts of a cleanup by outcome, and one sentence that says it. */
export interface CleanupSummary {
  readonly counts: Readonly<Record<CleanupResult["outcome"], number>>;
  /**
   * true when every PID was killed or deliberately left alone as foreign; false when a kill failed
   * or a PID asked for was not an orphaned llama-server (nothing was done for it)
   */
  readonly ok: boolean;
  /** e.g. "Cleaned up 2 orphaned processes; left 1 foreign (pid 4242); failed on 4243 (could not kill …)" */
  readonly message: string;
}

/**
 * Summarises a cleanup for any front-end: counts per outcome, whether it succeeded, and a sentence.
 * @example
 * summarizeCleanup(results).message // "Cleaned up 2 orphaned processes; left 1 foreign (pid 4242)"
 */
export function summarizeCleanup(results: readonly CleanupResult[]): CleanupSummary {
  const counts = { killed: 0, "left-foreign": 0, "not-orphan": 0, failed: 0 };
  for (const r of results) counts[r.outcome]++;
  const pids = (outcome: CleanupResult["outcome"]) =>
    results
      .filter((r) => r.outcome === outcome)
      .map((r) => r.pid)
      .join(", ");
  const parts = [`Cleaned up ${counts.killed} orphaned process${counts.killed === 1 ? "" : "es"}`];
  if (counts["left-foreign"]) parts.push(`left ${counts["left-foreign"]} foreign (pid ${pids("left-foreign")})`);
  if (counts["not-orphan"]) parts.push(`${counts["not-orphan"]} not orphaned (pid ${pids("not-orphan")})`);
  if (counts.failed) {
    const failed = results.filter((r) => r.outcome === "failed").map((r) => `${r.pid} (${r.reason ?? "unknown"})`);
    parts.push(`failed on ${failed.join(", ")}`);
  }
  return { counts, ok: counts.failed === 0 && counts["not-orphan"] === 0, message: parts.join("; ") };
}

/**
 * A cleanup as the API sends it (`CleanupView`): outcomes per PID with the kill's figures, the counts, a sentence.
 * @example
 * cleanupView(await controller.cleanupOrphans()).message // "Cleaned up 2 orphaned processes"
 */
export function cleanupView(results: readonly CleanupResult[]): CleanupView {
  const { ok, message, counts } = summarizeCleanup(results);
  return {
    ok,
    message,
    counts: { ...counts },
    results: results.map((r) => ({
      pid: r.pid,
      verdict: r.verdict,
      outcome: r.outcome,
      ...(r.reason !== undefined ? { reason: r.reason } : {}),
      ...(r.tree ? { signal: r.tree.signal, escalated: r.tree.escalated, ms: r.tree.ms } : {}),
    })),
  };
}
