import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { basename } from "node:path";
import { errorCode } from "../os.ts";
import { clockTicks, commOf, type ProcStat, readProcStat, readProcText } from "./proc-stat.ts";
import type { KnownIdentity, ProcessInfo, ProcessProbe } from "./types.ts";

export { type ProcStat, parseProcStat } from "./proc-stat.ts";

/** Options of {@link procfsProbe}. */
export interface ProcfsProbeOptions {
  /**
   * The proc filesystem to read. Tests point it at a folder laid out like `/proc`.
   * @default "/proc"
   */
  readonly procRoot?: string;
  /**
   * Where user names come from (read once per file, then cached).
   * @default "/etc/passwd"
   */
  readonly passwdFile?: string;
  /**
   * Clock ticks per second, the unit of `/proc/<pid>/stat` field 22.
   * @default `getconf CLK_TCK`, asked once per process; 100 when that fails
   */
  readonly clockTicks?: number;
}

/**
 * Reads the process table straight from `/proc` (Linux): no process is spawned, so a scan
 * of a few hundred processes takes a few milliseconds. Start times come from
 * `/proc/<pid>/stat` field 22 plus `btime`, precise to one clock tick (10 ms).
 * @default procRoot "/proc", passwdFile "/etc/passwd", clockTicks from `getconf CLK_TCK`
 * @example
 * const probe = procfsProbe();
 * const me = await probe.get(process.pid); // { pid, ppid, name: "bun", exe: "/usr/local/bin/bun", … }
 */
export function procfsProbe(options: ProcfsProbeOptions = {}): ProcessProbe {
  const root = options.procRoot ?? "/proc";
  const passwdFile = options.passwdFile ?? "/etc/passwd";
  const context = (): ReadContext => ({
    root,
    users: userNames(passwdFile),
    btimeMs: bootTimeMs(root),
    tickMs: 1000 / (options.clockTicks ?? clockTicks()),
  });
  return {
    async list(listOptions = {}) {
      const ctx = context();
      const { inspect, detail } = listOptions;
      const out: ProcessInfo[] = [];
      for (const entry of readdirSync(root)) {
        if (!isPidName(entry)) continue;
        const pid = Number(entry);
        const stat = readStatLine(ctx, pid);
        if (stat === undefined) continue;
        if (stat === DENIED || stat.kernelThread) {
          out.push(stat === DENIED ? deniedProcess(pid) : kernelThread(ctx, pid, stat));
          continue;
        }
        if (inspect) {
          const brief = briefProcess(ctx, pid, stat);
          if (!inspect(brief)) {
            out.push(brief);
            continue;
          }
        }
        let info = readRest(ctx, pid, stat, detail ? "light" : "full");
        if (detail && !info.accessDenied && detail(info)) info = readDetail(ctx, info);
        out.push(info);
      }
      return out;
    },
    async get(pid) {
      if (!Number.isInteger(pid) || pid <= 0) return undefined;
      return readProcess(context(), pid);
    },
    async identities(pids, known) {
      const ctx = context();
      const out = new Map<number, ProcessInfo>();
      for (const pid of pids) {
        if (!Number.isInteger(pid) || pid <= 0 || out.has(pid)) continue;
        const stat = readStatLine(ctx, pid);
        if (stat === undefined) continue;
        if (stat === DENIED) out.set(pid, deniedProcess(pid));
        else if (stat.kernelThread) out.set(pid, kernelThread(ctx, pid, stat));
        else {
          const recorded = known?.get(pid);
          const settled = recorded !== undefined && settledByStat(ctx, stat, recorded);
          out.set(pid, settled ? knownProcess(ctx, pid, stat, recorded) : readRest(ctx, pid, stat, "identity"));
        }
      }
      return out;
    },
    async environ(pid) {
      if (!Number.isInteger(pid) || pid <= 0) return undefined;
      return readEnviron(root, pid);
    },
  };
}

interface ReadContext {
  readonly root: string;
  readonly users: ReadonlyMap<number, string>;
  readonly btimeMs: number | undefined;
  readonly tickMs: number;
}

function isPidName(name: string): boolean {
  const c = name.charCodeAt(0);
  return c >= 48 && c <= 57 && /^\d+$/.test(name);
}

