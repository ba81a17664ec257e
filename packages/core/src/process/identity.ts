import type { ProcessEntry } from "../store/schema.ts";
import { commOf } from "./proc-stat.ts";
import { DEFAULT_SERVER_NAMES, type ProcessInfo } from "./types.ts";
import type { ProbeState } from "./views.ts";

export type { ProbeState };

/** The verdict on one entry, with a sentence a person can read. */
export interface ProbeResult {
  readonly state: ProbeState;
  readonly reason: string;
  /** the process now holding the PID, where there is one */
  readonly process?: ProcessInfo;
}

/** Options of {@link judgeEntry}. */
export interface JudgeOptions {
  /**
   * Executable names that count as llama-server.
   * @default DEFAULT_SERVER_NAMES
   */
  readonly names?: readonly string[];
  /**
   * For entries without `proc_start_ms`: how much later than `started_at` the process may
   * have started and still be the one recorded (the controller wrote `started_at` just
   * after spawning, on a clock that may differ slightly).
   * @default 2000
   */
  readonly clockSlackMs?: number;
  /**
   * Slack added to the precision when comparing start times, for boot-time jitter (Linux
   * derives start times from the wall clock, which may be stepped).
   * @default 1000
   */
  readonly startToleranceMs?: number;
}

/**
 * Decides whether the process holding an entry's PID is the one the entry recorded.
 * Proof of a different process (start time, executable, or not a llama-server at all)
 * wins over missing facts: a `redis-server` on a reused PID is "pid-reused", never ours.
 * @default names = DEFAULT_SERVER_NAMES, clockSlackMs = 2000, startToleranceMs = 1000
 * @example
 * const result = judgeEntry(entry, await probe.get(entry.pid));
 * if (result.state !== "running") console.log(`${entry.pid}: ${result.reason}`);
 */
export function judgeEntry(
  entry: ProcessEntry,
  info: ProcessInfo | undefined,
  options: JudgeOptions = {},
): ProbeResult {
  const pid = entry.pid;
  if (!info) return { state: "exited", reason: `no process with pid ${pid}: it exited` };
  if (info.state === "Z") return { state: "exited", reason: "zombie: exited, not yet reaped", process: info };
  const reused = (why: string): ProbeResult => ({
    state: "pid-reused",
    reason: `pid ${pid} now belongs to another process: ${why}`,
    process: info,
  });
  const startProblem = checkStart(entry, info, options);
  if (startProblem) return reused(startProblem);
  if (entry.executable && info.exe && !samePath(entry.executable, info.exe)) {
    return reused(`its executable is ${info.exe}, the registry recorded ${entry.executable}`);
  }
  if (info.accessDenied && (info.startTimeMs === undefined || (!info.exe && !info.name))) {
    return {
      state: "access-denied",
      reason: `pid ${pid} is running, but the OS would not show enough of it to tell whether it is the recorded process`,
      process: info,
    };
  }
  const names = options.names ?? DEFAULT_SERVER_NAMES;
  if (!isServerProcess(info, names)) {
    return reused(`it is ${describe(info)}, not a llama-server (expected ${names.join(" or ")})`);
  }
  return {
    state: "running",
    // Written when read: verifyAll judges every entry, and most of these sentences are never shown.
    get reason() {
      const since =
        info.startTimeMs === undefined
          ? "; this OS does not tell start times, so only the name was checked"
          : `, started ${new Date(info.startTimeMs).toISOString()}, as recorded`;
      return `pid ${pid} is ${describe(info)}${since}`;
    },
    process: info,
  };
}

function checkStart(entry: ProcessEntry, info: ProcessInfo, options: JudgeOptions): string | undefined {
  if (info.startTimeMs === undefined) return undefined;
  const started = (): string => new Date(info.startTimeMs as number).toISOString();
  if (entry.proc_start_ms !== undefined) {
    if (startTimeMatches(entry.proc_start_ms, info, options.startToleranceMs)) return undefined;
    return `it started at ${started()}, the recorded process at ${new Date(entry.proc_start_ms).toISOString()}`;
  }
  const recorded = parseTimestamp(entry.started_at);
  if (recorded === undefined) return undefined;
  const slack = options.clockSlackMs ?? 2000;
  if (info.startTimeMs <= recorded + slack) return undefined;
  return `it started at ${started()}, after the entry was written (started_at ${entry.started_at})`;
}

/**
 * Whether a recorded start time and a process's start time are the same, given the
 * coarser of the two precisions. A recorded value in whole seconds may have come from a
 * whole-second source, so it is granted a second.
 * @default toleranceMs = 1000
 * @example
 * startTimeMatches(entry.proc_start_ms, await probe.get(entry.pid))
 */
export function startTimeMatches(recordedMs: number, info: ProcessInfo, toleranceMs = 1000): boolean {
  if (info.startTimeMs === undefined) return true;
  const recordedPrecision = recordedMs % 1000 === 0 ? 1000 : 10;
  const precision = Math.max(recordedPrecision, info.startTimePrecisionMs);
  return Math.abs(recordedMs - info.startTimeMs) <= precision + toleranceMs;
}

