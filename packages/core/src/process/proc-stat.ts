import { execFileSync } from "node:child_process";
import { closeSync, openSync, readSync } from "node:fs";

/** The fields of `/proc/<pid>/stat` that corral uses (the probe's identity and the usage sampler's figures). */
export interface ProcStat {
  /** field 2, the kernel's command name: the executable's basename as exec'd, cut to 15 bytes */
  readonly comm: string;
  readonly state: string;
  readonly ppid: number;
  /** field 9 has PF_KTHREAD: a kernel thread, with no executable, command line or user */
  readonly kernelThread: boolean;
  /** utime + stime (fields 14 and 15), clock ticks */
  readonly cpuTicks: number;
  /** field 22, clock ticks after boot */
  readonly startTicks: number;
  /** field 24, resident pages: the same counter as statm's `resident`, which spares a second read */
  readonly rssPages: number;
}

const PF_KTHREAD = 0x00200000;

/**
 * Parses `/proc/<pid>/stat`: the one parser for every reader of that file. The command name
 * sits in parentheses and may itself hold spaces and parentheses, so the fixed fields are
 * counted from the LAST ")".
 * @example
 * parseProcStat("42 (a) b)) S 1 42 42 0 -1 0 0 0 0 0 120 30 0 0 20 0 1 0 777 0 250")
 * // { comm: "a) b)", state: "S", ppid: 1, kernelThread: false, cpuTicks: 150, startTicks: 777, rssPages: 250 }
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  // Field 3 (state) is rest[0], so field N is rest[N - 3].
  const rest = text.slice(close + 2).split(" ", 22);
  const state = rest[0];
  const ppid = Number(rest[1]);
  const cpuTicks = Number(rest[11]) + Number(rest[12]);
  const startTicks = Number(rest[19]);
  const rssPages = Number(rest[21]);
  if (!state || !(Number.isFinite(ppid) && Number.isFinite(cpuTicks) && Number.isFinite(startTicks))) return undefined;
  if (!Number.isFinite(rssPages)) return undefined;
  return {
    comm: text.slice(open + 1, close),
    state,
    ppid,
    kernelThread: (Number(rest[6]) & PF_KTHREAD) !== 0,
    cpuTicks,
    startTicks,
    rssPages,
  };
}

/** The longest command name the kernel keeps (TASK_COMM_LEN - 1). */
export const COMM_LENGTH = 15;

/**
 * The command name the kernel gives a process exec'd from `path` (its basename cut to 15 bytes),
 * to compare with {@link ProcStat.comm}.
 * @example
 * commOf("/opt/llama/llama-server-cuda-12") // "llama-server-cu"
 */
export function commOf(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  const bytes = Buffer.from(base, "utf8");
  return bytes.length <= COMM_LENGTH ? base : bytes.subarray(0, COMM_LENGTH).toString("utf8");
}

let ticksCache: number | undefined;

/**
 * Clock ticks per second, the unit of the stat file's times (USER_HZ): `getconf CLK_TCK`, asked
 * once per process; 100 (what Linux gives userspace on every mainstream architecture) when that fails.
 * @example
 * const startMs = btimeMs + (stat.startTicks * 1000) / clockTicks()
 */
export function clockTicks(): number {
  if (ticksCache === undefined) {
    try {
      const n = Number.parseInt(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }), 10);
      ticksCache = n > 0 ? n : 100;
    } catch {
      ticksCache = 100;
    }
  }
  return ticksCache;
}

let scratch = Buffer.allocUnsafe(16 * 1024);

/**
 * Reads a whole /proc file into one reused buffer. About twice as fast as readFileSync
 * here, which sizes its buffer with fstat (always 0 for /proc) and allocates per call.
 * A short read is taken as end of file: /proc fills each read as far as it can, and
 * skipping the extra read for EOF saves a system call per file.
 * @example
 * const stat = parseProcStat(readProcText(`/proc/${pid}/stat`))
 */
export function readProcText(path: string): string {
  const fd = openSync(path, "r");
  try {
    let length = 0;
    for (;;) {
      if (length === scratch.length) {
        const bigger = Buffer.allocUnsafe(scratch.length * 2);
        scratch.copy(bigger, 0, 0, length);
        scratch = bigger;
      }
      const want = scratch.length - length;
      const n = readSync(fd, scratch, length, want, null);
      length += n;
      if (n < want) break;
    }
    return scratch.toString("utf8", 0, length);
  } finally {
    closeSync(fd);
  }
}