/** The process went away while we read it. */
function isGone(e: unknown): boolean {
  const code = errorCode(e);
  return code === "ENOENT" || code === "ESRCH";
}

function isDenied(e: unknown): boolean {
  const code = errorCode(e);
  return code === "EACCES" || code === "EPERM";
}

/** full: everything; identity: no command line; light: no command line and no user. */
type ReadDepth = "full" | "identity" | "light";

function readProcess(ctx: ReadContext, pid: number, depth: ReadDepth = "full"): ProcessInfo | undefined {
  const stat = readStatLine(ctx, pid);
  if (stat === undefined) return undefined;
  if (stat === DENIED) return deniedProcess(pid);
  // Half the entries of a typical /proc are kernel threads; skipping their files halves a scan.
  if (stat.kernelThread) return kernelThread(ctx, pid, stat);
  return readRest(ctx, pid, stat, depth);
}

/** What {@link readStatLine} answers for a process hidden from us (hidepid). */
const DENIED = null;

/** The stat line; undefined when the process is gone, {@link DENIED} where hidepid hides it. */
function readStatLine(ctx: ReadContext, pid: number): ProcStat | typeof DENIED | undefined {
  try {
    return readProcStat(`${ctx.root}/${pid}/stat`);
  } catch (e) {
    if (isGone(e)) return undefined;
    if (!isDenied(e)) throw e;
    return DENIED;
  }
}

/** Reads what the stat line does not tell: the executable, then (by depth) the command line and owner. */
function readRest(ctx: ReadContext, pid: number, stat: ProcStat, depth: ReadDepth): ProcessInfo {
  const dir = `${ctx.root}/${pid}`;
  const [exe, denied] = attempt(() => readlinkSync(`${dir}/exe`).replace(/ \(deleted\)$/, ""));
  const info: ProcessInfo = {
    ...briefProcess(ctx, pid, stat),
    name: exe ? basename(exe) : stat.comm,
    exe: exe || undefined,
    accessDenied: denied,
  };
  return depth === "light" ? info : readDetail(ctx, info, depth === "full");
}

/** Adds the owner and (unless `cmdline` is false) the command line to what a light read gave. */
function readDetail(ctx: ReadContext, info: ProcessInfo, cmdline = true): ProcessInfo {
  const dir = `${ctx.root}/${info.pid}`;
  const [args, argsDenied] = cmdline ? attempt(() => splitNul(readProcText(`${dir}/cmdline`))) : [undefined, false];
  // The folder's owner is the effective uid (the kernel sets it so even for non-dumpable
  // processes), which is also what ps reports; stat is ~10x cheaper than parsing status.
  const [uid, uidDenied] = attempt(() => statSync(dir).uid);
  return {
    ...info,
    cmdline: args ?? [],
    uid,
    user: uid === undefined ? undefined : ctx.users.get(uid),
    accessDenied: info.accessDenied || argsDenied || uidDenied,
  };
}

/** The value, or undefined when the read failed; and whether it failed for lack of permission. */
function attempt<T>(read: () => T): [T | undefined, boolean] {
  try {
    return [read(), false];
  } catch (e) {
    return [undefined, isDenied(e)];
  }
}

/** What the stat line alone says: `name` is the kernel's command name and `exe` is not read. */
function briefProcess(ctx: ReadContext, pid: number, stat: ProcStat): ProcessInfo {
  return {
    pid,
    ppid: stat.ppid,
    name: stat.comm,
    exe: undefined,
    cmdline: [],
    startTimeMs: startMs(ctx, stat),
    startTimePrecisionMs: Math.max(1, Math.round(ctx.tickMs)),
    uid: undefined,
    user: undefined,
    state: stat.state,
    accessDenied: false,
  };
}

/**
 * Whether the stat line alone proves a PID still holds the recorded process. The start time
 * must be the recorded one to the clock tick (a reused PID belongs to a process started
 * later, and a stepped clock moves every start time, so either sends the PID to a full read),
 * and the command name must be the recorded executable's (an exec into another program
 * changes it).
 */
function settledByStat(ctx: ReadContext, stat: ProcStat, known: KnownIdentity): boolean {
  return startMs(ctx, stat) === known.startTimeMs && stat.comm === namesOf(known.exe).comm;
}

