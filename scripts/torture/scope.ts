/**
 * What one scenario started (processes, homes, temp folders, mounts), so that it cleans up
 * exactly that and nothing else: other engineers' tests run llama-server stand-ins on the
 * same machine at the same time, and they must never be seen, let alone signalled.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultProbe, homeIdOf, isServerProcess, MARKER_ENV, type ProcessInfo, type ProcessProbe } from "@corral/core";

/**
 * Start time of a live, non-zombie process in clock ticks since boot (`/proc/<pid>/stat`
 * field 22), or undefined when there is no such process.
 * @example
 * const before = startTicks(pid); … if (startTicks(pid) !== before) console.log("it was replaced or is gone")
 */
export function startTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (rest[0] === "Z" || rest[0] === "X") return undefined;
    return Number(rest[19]);
  } catch {
    return undefined;
  }
}

/**
 * Whether the process that had `ticks` as its start time is still alive (and not a zombie).
 * @example
 * const ticks = startTicks(pid); … if (!stillAlive(pid, ticks)) console.log("killed")
 */
export function stillAlive(pid: number, ticks: number | undefined): boolean {
  return ticks !== undefined && startTicks(pid) === ticks;
}

/**
 * Polls `cond` every 20 ms until it returns something truthy, or gives up after `timeoutMs`
 * and returns undefined (scenarios count that as a failure; they never hang).
 * @example
 * const ok = await until(() => existsSync(file), 5000)
 */
export async function until<T>(cond: () => T | Promise<T>, timeoutMs: number): Promise<NonNullable<T> | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await cond();
      if (value) return value as NonNullable<T>;
    } catch {
      // not yet
    }
    if (Date.now() >= deadline) return undefined;
    await Bun.sleep(20);
  }
}

/** Scopes not cleaned up yet, so an interrupted run (Ctrl-C, the watchdog) can still clean up. */
const open = new Set<Scope>();

/**
 * Cleans up every scope that has not cleaned up yet: for SIGINT and the overall time limit.
 * @example
 * process.once("SIGINT", () => void cleanupAll().finally(() => process.exit(130)))
 */
export async function cleanupAll(): Promise<void> {
  await Promise.all([...open].map((scope) => scope.cleanup()));
}

/**
 * The resources of one scenario run.
 * @example
 * const scope = new Scope(); try { const dir = scope.tempDir("store"); … } finally { await scope.cleanup() }
 */
export class Scope {
  /** processes this scenario started, with their start time: only these are ever signalled */
  readonly #pids = new Map<number, number | undefined>();
  /** ids of the corral homes this scenario created: processes carrying one are ours too */
  readonly homeIds = new Set<string>();
  readonly #dirs: string[] = [];
  readonly #mounts: string[] = [];
  readonly #cleanups: Array<() => void | Promise<void>> = [];

  constructor() {
    open.add(this);
  }

  /** Remembers a process we started (with its start time, so a reused PID is never hit). */
  track(pid: number): void {
    if (!this.#pids.has(pid)) this.#pids.set(pid, startTicks(pid));
  }

  tracks(pid: number): boolean {
    return this.#pids.has(pid);
  }

  /** A fresh temp folder, removed on cleanup. */
  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), `corral-torture-${prefix}-`));
    this.#dirs.push(dir);
    return dir;
  }

  /** Registers a corral home, so processes carrying its marker count as ours. */
  home(home: string): string {
    this.homeIds.add(homeIdOf(home));
    return home;
  }

  mounted(dir: string): void {
    this.#mounts.push(dir);
  }

  /** Runs `fn` on cleanup, before processes are killed and folders removed. */
  defer(fn: () => void | Promise<void>): void {
    this.#cleanups.push(fn);
  }

  /** Whether a process belongs to this scenario: tracked itself or through an ancestor, or marked by one of our homes. */
  async owns(info: ProcessInfo, lookup: (pid: number) => Promise<ProcessInfo | undefined>): Promise<boolean> {
    let at: ProcessInfo | undefined = info;
    for (let hops = 0; at && hops < 64; hops++) {
      if (this.#pids.has(at.pid)) return true;
      if (at.ppid <= 1) break;
      at = await lookup(at.ppid);
    }
    const home = (await defaultProbe().environ(info.pid))?.[MARKER_ENV.home];
    return home !== undefined && this.homeIds.has(home);
  }

  /**
   * The real process probe, blind to llama-servers this scenario did not start: an orphan scan,
   * a cleanup or a kill by name then only ever sees ours. Everything else (a copied `sleep`,
   * our own bun) is shown as it is.
   */
  probe(): ProcessProbe {
    const real = defaultProbe();
    return {
      list: async () => {
        const all = await real.list();
        const byPid = new Map(all.map((p) => [p.pid, p]));
        const lookup = async (pid: number) => byPid.get(pid);
        const keep = await Promise.all(all.map(async (p) => !isServerProcess(p) || (await this.owns(p, lookup))));
        return all.filter((_, i) => keep[i]);
      },
      get: async (pid) => {
        const info = await real.get(pid);
        if (!info || !isServerProcess(info)) return info;
        return (await this.owns(info, (p) => real.get(p))) ? info : undefined;
      },
      environ: (pid) => real.environ(pid),
    };
  }

  /** Every live llama-server that carries one of our homes' markers. */
  async markedServers(): Promise<ProcessInfo[]> {
    const probe = defaultProbe();
    const found: ProcessInfo[] = [];
    for (const p of await probe.list()) {
      if (p.state === "Z" || !isServerProcess(p)) continue;
      const home = (await probe.environ(p.pid))?.[MARKER_ENV.home];
      if (home !== undefined && this.homeIds.has(home)) found.push(p);
    }
    return found;
  }

  /**
   * Kills what we started (whole process groups: stand-ins run detached), the processes our
   * homes' markers name, unmounts our mounts and removes our folders. Never anything else.
   */
  async cleanup(): Promise<void> {
    open.delete(this);
    for (const fn of this.#cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        // cleanup goes on
      }
    }
    for (const p of await this.markedServers().catch(() => [])) this.track(p.pid);
    for (const [pid, ticks] of this.#pids) {
      if (!stillAlive(pid, ticks)) continue;
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, "SIGKILL");
        } catch {
          // not a group leader, or gone
        }
      }
    }
    for (const dir of this.#mounts.splice(0).reverse()) {
      if (spawnSync("umount", [dir]).status !== 0) spawnSync("umount", ["-l", dir]);
    }
    for (const dir of this.#dirs.splice(0).reverse()) rmSync(dir, { recursive: true, force: true });
  }
}
