import { NameNotFoundError, NotOurProcessError, ProcessNotFoundError } from "../errors.ts";
import { isServerProcess } from "../process/identity.ts";
import { ancestorsOf, assertKillable, killTree, type KillTreeResult } from "../process/kill-tree.ts";
import type { Orphan } from "../process/orphans.ts";
import type { ProcessInfo } from "../process/types.ts";
import type { Registry } from "./registry.ts";

/** What a kill did. */
export interface KillOutcome {
  readonly pid: number;
  readonly slot: string | undefined;
  /** false when the process was already gone and nothing was signalled */
  readonly signalled: boolean;
  readonly tree: KillTreeResult | undefined;
}

/** Options shared by every kill. */
export interface KillOptions {
  /** SIGKILL at once instead of SIGTERM first @default false */
  readonly force?: boolean;
  /** how long to wait after SIGTERM before SIGKILL @default 10000 */
  readonly timeoutMs?: number;
  /** allow killing llama-servers of other users or other corral homes @default false */
  readonly includeForeign?: boolean;
  /** why, for the history @default "requested" */
  readonly reason?: string;
}

/** Per-PID result of {@link Registry.cleanupOrphans}. */
export interface CleanupResult {
  readonly pid: number;
  readonly verdict: Orphan["verdict"] | "unknown";
  readonly killed: boolean;
  /** why it was left alone, or why killing failed */
  readonly reason?: string;
}

/**
 * {@link Registry.kill}: stops an entry's process tree and unregisters it, refusing a PID whose
 * identity no longer matches the record.
 * @example
 * await killEntry(registry, "0", { timeoutMs: 5000 })
 */
export async function killEntry(registry: Registry, slot: string, options: KillOptions = {}): Promise<KillOutcome> {
  const { entry, probe } = await registry.verify(slot);
  if (probe.state === "exited") {
    await registry.unregister(slot, { pid: entry.pid, reason: `already exited: ${probe.reason}` });
    return { pid: entry.pid, slot, signalled: false, tree: undefined };
  }
  if (probe.state !== "running" || !probe.process) throw new NotOurProcessError(entry.pid, probe.reason);
  assertKillable(entry.pid, { ancestors: await ancestorsOf(process.pid, registry.probe) });
  if (entry.status !== "stopping")
    await registry.update(slot, { status: "stopping" }, options.reason ?? "stop requested");
  const tree = await killTree(entry.pid, {
    force: options.force,
    timeoutMs: options.timeoutMs,
    probe: registry.probe,
    isSame: (info) => registry.matches(entry, info),
  });
  await registry.unregister(slot, {
    pid: entry.pid,
    event: "killed",
    reason: `${options.reason ?? "stopped"} (${tree.signal}${tree.escalated ? " after timeout" : ""}, ${tree.ms} ms)`,
  });
  return { pid: entry.pid, slot, signalled: true, tree };
}

/**
 * {@link Registry.killByPid}: a tracked PID goes through {@link killEntry}; otherwise only a
 * llama-server of this user (or any user with `includeForeign`) is killed.
 * @example
 * await killPid(registry, 4242)
 */
export async function killPid(registry: Registry, pid: number, options: KillOptions = {}): Promise<KillOutcome> {
  assertKillable(pid, { ancestors: await ancestorsOf(process.pid, registry.probe) });
  const tracked = (await registry.list()).find(({ entry }) => entry.pid === pid);
  if (tracked) return killEntry(registry, tracked.slot, options);
  const info = await registry.probe.get(pid);
  if (!info || info.state === "Z") throw new ProcessNotFoundError(pid);
  assertForeignAllowed(registry, info, options);
  const tree = await killTree(pid, {
    force: options.force,
    timeoutMs: options.timeoutMs,
    probe: registry.probe,
    isSame: (now) => now.startTimeMs === info.startTimeMs,
  });
  await registry.record({ event: "orphan-killed", pid, reason: options.reason ?? `killed by pid (${tree.signal})` });
  return { pid, slot: undefined, signalled: true, tree };
}

