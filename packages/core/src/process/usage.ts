import { readFile } from "node:fs/promises";
import { totalmem } from "node:os";
import { join } from "node:path";
import { clockTicks, type ProcStat, parseProcStatBytes } from "./proc-stat.ts";
import type { ProcessUsage } from "./views.ts";

export type { ProcessUsage };

/** CPU and resident memory of one process at one moment. */
export interface UsageFigures {
  /** CPU use since the previous sample of this PID (since its start on the first), percent of one core */
  readonly cpu_percent: number;
  /** resident set size, bytes */
  readonly rss_bytes: number;
}

/** One row of the process table as the non-Linux source needs it (a subset of ps-list's). */
export interface PsUsageRow {
  readonly pid: number;
  /** percent of one core */
  readonly cpu?: number;
  /** percent of total memory */
  readonly memory?: number;
}

/** Options of {@link createUsageSampler}. */
export interface UsageSamplerOptions {
  /**
   * Where procfs is mounted; tests point it at a folder of fake `<pid>/stat` files.
   * @default "/proc"
   */
  readonly procRoot?: string;
  /**
   * Monotonic clock, ms, for the wall time between two samples.
   * @default performance.now
   */
  readonly now?: () => number;
  /**
   * Kernel clock ticks per second, the unit of the stat file's CPU times (USER_HZ).
   * @default `getconf CLK_TCK`, asked once per process; 100 when that fails
   */
  readonly clockTicks?: number;
  /**
   * Bytes per memory page.
   * @default `getconf PAGESIZE`, run once per process, else 4096
   */
  readonly pageSize?: number;
  /**
   * Where figures come from: `/proc` (no process spawned) or one `ps-list` scan per sample.
   * @default "procfs" on Linux, else "ps"
   */
  readonly source?: "procfs" | "ps";
  /**
   * The process table for the "ps" source.
   * @default ps-list
   */
  readonly list?: () => Promise<readonly PsUsageRow[]>;
  /**
   * Total memory in bytes, to turn ps-list's memory percentage into bytes.
   * @default os.totalmem()
   */
  readonly totalMemory?: number;
  /**
   * A PID not sampled for this long is forgotten, so a sampler that outlives many processes stays small.
   * @default 600000
   */
  readonly forgetAfterMs?: number;
}

/** Samples CPU % and resident memory of a set of PIDs; keeps each PID's previous sample. */
export interface UsageSampler {
  /**
   * Figures for every PID that is alive; dead PIDs, zombies and PIDs the OS will not
   * describe are omitted.
   */
  sample(pids: readonly number[]): Promise<Map<number, UsageFigures>>;
}

interface Previous {
  readonly startTicks: number;
  readonly cpuTicks: number;
  readonly at: number;
  readonly cpuPercent: number;
}

const DEFAULT_PAGE_SIZE = 4096;
const DEFAULT_FORGET_AFTER_MS = 10 * 60 * 1000;
/** Reading a PID's stat fails with these when the process is gone or hidden from us. */
const ABSENT_CODES = new Set(["ENOENT", "ESRCH", "EACCES", "EPERM"]);

let pageSizeOnce: Promise<number> | undefined;

/** `getconf PAGESIZE`, asked once per process: 16 KiB and 64 KiB pages exist on arm64. */
function systemPageSize(): Promise<number> {
  pageSizeOnce ??= (async () => {
    try {
      const child = Bun.spawn(["getconf", "PAGESIZE"], { stdout: "pipe", stderr: "ignore", timeout: 2000 });
      const size = Number((await new Response(child.stdout).text()).trim());
      return (await child.exited) === 0 && Number.isInteger(size) && size > 0 ? size : DEFAULT_PAGE_SIZE;
    } catch {
      return DEFAULT_PAGE_SIZE;
    }
  })();
  return pageSizeOnce;
}

async function readStat(procRoot: string, pid: number): Promise<ProcStat | undefined> {
  try {
    const bytes = await readFile(join(procRoot, String(pid), "stat"));
    return parseProcStatBytes(bytes, bytes.length);
  } catch (error) {
    if (ABSENT_CODES.has((error as NodeJS.ErrnoException).code ?? "")) return undefined;
    throw error;
  }
}

async function readUptimeSeconds(procRoot: string): Promise<number | undefined> {
  try {
    const seconds = Number((await readFile(join(procRoot, "uptime"), "utf8")).split(/\s+/)[0]);
    return Number.isFinite(seconds) ? seconds : undefined;
  } catch {
    return undefined;
  }
}

