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
  const bytes = Buffer.from(text, "utf8");
  return parseProcStatBytes(bytes, bytes.length);
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

type Utf8Slicing = Buffer & { utf8Slice?: (start: number, end: number) => string };
/** Bun's and Node's `utf8Slice` is `toString("utf8")` without its argument handling: a fifth of the cost per file. */
const utf8: (buffer: Buffer, length: number) => string =
  typeof (scratch as Utf8Slicing).utf8Slice === "function"
    ? (buffer, length) => (buffer as Utf8Slicing).utf8Slice?.(0, length) ?? ""
    : (buffer, length) => buffer.toString("utf8", 0, length);

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
    return utf8(scratch, length);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads and parses `/proc/<pid>/stat` without making a string of the line: the fields are read
 * from the bytes and only the command name is decoded. A scan reads one per process, and the
 * line's string was most of what it allocated. Throws what opening the file throws.
 * @example
 * readProcStat(`/proc/${pid}/stat`)?.startTicks
 */
export function readProcStat(path: string): ProcStat | undefined {
  const fd = openSync(path, "r");
  let length: number;
  try {
    length = readSync(fd, scratch, 0, scratch.length, null);
  } finally {
    closeSync(fd);
  }
  return parseProcStatBytes(scratch, length);
}

/**
 * The parser behind {@link parseProcStat} and {@link readProcStat}, over the bytes of the line:
 * the fields are walked without splitting, and only the command name is decoded.
 * @example
 * parseProcStatBytes(Buffer.from("42 (a) S 1 …"), 27)
 */
export function parseProcStatBytes(bytes: Buffer, length: number): ProcStat | undefined {
  const open = bytes.indexOf(0x28); // "("
  const close = bytes.lastIndexOf(0x29, length - 1); // ")"
  if (open < 0 || close < open || close + 2 >= length) return undefined;
  const stateCode = bytes[close + 2] as number;
  if (stateCode === 0x20 || stateCode === 0x0a) return undefined;
  let field = 3;
  let ppid = 0;
  let flags = 0;
  let cpuTicks = 0;
  let startTicks = 0;
  let rssPages = -1;
  let i = close + 3;
  while (field < 24 && i < length) {
    if (bytes[i] !== 0x20) return undefined;
    i++;
    field++;
    let negative = false;
    if (bytes[i] === 0x2d) {
      negative = true;
      i++;
    }
    let n = 0;
    const first = i;
    for (let c = bytes[i] as number; c >= 0x30 && c <= 0x39; c = bytes[++i] as number) n = n * 10 + (c - 0x30);
    if (i === first) return undefined;
    if (negative) n = -n;
    if (field === 4) ppid = n;
    else if (field === 9) flags = n;
    else if (field === 14 || field === 15) cpuTicks += n;
    else if (field === 22) startTicks = n;
    else if (field === 24) rssPages = n;
  }
  if (field < 24 || rssPages < 0) return undefined;
  return {
    comm: utf8Range(bytes, open + 1, close),
    state: String.fromCharCode(stateCode),
    ppid,
    kernelThread: (flags & PF_KTHREAD) !== 0,
    cpuTicks,
    startTicks,
    rssPages,
  };
}

function utf8Range(buffer: Buffer, start: number, end: number): string {
  const slicing = buffer as Utf8Slicing;
  return typeof slicing.utf8Slice === "function" ? slicing.utf8Slice(start, end) : buffer.toString("utf8", start, end);
}
