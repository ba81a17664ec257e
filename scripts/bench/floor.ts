/**
 * The kernel's floor for a scan: nothing but reading `/proc/<pid>/stat`, once per process, into
 * one reused buffer (no parsing, no objects). corral's scans are judged as a ratio to it,
 * measured in the same run, so the figure says how close they come whatever the host's load.
 */
import { closeSync, openSync, readdirSync, readSync } from "node:fs";

const buffer = Buffer.allocUnsafe(4096);

function readStat(pid: number | string): number {
  try {
    const fd = openSync(`/proc/${pid}/stat`, "r");
    try {
      return readSync(fd, buffer, 0, buffer.length, null);
    } finally {
      closeSync(fd);
    }
  } catch {
    return 0; // exited meanwhile
  }
}

/**
 * One stat read per process on the host (the floor of findOrphans). Returns how many were read.
 * @example
 * const samples = await timeRuns(21, () => statFloorAll())
 */
export function statFloorAll(): number {
  let n = 0;
  for (const name of readdirSync("/proc")) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    if (readStat(name) > 0) n++;
  }
  return n;
}

/**
 * One stat read per given PID (the floor of verifyAll). Returns how many were read.
 * @example
 * statFloorPids(entries.map((e) => e.pid))
 */
export function statFloorPids(pids: readonly number[]): number {
  let n = 0;
  for (const pid of pids) if (readStat(pid) > 0) n++;
  return n;
}
