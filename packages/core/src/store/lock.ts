import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { resolve } from "node:path";
import { LockTimeoutError } from "../errors.ts";
import { pidExists } from "../os.ts";
import { assertRegularFile, effectiveUid, openNoFollowSync } from "./secure-fs.ts";

/**
 * How the cross-process half of the lock is taken.
 * @example
 * await withFileLock(lockFile, work, { method: "pidfile" })
 */
export type LockMethod = "flock" | "pidfile";

/**
 * Options of {@link withFileLock}.
 * @example
 * const options: FileLockOptions = { timeoutMs: 2000 }
 */
export interface FileLockOptions {
  /**
   * How long to wait for the lock, in-process queue included, before throwing `LockTimeoutError`.
   * @default 10000
   */
  readonly timeoutMs?: number;
  /**
   * `"flock"`: a kernel advisory lock, dropped by the kernel when its holder dies, however it dies.
   * `"pidfile"`: an exclusively created lock file holding the owner's pid, for systems without `flock`
   * (Windows); see {@link withFileLock} for its limits. Tests pick one to exercise both here.
   * @default "flock" where libc's flock can be loaded through bun:ffi, else "pidfile"
   */
  readonly method?: LockMethod;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const FIRST_DELAY_MS = 1;
const MAX_DELAY_MS = 25;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

type FlockFn = (fd: number, operation: number) => number;

/** Tail of the in-process queue per resolved lock path. */
const queues = new Map<string, Promise<void>>();
let flockFn: FlockFn | null | undefined;

/**
 * Runs `fn` while holding an exclusive lock on `lockFile`, shared by every process that
 * locks the same path (the CLI and the server), and releases it however `fn` ends.
 *
 * Callers in one process queue up in memory first, so only one of them at a time polls the
 * OS lock; that poll backs off from 1 ms, doubling, to 25 ms.
 *
 * With `flock` (Linux, macOS) the lock file is persistent and its presence blocks nobody: the
 * kernel holds the lock, and drops it when the holder's descriptor closes, SIGKILL included.
 * The holder writes its pid into the file, for the timeout message only.
 *
 * The `pidfile` fallback (Windows, or where bun:ffi cannot load libc) creates the lock file
 * exclusively with `{ pid, since }` and removes it on release. A file whose pid is dead is
 * stale and is taken over. Its limits: a crash leaves the file behind until someone notices
 * the pid is dead; if the OS has reused that pid for a live process, waiters time out instead
 * (the message names the pid, so the user can delete the file); and two waiters finding the
 * same stale file in the same instant may both take it over (the window is one read and one
 * unlink, only after a crash).
 *
 * @default options.timeoutMs = 10000, options.method = "flock" where available
 * @throws LockTimeoutError naming the holder's pid when the lock stays busy past `timeoutMs`
 * @example
 * await withFileLock(`${registryFile}.lock`, async () => {
 *   const doc = await readRegistry();
 *   await writeRegistry(change(doc));
 * });
 */
export async function withFileLock<T>(
  lockFile: string,
  fn: () => Promise<T>,
  options: FileLockOptions = {},
): Promise<T> {
  const file = resolve(lockFile);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const previous = queues.get(file) ?? Promise.resolve();
  let leaveQueue!: () => void;
  const mine = new Promise<void>((done) => (leaveQueue = done));
  const tail = previous.then(() => mine);
  queues.set(file, tail);
  try {
    await waitForTurn(previous, deadline, file, timeoutMs);
    const method = options.method ?? (loadFlock() ? "flock" : "pidfile");
    const take = method === "flock" ? takeFlock : takePidfile;
    const release = await take(file, deadline, timeoutMs);
    try {
      return await fn();
    } finally {
      release();
    }
  } finally {
    leaveQueue();
    if (queues.get(file) === tail) queues.delete(file);
  }
}

/** Waits for the same-process callers ahead of us; a caller that times out still passes its turn on. */
async function waitForTurn(previous: Promise<void>, deadline: number, file: string, timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"expired">((done) => {
    timer = setTimeout(() => done("expired"), Math.max(0, deadline - Date.now()));
  });
  try {
    const outcome = await Promise.race([previous.then(() => "ready" as const), expired]);
    if (outcome === "expired") throw new LockTimeoutError(file, timeoutMs, process.pid);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `attempt` with back-off until it returns a value or the deadline passes. */
async function poll<R>(attempt: () => R | undefined, deadline: number, onTimeout: () => Error): Promise<R> {
  let delay = FIRST_DELAY_MS;
  for (;;) {
    const got = attempt();
    if (got !== undefined) return got;
    const left = deadline - Date.now();
    if (left <= 0) throw onTimeout();
    await Bun.sleep(Math.min(delay, left));
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  }
}

function loadFlock(): FlockFn | null {
  if (flockFn !== undefined) return flockFn;
  flockFn = null;
  if (process.platform === "win32") return flockFn;
  const candidates =
    process.platform === "darwin" ? ["libSystem.B.dylib", "libc.dylib"] : ["libc.so.6", "libc.so.7", "libc.so"];
  try {
    // Loaded lazily so that a runtime without bun:ffi falls back instead of failing to import.
    const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
    for (const name of candidates) {
      try {
        const lib = dlopen(name, { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
        flockFn = lib.symbols.flock as FlockFn;
        break;
      } catch {
        // try the next name
      }
    }
  } catch {
    // no bun:ffi: the pidfile fallback is used
  }
  return flockFn;
}

async function takeFlock(file: string, deadline: number, timeoutMs: number): Promise<() => void> {
  const flock = loadFlock();
  if (!flock) throw new Error("flock is not available on this system");
  const fd = await poll(
    () => tryFlock(flock, file),
    deadline,
    () => new LockTimeoutError(file, timeoutMs, holderPid(file)),
  );
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
  } catch {
    // the pid is only for diagnostics; holding the lock is what matters
  }
  return () => {
    flock(fd, LOCK_UN);
    closeSync(fd);
  };
}

/** One non-blocking try: the locked descriptor, or undefined when someone else holds it. */
function tryFlock(flock: FlockFn, file: string): number | undefined {
  // Never through a symlink, and only our own regular file: the holder truncates and writes it.
  const fd = openNoFollowSync(file, constants.O_RDWR | constants.O_CREAT);
  try {
    assertRegularFile(fstatSync(fd), file, [effectiveUid()]);
    if (flock(fd, LOCK_EX | LOCK_NB) === 0) {
      // If someone deleted and recreated the lock file meanwhile, this is a lock on an orphaned
      // inode that nobody else will ever look at: let go and try again on the file that is there now.
      if (sameInode(fd, file)) return fd;
      flock(fd, LOCK_UN);
    }
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  closeSync(fd);
  return undefined;
}

function sameInode(fd: number, file: string): boolean {
  try {
    const held = fstatSync(fd);
    const named = statSync(file);
    return held.ino === named.ino && held.dev === named.dev;
  } catch {
    return false;
  }
}

function holderPid(file: string): number | undefined {
  try {
    const text = readFileSync(file, "utf8");
    const pid = Number.parseInt(text.match(/\d+/)?.[0] ?? "", 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function takePidfile(file: string, deadline: number, timeoutMs: number): Promise<() => void> {
  const mark = JSON.stringify({ pid: process.pid, since: new Date().toISOString() });
  await poll(
    () => tryPidfile(file, mark),
    deadline,
    () => new LockTimeoutError(file, timeoutMs, holderPid(file)),
  );
  return () => {
    // Only remove the file if it is still ours, so a takeover after a wrongly judged
    // stale lock never deletes someone else's lock.
    try {
      if (readFileSync(file, "utf8") === mark) unlinkSync(file);
    } catch {
      // already gone
    }
  };
}

function tryPidfile(file: string, mark: string): true | undefined {
  try {
    const fd = openSync(file, "wx", 0o600);
    try {
      writeSync(fd, mark);
    } finally {
      closeSync(fd);
    }
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  removeIfStale(file);
  return undefined;
}

/** Removes the lock file when the pid in it is dead (or it has no readable pid and is old). */
function removeIfStale(file: string): void {
  let text: string;
  let ageMs: number;
  try {
    text = readFileSync(file, "utf8");
    ageMs = Date.now() - statSync(file).mtimeMs;
  } catch {
    return; // released meanwhile: the next try creates it
  }
  const pid = holderPid(file);
  // A file without a pid is a holder between create and write, unless it has been like that for a while.
  const stale = pid === undefined ? ageMs > 5_000 : !pidExists(pid);
  if (!stale) return;
  try {
    if (readFileSync(file, "utf8") === text) unlinkSync(file);
  } catch {
    // someone else cleaned it up first
  }
}