function knownProcess(ctx: ReadContext, pid: number, stat: ProcStat, known: KnownIdentity): ProcessInfo {
  return {
    pid,
    ppid: stat.ppid,
    name: namesOf(known.exe).name,
    exe: known.exe,
    cmdline: [],
    startTimeMs: known.startTimeMs,
    startTimePrecisionMs: Math.max(1, Math.round(ctx.tickMs)),
    uid: known.uid,
    user: known.uid === undefined ? undefined : ctx.users.get(known.uid),
    state: stat.state,
    accessDenied: false,
  };
}

/** Basename and kernel command name per executable path: a registry holds a handful of paths for many entries. */
const exeNames = new Map<string, { readonly name: string; readonly comm: string }>();
function namesOf(exe: string): { readonly name: string; readonly comm: string } {
  let names = exeNames.get(exe);
  if (!names) {
    if (exeNames.size >= 256) exeNames.clear();
    names = { name: basename(exe), comm: commOf(exe) };
    exeNames.set(exe, names);
  }
  return names;
}

function startMs(ctx: ReadContext, stat: ProcStat): number | undefined {
  return ctx.btimeMs === undefined ? undefined : Math.round(ctx.btimeMs + stat.startTicks * ctx.tickMs);
}

function startTime(ctx: ReadContext, stat: ProcStat): Pick<ProcessInfo, "startTimeMs" | "startTimePrecisionMs"> {
  return {
    startTimeMs: startMs(ctx, stat),
    startTimePrecisionMs: Math.max(1, Math.round(ctx.tickMs)),
  };
}

function kernelThread(ctx: ReadContext, pid: number, stat: ProcStat): ProcessInfo {
  return {
    pid,
    ppid: stat.ppid,
    name: stat.comm,
    exe: undefined,
    cmdline: [],
    ...startTime(ctx, stat),
    uid: 0,
    user: ctx.users.get(0),
    state: stat.state,
    accessDenied: false,
  };
}

function deniedProcess(pid: number): ProcessInfo {
  return {
    pid,
    ppid: 0,
    name: "",
    exe: undefined,
    cmdline: [],
    startTimeMs: undefined,
    startTimePrecisionMs: 10,
    uid: undefined,
    user: undefined,
    state: undefined,
    accessDenied: true,
  };
}

function splitNul(text: string): string[] {
  const parts = text.split("\0");
  if (parts.at(-1) === "") parts.pop();
  return parts;
}

function readEnviron(root: string, pid: number): Record<string, string> | undefined {
  let text: string;
  try {
    text = readProcText(`${root}/${pid}/environ`);
  } catch (e) {
    if (isGone(e) || isDenied(e)) return undefined;
    throw e;
  }
  const env: Record<string, string> = {};
  for (const pair of splitNul(text)) {
    const eq = pair.indexOf("=");
    if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

/**
 * Boot time in epoch ms. Read on every scan, not cached: the kernel derives it from the
 * wall clock, so it moves when the clock is stepped, and so do the start times built on it.
 */
function bootTimeMs(root: string): number | undefined {
  try {
    const text = readProcText(`${root}/stat`);
    const m = /^btime (\d+)$/m.exec(text);
    return m ? Number(m[1]) * 1000 : undefined;
  } catch {
    return undefined;
  }
}

const passwdCache = new Map<string, ReadonlyMap<number, string>>();

/**
 * uid → user name from a passwd-format file, read once per file and cached for the life
 * of the process (users are rarely added while corral runs, and a miss only loses a label).
 * @default file "/etc/passwd"
 * @example
 * userNames().get(0) // "root"
 */
export function userNames(file = "/etc/passwd"): ReadonlyMap<number, string> {
  let users = passwdCache.get(file);
  if (!users) {
    const map = new Map<number, string>();
    try {
      for (const line of readFileSync(file, "utf8").split("\n")) {
        const [name, , uid] = line.split(":");
        const n = Number(uid);
        if (name && uid && Number.isInteger(n) && !map.has(n)) map.set(n, name);
      }
    } catch {
      // No passwd file (macOS keeps users elsewhere): names stay unknown.
    }
    users = map;
    passwdCache.set(file, users);
  }
  return users;
}
