import { setTimeout as sleep } from "node:timers/promises";
import treeKill from "tree-kill";
import { KillFailedError, NotOurProcessError } from "../errors.ts";
import { errorCode, pidExists } from "../os.ts";
import { startTimeMatches } from "./identity.ts";
import { defaultProbe } from "./probe.ts";
import type { ProcessInfo, ProcessProbe } from "./types.ts";

/** Options of {@link killTree}. */
export interface KillTreeOptions {
  /**
   * How long the tree gets to exit after SIGTERM before survivors get SIGKILL.
   * @default 10000
   */
  readonly timeoutMs?: number;
  /**
   * Send SIGKILL at once instead of SIGTERM first.
   * @default false
   */
  readonly force?: boolean;
  /**
   * Reads the process table (descendants, start times, liveness).
   * @default defaultProbe()
   */
  readonly probe?: ProcessProbe;
  /**
   * Whether the root is still the process the caller means (say, the registry's identity
   * check). Asked before the first signal and again before SIGKILL; when it says no, the
   * root is left alone.
   * @default every process passes; start times are checked regardless
   */
  readonly isSame?: (info: ProcessInfo) => boolean;
  /**
   * How long to wait for SIGKILL to take effect before giving up with KillFailedError.
   * @default 2000
   */
  readonly graceMs?: number;
}

/** What {@link killTree} did. */
export interface KillTreeResult {
  readonly pid: number;
  /** the root and every descendant seen before signalling */
  readonly pids: number[];
  /** the strongest signal sent */
  readonly signal: "SIGTERM" | "SIGKILL";
  /** SIGTERM was not enough and survivors got SIGKILL */
  readonly escalated: boolean;
  readonly ms: number;
}

type Signal = KillTreeResult["signal"];

/**
 * Stops a process and all its descendants: SIGTERM to the whole tree, back-off polling
 * (5 ms doubling, capped at 100 ms) until every process is gone, SIGKILL to survivors after
 * `timeoutMs`. Descendants are captured before signalling, so children reparented when
 * the root dies are still caught. A process counts as gone when it no longer exists, is a
 * zombie, or its PID now belongs to a process with another start time, which is never
 * signalled. A root that is already gone is success.
 * @throws NotOurProcessError for PID 1, our own PID and our ancestors, or when `isSame` says no
 * @throws KillFailedError when something survives SIGKILL for `graceMs`
 * @default timeoutMs = 10000, force = false, probe = defaultProbe(), graceMs = 2000
 * @example
 * const { escalated } = await killTree(entry.pid, { isSame: (p) => judgeEntry(entry, p).state === "running" });
 */
export async function killTree(pid: number, options: KillTreeOptions = {}): Promise<KillTreeResult> {
  const started = performance.now();
  const { timeoutMs = 10_000, force = false, graceMs = 2000, isSame } = options;
  const probe = options.probe ?? defaultProbe();
  const table = indexByPid(await probe.list());
  assertKillable(pid, { ancestors: ancestorsIn(table, process.pid) });
  const first: Signal = force ? "SIGKILL" : "SIGTERM";
  const result = (pids: number[], signal: Signal, escalated: boolean): KillTreeResult => ({
    pid,
    pids,
    signal,
    escalated,
    ms: Math.round(performance.now() - started),
  });
  const root = table.get(pid);
  if (!root || root.state === "Z") return result([pid], first, false);
  if (isSame && !isSame(root)) throw new NotOurProcessError(pid, "it no longer matches the process corral recorded");

  const targets = new Map<number, ProcessInfo>([[pid, root]]);
  for (const child of descendantsIn(table, pid)) targets.set(child.pid, child);
  const pids = [...targets.keys()];

  await signalAll(pid, targets, first);
  let survivors = await waitGone(probe, targets, force ? graceMs : timeoutMs);
  if (survivors.size === 0) return result(pids, first, false);
  if (force) throw stillAlive(survivors, graceMs);

  // The root is re-checked because its PID may have changed hands during the wait.
  const rootNow = survivors.get(pid);
  if (rootNow && isSame && !isSame(rootNow)) survivors.delete(pid);
  await signalAll(pid, survivors, "SIGKILL");
  survivors = await waitGone(probe, survivors, graceMs);
  if (survivors.size > 0) throw stillAlive(survivors, graceMs);
  return result(pids, "SIGKILL", true);
}

function stillAlive(survivors: ReadonlyMap<number, ProcessInfo>, graceMs: number): KillFailedError {
  return new KillFailedError(
    [...survivors.keys()],
    `still running ${graceMs} ms after SIGKILL (uninterruptible sleep, or not ours to kill)`,
  );
}

/** Signals the root's tree (as it is now, through tree-kill) and every captured process. */
async function signalAll(rootPid: number, targets: ReadonlyMap<number, ProcessInfo>, signal: Signal): Promise<void> {
  if (targets.has(rootPid)) {
    try {
      await treeKillAsync(rootPid, signal);
    } catch (cause) {
      if (errorCode(cause) !== "EPERM") throw cause;
      throw new KillFailedError([rootPid], "permission denied", { cause });
    }
  }
  for (const pid of targets.keys()) {
    // A descendant we may not signal is reported later, when it is still alive.
    if (pid !== rootPid) sendSignal(pid, signal);
  }
}

