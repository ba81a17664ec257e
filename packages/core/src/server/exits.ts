/**
 * Exit statuses of the servers this process spawned. Only the parent can `wait()` on a child: a
 * server that outlived a `corral serve` and was reattached by the next one is no child of the new
 * process, and its exit status is lost to it. So what is known is said, and the rest is "unknown".
 */

/** How a server ended, as far as this process can tell. */
export interface ExitStatus {
  /** the exit code, or null when it was ended by a signal or nothing is known */
  readonly code: number | null;
  /** the signal's name ("SIGSEGV") when a signal ended it, else null */
  readonly signal: string | null;
  /** false when this process did not spawn it (reattached after a restart of corral, adopted, another process's) */
  readonly known: boolean;
  /** why nothing is known, for people */
  readonly note?: string;
}

interface Child {
  readonly exited: Promise<unknown>;
  readonly exitCode: number | null;
  readonly signalCode: string | number | null;
}

/** Children still running plus the latest exited ones; older exited records are dropped. */
const children = new Map<number, { child: Child; instanceId: string | undefined; exitedAt?: number }>();
const MAX_EXITED = 256;

/**
 * Remembers a spawned child so that its exit status can be told later ({@link exitStatusOf}).
 * @example
 * const child = Bun.spawn(argv, { detached: true }); rememberChild(child.pid, child, instanceId)
 */
export function rememberChild(pid: number, child: Child, instanceId?: string): void {
  const record: { child: Child; instanceId: string | undefined; exitedAt?: number } = { child, instanceId };
  children.set(pid, record);
  void child.exited.then(
    () => {
      record.exitedAt = Date.now();
      pruneExited();
    },
    () => undefined,
  );
}

function pruneExited(): void {
  const exited = [...children.entries()].filter(([, r]) => r.exitedAt !== undefined);
  exited.sort((a, b) => (a[1].exitedAt ?? 0) - (b[1].exitedAt ?? 0));
  for (const [pid] of exited.slice(0, Math.max(0, exited.length - MAX_EXITED))) children.delete(pid);
}

/**
 * How a server this process spawned ended: waits up to `waitMs` for the OS to hand over the
 * status (a crash can be seen in `/proc` a moment before the child is reaped). A PID this process
 * did not spawn, or spawned under another instance id (the PID was reused), is `known: false`.
 * @default waitMs = 1000
 * @example
 * const exit = await exitStatusOf(entry.pid, entry.instance_id) // { code: 134, signal: null, known: true }
 */
export async function exitStatusOf(pid: number, instanceId?: string, waitMs = 1000): Promise<ExitStatus> {
  const record = children.get(pid);
  if (!record || (instanceId !== undefined && record.instanceId !== undefined && record.instanceId !== instanceId)) {
    return {
      code: null,
      signal: null,
      known: false,
      note: "unknown: this corral did not start the process (it was reattached or adopted), so the OS gave its exit status to another",
    };
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const waited = await Promise.race([
    record.child.exited.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), waitMs);
    }),
  ]).finally(() => clearTimeout(timer));
  if (!waited) return { code: null, signal: null, known: false, note: `unknown: not reaped within ${waitMs} ms` };
  children.delete(pid);
  const { signalCode, exitCode } = record.child;
  const signal = signalCode === null ? null : String(signalCode);
  return { code: signal ? null : exitCode, signal, known: true };
}

/**
 * "exit code 134", "signal SIGSEGV" or "exit status unknown".
 * @example
 * describeExit({ code: null, signal: "SIGKILL", known: true }) // "signal SIGKILL"
 */
export function describeExit(exit: ExitStatus): string {
  if (!exit.known) return "exit status unknown";
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}