/**
 * Whether a process is a llama-server: the basename of its executable, or else its name,
 * is one of `names`. Names ending in `.exe` compare case-insensitively, as Windows does.
 * @default names = DEFAULT_SERVER_NAMES
 * @example
 * isServerProcess({ ...info, exe: "/opt/llama/llama-server" }) // true
 * isServerProcess({ ...info, exe: "/usr/bin/redis-server" }) // false
 */
export function isServerProcess(info: ProcessInfo, names: readonly string[] = DEFAULT_SERVER_NAMES): boolean {
  // Loops rather than arrays: verifyAll asks this once per entry.
  const base = info.exe ? baseName(info.exe) : "";
  for (const name of names) {
    if ((base !== "" && sameName(base, name)) || (info.name !== "" && sameName(info.name, name))) return true;
  }
  return false;
}

/**
 * Whether a kernel command name (`/proc/<pid>/stat` field 2: the basename of what was exec'd,
 * cut to 15 characters) could be one of `names`: the cheap test before reading an executable.
 * @default names = DEFAULT_SERVER_NAMES
 * @example
 * mayBeServerComm("llama-server") // true
 * mayBeServerComm("redis-server") // false
 */
export function mayBeServerComm(comm: string, names: readonly string[] = DEFAULT_SERVER_NAMES): boolean {
  for (const name of names) if (sameName(comm, commOfName(name))) return true;
  return false;
}

/** commOf per server name: a scan asks once per process on the host. */
const nameComms = new Map<string, string>();
function commOfName(name: string): string {
  let comm = nameComms.get(name);
  if (comm === undefined) {
    comm = commOf(name);
    if (nameComms.size < 64) nameComms.set(name, comm);
  }
  return comm;
}

function sameName(a: string, b: string): boolean {
  if (a === b) return true;
  return b.toLowerCase().endsWith(".exe") && a.toLowerCase() === b.toLowerCase();
}

function samePath(a: string, b: string): boolean {
  return process.platform === "win32" ? a.toLowerCase() === b.toLowerCase() : a === b;
}

/**
 * The last part of a path, with either separator (a Windows path read on Linux included).
 * @example
 * baseName("C:\\llama\\llama-server.exe") // "llama-server.exe"
 */
export function baseName(path: string): string {
  return path.slice(Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1);
}

function describe(info: ProcessInfo): string {
  return info.exe ? `${baseName(info.exe)} (${info.exe})` : info.name ? `"${info.name}"` : "an unreadable process";
}

/**
 * What the registry records about a process so it can recognise it later.
 * @example
 * const info = await probe.get(child.pid);
 * registry.register({ ...entry, ...identityOf(info) });
 */
export function identityOf(info: ProcessInfo): { proc_start_ms?: number; executable?: string; uid?: number } {
  const out: { proc_start_ms?: number; executable?: string; uid?: number } = {};
  if (info.startTimeMs !== undefined) out.proc_start_ms = info.startTimeMs;
  if (info.exe !== undefined) out.executable = info.exe;
  if (info.uid !== undefined) out.uid = info.uid;
  return out;
}

const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Parses the timestamps found in registry files: ISO 8601 with `Z` or an offset, or naive
 * (Python's `datetime.now().isoformat()`, up to 9 fractional digits), which is local time.
 * Returns epoch ms, or undefined for anything else.
 * @example
 * parseTimestamp("2026-11-26T12:00:00.123456") // local noon, as epoch ms
 * parseTimestamp("2026-11-26T12:00:00Z") // 1795694400000
 */
export function parseTimestamp(s: string): number | undefined {
  const m = TIMESTAMP.exec(s.trim());
  if (!m) return undefined;
  const n = (i: number): number => Number(m[i] ?? 0);
  const [year, month, day, hour, minute, second] = [n(1), n(2), n(3), n(4), n(5), n(6)];
  const ms = Number((m[7] ?? "0").padEnd(3, "0").slice(0, 3));
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return undefined;
  const zone = m[8];
  let time: number;
  if (zone === undefined) {
    time = new Date(year, month - 1, day, hour, minute, second, ms).getTime();
    if (new Date(time).getDate() !== day) return undefined; // 31 February and friends
  } else {
    time = Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMs(zone);
    if (new Date(Date.UTC(year, month - 1, day)).getUTCDate() !== day) return undefined;
  }
  return Number.isNaN(time) ? undefined : time;
}

function offsetMs(zone: string): number {
  if (zone.toUpperCase() === "Z") return 0;
  const sign = zone.startsWith("-") ? -1 : 1;
  const digits = zone.slice(1).replace(":", "");
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || 0)) * 60_000;
}

/**
 * Whether a verdict means the recorded process is gone for good: it exited, or its PID now
 * belongs to another process. (access-denied and unknown say nothing either way.)
 * @example
 * if (isGone(verified.probe.state)) await registry.unregister(slot)
 */
export function isGone(state: ProbeState): boolean {
  return state === "exited" || state === "pid-reused";
}