/**
 * {@link Registry.killByName}: tracked models by id or name, else llama-server processes by
 * executable name; anything else is refused. Failures are gathered into an AggregateError.
 * @example
 * await killName(registry, "qwen-7b")
 */
export async function killName(registry: Registry, name: string, options: KillOptions = {}): Promise<KillOutcome[]> {
  const wanted = name.trim().toLowerCase();
  const tracked = (await registry.list()).filter(
    ({ entry }) => entry.model_id.toLowerCase() === wanted || entry.model_name.toLowerCase() === wanted,
  );
  if (tracked.length > 0)
    return killAll(
      tracked.map(
        ({ slot }) =>
          () =>
            killEntry(registry, slot, options),
      ),
    );
  const named = (await registry.probe.list()).filter(
    (p) => p.state !== "Z" && (p.name.toLowerCase() === wanted || basename(p.exe).toLowerCase() === wanted),
  );
  if (named.length === 0) throw new NameNotFoundError(name);
  const servers = named.filter((p) => isServerProcess(p, registry.names));
  if (servers.length === 0) throw new NotOurProcessError(named[0]!.pid, `"${name}" is not a llama-server`);
  return killAll(servers.map((p) => () => killPid(registry, p.pid, options)));
}

/**
 * {@link Registry.cleanupOrphans}: kills the orphans asked for and reports per PID; foreign ones
 * only with `includeForeign`.
 * @example
 * const results = await cleanupOrphans(registry, { pids: [4242] })
 */
export async function cleanupOrphans(
  registry: Registry,
  options: KillOptions & { pids?: readonly number[] } = {},
): Promise<CleanupResult[]> {
  const orphans = await registry.findOrphans();
  const wanted = options.pids ? new Set(options.pids) : undefined;
  const results: CleanupResult[] = [];
  for (const pid of wanted ?? []) {
    if (!orphans.some((o) => o.pid === pid)) {
      results.push({ pid, verdict: "unknown", killed: false, reason: "not an orphaned llama-server" });
    }
  }
  for (const orphan of orphans) {
    if (wanted && !wanted.has(orphan.pid)) continue;
    if (orphan.verdict === "foreign" && !options.includeForeign) {
      results.push({
        pid: orphan.pid,
        verdict: orphan.verdict,
        killed: false,
        reason: `foreign: ${orphan.reasons.join("; ")}`,
      });
      continue;
    }
    try {
      await killPid(registry, orphan.pid, {
        ...options,
        includeForeign: true,
        reason: `orphan cleanup (${orphan.verdict})`,
      });
      results.push({ pid: orphan.pid, verdict: orphan.verdict, killed: true });
    } catch (error) {
      results.push({ pid: orphan.pid, verdict: orphan.verdict, killed: false, reason: (error as Error).message });
    }
  }
  return results;
}

function assertForeignAllowed(registry: Registry, info: ProcessInfo, options: KillOptions): void {
  if (!isServerProcess(info, registry.names)) {
    throw new NotOurProcessError(info.pid, `it is ${info.exe ?? info.name}, not a llama-server`);
  }
  const me = process.getuid?.();
  if (!options.includeForeign && me !== undefined && info.uid !== undefined && info.uid !== me) {
    throw new NotOurProcessError(
      info.pid,
      `it belongs to user ${info.user ?? info.uid}; include foreign processes to kill it`,
    );
  }
}

async function killAll(jobs: Array<() => Promise<KillOutcome>>): Promise<KillOutcome[]> {
  const settled = await Promise.allSettled(jobs.map((job) => job()));
  const failures = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected").map((s) => s.reason);
  if (failures.length > 0) throw new AggregateError(failures, `${failures.length} of ${jobs.length} kills failed`);
  return settled.map((s) => (s as PromiseFulfilledResult<KillOutcome>).value);
}

function basename(path: string | undefined): string {
  if (!path) return "";
  return path.split(/[\\/]/).pop() ?? "";
}
