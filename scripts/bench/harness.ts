/**
 * What every benchmark scenario shares: the figure record, medians and percentiles, and the
 * tracker that owns every process and temp folder the suite starts, so one `cleanup()` ends
 * exactly those (and nothing else on the machine) however the run ends.
 */

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

/** A target: the value must be below (`<`), at most (`<=`), above (`>`) or equal to (`=`) `value`. */
export interface Target {
  readonly op: "<" | "<=" | ">" | "=";
  readonly value: number;
}

/** One line of the results table (and one object of `bench-results.json`). */
export interface Figure {
  /** the scenario's number in issue 9 */
  readonly scenario: number;
  /** stable key for comparing runs, e.g. "verifyAll.1000" */
  readonly id: string;
  readonly figure: string;
  /** null when it could not be measured (see `note`) */
  readonly value: number | null;
  readonly unit: string;
  readonly target?: Target;
  /** true/false against the target; null for figures without one, or not measured */
  readonly pass: boolean | null;
  /** how it was measured, or why it failed */
  readonly note?: string;
}

/**
 * Builds a figure and judges it against its target.
 * @example
 * figure(1, "verifyAll.1000", "verifyAll, 1000 entries", 7.2, "ms", { op: "<", value: 10 })
 */
export function figure(
  scenario: number,
  id: string,
  name: string,
  value: number | null,
  unit: string,
  target?: Target,
  note?: string,
): Figure {
  let pass: boolean | null = null;
  if (target && value !== null) {
    const { op, value: limit } = target;
    pass = op === "<" ? value < limit : op === "<=" ? value <= limit : op === ">" ? value > limit : value === limit;
  }
  return { scenario, id, figure: name, value, unit, ...(target ? { target } : {}), pass, ...(note ? { note } : {}) };
}

/** What a scenario gets from the suite. */
export interface BenchContext {
  /** `--quick`: fewer repetitions and shorter loads, the whole suite under a minute */
  readonly quick: boolean;
  readonly tracker: Tracker;
  /** repetitions: `full` normally, `quick` with --quick */
  runs(full: number, quick: number): number;
  /** a progress line on stderr (stdout carries only the table) */
  log(message: string): void;
}

/** One scenario of the suite: one file under scripts/bench/. */
export interface Scenario {
  readonly scenario: number;
  readonly name: string;
  run(ctx: BenchContext): Promise<Figure[]>;
}

/**
 * The median of samples (the mean of the middle two for an even count).
 * @example
 * median([3, 1, 2]) // 2
 */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The p-th percentile (0..100), nearest rank.
 * @example
 * percentile([1, 2, 3, 4], 50) // 2
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/**
 * Times `fn` `runs` times after `warmup` untimed calls; milliseconds per call.
 * @example
 * const samples = await timeRuns(21, () => registry.verifyAll(), 2)
 */
export async function timeRuns(runs: number, fn: () => unknown, warmup = 2): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await fn();
    samples.push(performance.now() - started);
  }
  return samples;
}

/**
 * Times several ways of doing one thing in the same rounds, one after another in each round
 * (after `warmup` untimed rounds, each round starting with the next way), so every way sees the
 * same host load. A way may return the
 * time it measured itself (the original registry times its own work, leaving the pipe out).
 * @example
 * const { corral, floor } = await interleave(21, { corral: () => registry.verifyAll(), floor: () => statFloorPids(pids) })
 */
export async function interleave<W extends Record<string, (() => unknown) | undefined>>(
  runs: number,
  ways: W,
  warmup = 2,
): Promise<{ [K in keyof W]-?: number[] }> {
  const present = Object.entries(ways).filter((way): way is [string, () => unknown] => way[1] !== undefined);
  const samples: Record<string, number[]> = Object.fromEntries(present.map(([key]) => [key, []]));
  for (let round = -warmup; round < runs; round++) {
    // Each round starts with the next way: whichever runs first after another process's turn
    // (the original's) finds colder caches, and that should not always be the same one.
    const start = ((round % present.length) + present.length) % present.length;
    for (const [key, way] of [...present.slice(start), ...present.slice(0, start)]) {
      const started = performance.now();
      const own = await way();
      const ms = typeof own === "object" && own !== null && "ms" in own ? Number(own.ms) : performance.now() - started;
      if (round >= 0) samples[key]?.push(ms);
    }
  }
  return samples as { [K in keyof W]-?: number[] };
}

/** Rounds for display and JSON: 3 significant figures below 100, whole numbers above. */
export function round(value: number): number {
  if (!Number.isFinite(value)) return value;
  if (Math.abs(value) >= 100) return Math.round(value);
  return Number(value.toPrecision(3));
}

/**
 * Resident memory of a process in bytes (VmRSS), or undefined when it is gone.
 * @example
 * rssBytes(server.pid) // 52_428_800
 */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Waits for a promise, or rejects after `ms` saying what took too long: every wait on
 * something outside this process is bounded, so the suite always stops by itself.
 * @example
 * await within(child.exited, 30_000, "writer processes")
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Everything the suite started: processes (by pid, or by process group for detached ones)
 * and temp folders. `cleanup()` SIGKILLs only those and removes only those folders.
 */
export class Tracker {
  readonly #pids = new Set<number>();
  readonly #groups = new Set<number>();
  readonly #dirs = new Set<string>();

  /** Tracks a child we spawned; returns it. */
  process<T extends Subprocess>(child: T): T {
    this.#pids.add(child.pid);
    void child.exited.then(() => this.#pids.delete(child.pid));
    return child;
  }

  /** Tracks a pid we started some other way (a server the controller spawned detached). */
  pid(pid: number): void {
    this.#pids.add(pid);
  }

  /** Tracks a detached child's process group (its pid), to kill the group at the end. */
  group(pgid: number): void {
    this.#groups.add(pgid);
  }

  /** A new temp folder, removed at cleanup. */
  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), `corral-bench-${prefix}-`));
    this.#dirs.add(dir);
    return dir;
  }

  /** Tracks a folder made elsewhere (a test home), removed at cleanup. */
  dir(path: string): void {
    this.#dirs.add(path);
  }

  /** Stops tracking a pid (it was stopped on purpose), so a later reuse of the number is never signalled. */
  forget(pid: number): void {
    this.#pids.delete(pid);
    this.#groups.delete(pid);
  }

  /** Kills one tracked pid now and forgets it. */
  kill(pid: number): void {
    signal(pid, "SIGKILL");
    this.#pids.delete(pid);
  }

  /** SIGKILLs every tracked process and group, removes every temp folder. Safe to call twice. */
  cleanup(): void {
    for (const pgid of this.#groups) signal(-pgid, "SIGKILL");
    for (const pid of this.#pids) signal(pid, "SIGKILL");
    this.#groups.clear();
    this.#pids.clear();
    for (const dir of this.#dirs) rmSync(dir, { recursive: true, force: true });
    this.#dirs.clear();
  }

  /** How many tracked processes are still alive (for the end-of-run check). */
  alive(): number {
    let n = 0;
    for (const pid of this.#pids) if (isAlive(pid)) n++;
    return n;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

/** Alive and not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}
