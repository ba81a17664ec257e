import { readFileSync } from "node:fs";

/** `/proc/<pid>/stat` field 22 (start time in clock ticks), or undefined when the PID is gone. */
function startTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which may itself hold spaces and parentheses, start at field 3.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[22 - 3];
  } catch {
    return undefined;
  }
}

/**
 * The processes a test file started, remembered with their start times so that cleanup never
 * signals a PID the kernel has since handed to someone else's process (pid_max is often 32768,
 * and other test files spawn processes at the same time).
 * @example
 * const own = new OwnProcesses(); own.add(child.pid); afterEach(() => own.killAll())
 */
export class OwnProcesses {
  readonly #started = new Map<number, string>();

  /** Remembers a live PID; a PID that is already gone is ignored. */
  add(pid: number): void {
    const ticks = startTicks(pid);
    if (ticks !== undefined && !this.#started.has(pid)) this.#started.set(pid, ticks);
  }

  /** SIGKILLs every remembered process that is still the same process, and forgets them all. */
  killAll(): void {
    for (const [pid, ticks] of this.#started) {
      if (startTicks(pid) !== ticks) continue;
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // exited between the check and the signal
      }
    }
    this.#started.clear();
  }
}