const roundTenth = (value: number): number => Math.round(Math.max(0, value) * 10) / 10;

function validPids(pids: readonly number[]): number[] {
  return [...new Set(pids)].filter((pid) => Number.isInteger(pid) && pid > 0);
}

/**
 * A sampler of CPU % and resident memory per PID. On Linux each sample reads
 * `/proc/<pid>/stat` once per PID and spawns nothing; CPU % is the CPU time used between
 * two samples of the same process over the wall time between them (on the first sample
 * of a process, since it started). A PID whose start time changed is a new process and
 * starts over. Elsewhere one `ps-list` scan per sample gives the OS's own CPU % and a
 * memory percentage, turned into bytes with `os.totalmem()`.
 * @default options.procRoot = "/proc", options.clockTicks = `getconf CLK_TCK`, options.now = performance.now
 * @example
 * const sampler = createUsageSampler();
 * const usage = await sampler.sample([entry.pid]);
 * console.log(usage.get(entry.pid)?.cpu_percent);
 */
export function createUsageSampler(options: UsageSamplerOptions = {}): UsageSampler {
  const source = options.source ?? (process.platform === "linux" ? "procfs" : "ps");
  return source === "procfs" ? procfsSampler(options) : psSampler(options);
}

function procfsSampler(options: UsageSamplerOptions): UsageSampler {
  const procRoot = options.procRoot ?? "/proc";
  const now = options.now ?? (() => performance.now());
  const ticks = options.clockTicks ?? clockTicks();
  const forgetAfterMs = options.forgetAfterMs ?? DEFAULT_FORGET_AFTER_MS;
  const previous = new Map<number, Previous>();

  const cpuPercent = (pid: number, stat: ProcStat, at: number, uptime: number | undefined): number => {
    const before = previous.get(pid);
    if (before && before.startTicks === stat.startTicks) {
      const wallMs = at - before.at;
      // Two samples in the same instant carry no new information.
      if (wallMs <= 0) return before.cpuPercent;
      return roundTenth(((stat.cpuTicks - before.cpuTicks) / ticks / (wallMs / 1000)) * 100);
    }
    if (uptime === undefined) return 0;
    const aliveSeconds = uptime - stat.startTicks / ticks;
    return aliveSeconds > 0 ? roundTenth((stat.cpuTicks / ticks / aliveSeconds) * 100) : 0;
  };

  return {
    sample: async (pids) => {
      const pageSize = options.pageSize ?? (await systemPageSize());
      const wanted = validPids(pids);
      const stats = await Promise.all(wanted.map((pid) => readStat(procRoot, pid)));
      const at = now();
      const needsUptime = wanted.some((pid, i) => stats[i] && previous.get(pid)?.startTicks !== stats[i].startTicks);
      const uptime = needsUptime ? await readUptimeSeconds(procRoot) : undefined;
      const result = new Map<number, UsageFigures>();
      wanted.forEach((pid, i) => {
        const stat = stats[i];
        if (!stat || stat.state === "Z" || stat.state === "X") {
          previous.delete(pid);
          return;
        }
        const cpu = cpuPercent(pid, stat, at, uptime);
        previous.set(pid, { startTicks: stat.startTicks, cpuTicks: stat.cpuTicks, at, cpuPercent: cpu });
        result.set(pid, { cpu_percent: cpu, rss_bytes: stat.rssPages * pageSize });
      });
      for (const [pid, last] of previous) if (at - last.at > forgetAfterMs) previous.delete(pid);
      return result;
    },
  };
}

function psSampler(options: UsageSamplerOptions): UsageSampler {
  // Imported when first needed (about 12 ms): /proc machines never load it.
  const list = options.list ?? (async () => (await import("ps-list")).default());
  return {
    sample: async (pids) => {
      const wanted = new Set(validPids(pids));
      const total = options.totalMemory ?? totalmem();
      const result = new Map<number, UsageFigures>();
      for (const row of await list()) {
        // Windows' ps-list gives neither figure: better no row than invented zeros.
        if (!wanted.has(row.pid) || row.cpu === undefined || row.memory === undefined) continue;
        result.set(row.pid, {
          cpu_percent: roundTenth(row.cpu),
          rss_bytes: Math.round((row.memory / 100) * total),
        });
      }
      return result;
    },
  };
}