function treeKillAsync(pid: number, signal: Signal): Promise<void> {
  // tree-kill walks the tree with `ps` and would crash the process on a missing `ps` (it
  // has no "error" listener), so without one the root alone is signalled; the captured
  // descendants are signalled either way.
  if (process.platform !== "win32" && !Bun.which(process.platform === "darwin" ? "pgrep" : "ps")) {
    sendSignal(pid, signal, true);
    return Promise.resolve();
  }
  return new Promise((resolve, reject) => {
    treeKill(pid, signal, (error) => (error ? reject(error) : resolve()));
  });
}

function sendSignal(pid: number, signal: Signal, rethrow = false): void {
  try {
    process.kill(pid, signal);
  } catch (e) {
    if (errorCode(e) !== "ESRCH" && rethrow) throw e;
  }
}

/** Polls until every target is gone or `budgetMs` passes; returns the survivors as they are now. */
async function waitGone(
  probe: ProcessProbe,
  targets: ReadonlyMap<number, ProcessInfo>,
  budgetMs: number,
): Promise<Map<number, ProcessInfo>> {
  const deadline = performance.now() + budgetMs;
  let delay = 5;
  for (;;) {
    const alive = await survivorsOf(probe, targets);
    const left = deadline - performance.now();
    if (alive.size === 0 || left <= 0) return alive;
    await sleep(Math.min(delay, left));
    delay = Math.min(delay * 2, 100);
  }
}

async function survivorsOf(
  probe: ProcessProbe,
  targets: ReadonlyMap<number, ProcessInfo>,
): Promise<Map<number, ProcessInfo>> {
  const alive = new Map<number, ProcessInfo>();
  for (const [pid, was] of targets) {
    if (!pidExists(pid)) continue;
    const now = await probe.get(pid);
    if (!now || now.state === "Z") continue;
    if (was.startTimeMs !== undefined && !startTimeMatches(was.startTimeMs, now)) continue;
    alive.set(pid, now);
  }
  return alive;
}

/**
 * Refuses PIDs corral must never signal: non-integers, PID ≤ 1 (0 and negatives address
 * process groups, 1 is init), corral itself, its parent and, when given, its other ancestors.
 * @throws NotOurProcessError naming the reason
 * @default ancestors = just our parent
 * @example
 * assertKillable(entry.pid, { ancestors: await ancestorsOf(process.pid) });
 */
export function assertKillable(pid: number, options: { readonly ancestors?: ReadonlySet<number> } = {}): void {
  if (!Number.isInteger(pid)) throw new NotOurProcessError(pid, "not a process id");
  if (pid <= 0) throw new NotOurProcessError(pid, "a pid of 0 or below addresses a process group, not one process");
  if (pid === 1) throw new NotOurProcessError(pid, "pid 1 is the init process");
  if (pid === process.pid) throw new NotOurProcessError(pid, "it is corral itself");
  if (pid === process.ppid || options.ancestors?.has(pid)) {
    throw new NotOurProcessError(pid, "it is an ancestor of corral (the shell or supervisor that started it)");
  }
}

/**
 * The ancestors of a process (parent, grandparent … up to init), read one process at a time
 * up the chain: a handful of reads, not a scan of the whole table.
 * @default probe = defaultProbe()
 * @example
 * const mine = await ancestorsOf(process.pid); // Set { 4100, 812, 1 }
 */
export async function ancestorsOf(pid: number, probe: ProcessProbe = defaultProbe()): Promise<Set<number>> {
  const found = new Set<number>();
  if (pid === process.pid && process.ppid > 0) found.add(process.ppid);
  let next = (await probe.get(pid))?.ppid;
  while (next !== undefined && next > 0 && !found.has(next)) {
    found.add(next);
    next = (await probe.get(next))?.ppid;
  }
  return found;
}

function indexByPid(list: readonly ProcessInfo[]): Map<number, ProcessInfo> {
  return new Map(list.map((p) => [p.pid, p]));
}

function ancestorsIn(table: ReadonlyMap<number, ProcessInfo>, pid: number): Set<number> {
  const found = new Set<number>();
  if (pid === process.pid && process.ppid > 0) found.add(process.ppid);
  let next = table.get(pid)?.ppid;
  while (next !== undefined && next > 0 && !found.has(next)) {
    found.add(next);
    next = table.get(next)?.ppid;
  }
  return found;
}

/**
 * Every descendant of `pid` in a process table, nearest first; never our own PID.
 * @example
 * const table = new Map((await probe.list()).map((p) => [p.pid, p]));
 * descendantsIn(table, server.pid).map((p) => p.pid) // [4243, 4250]
 */
export function descendantsIn(table: ReadonlyMap<number, ProcessInfo>, pid: number): ProcessInfo[] {
  const children = new Map<number, ProcessInfo[]>();
  for (const p of table.values()) {
    if (p.pid === p.ppid) continue;
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const out: ProcessInfo[] = [];
  const seen = new Set<number>([pid]);
  const queue = [pid];
  for (let at = queue.shift(); at !== undefined; at = queue.shift()) {
    for (const child of children.get(at) ?? []) {
      if (seen.has(child.pid) || child.pid === process.pid) continue;
      seen.add(child.pid);
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}
