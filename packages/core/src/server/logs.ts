import { closeSync, constants, fstatSync, type Stats, watch } from "node:fs";
import { type FileHandle, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { UnsafePathError } from "../errors.ts";
import { assertRegularFile, effectiveUid, mkdirPrivate, openNoFollow, openNoFollowSync } from "../store/secure-fs.ts";

/**
 * Per-process log files: naming, reading the end of a big one, and following one as it grows.
 * Logs can reach gigabytes over weeks of uptime, so nothing here reads a whole file.
 */

const CHUNK = 64 * 1024;
/** A follower reads at most this much per poll, so a log growing by gigabytes is handed on in slices. */
const MAX_BATCH_BYTES = 256 * 1024;
const UNSAFE = /[^A-Za-z0-9._-]/g;

/**
 * Who may own a log corral reads: corral itself, and the llama-server's user (an adopted server
 * of another user writes its own stdout file). Nobody else's file is ever handed out.
 * @example
 * const owners: LogOwners = [process.geteuid(), entry.uid]
 */
export type LogOwners = readonly (number | undefined)[];

/**
 * Opens a log for reading the safe way: `O_NOFOLLOW` (a symlink is refused, whatever it points
 * at), then `fstat` on the open descriptor: a regular file owned by one of `owners`.
 * @default owners = [effective uid]
 * @throws UnsafePathError saying why the file is not served; ENOENT passes through
 * @example
 * const handle = await openLog("/h/logs/slot-0-qwen-20261126T121500Z.log")
 */
export async function openLog(file: string, owners: LogOwners = [effectiveUid()]): Promise<FileHandle> {
  const handle = await openNoFollow(file, constants.O_RDONLY);
  try {
    const info = await handle.stat();
    assertRegularFile(info, file, owners);
    // A second name for the file is a hard link someone made: it could be any file of the owner's.
    if (info.nlink > 1) {
      throw new UnsafePathError(file, `has ${info.nlink} hard links`, "corral serves only logs with one name");
    }
  } catch (error) {
    await handle.close();
    throw error;
  }
  return handle;
}

/**
 * The log file for one spawn: slot, model and UTC start time, in characters that are safe
 * in any file system and shell.
 * @default now = Date.now()
 * @example
 * logFileFor("/h/logs", "0,1", "qwen", Date.UTC(2026, 10, 26, 12, 15)) // "/h/logs/slot-0_1-qwen-20261126T121500Z.log"
 */
export function logFileFor(logsDir: string, slot: string, modelId: string, now: number = Date.now()): string {
  const stamp = new Date(now)
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z")
    .replace(/[-:]/g, "");
  const safe = (s: string) => s.replace(/,/g, "_").replace(UNSAFE, "_").slice(0, 64) || "_";
  return join(logsDir, `slot-${safe(slot)}-${safe(modelId)}-${stamp}.log`);
}

/** Splits text into lines, dropping a `\r` before each `\n`. */
function splitLines(text: string): string[] {
  return text.split("\n").map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line));
}

/**
 * The last `lines` lines of a file, read backwards in 64 KiB chunks. A final newline does not
 * count as an empty last line.
 * @returns [] for a missing file
 * @example
 * await tailFile("/h/logs/slot-0-qwen-20261126T121500Z.log", 50)
 */
export async function tailFile(file: string, lines: number, owners?: LogOwners): Promise<string[]> {
  if (lines <= 0) return [];
  let handle: FileHandle;
  try {
    handle = await openLog(file, owners);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  try {
    const { size } = await handle.stat();
    const chunks: Buffer[] = [];
    let position = size;
    let newlines = 0;
    // Stop once there are more newlines than wanted lines (+1 for a trailing newline).
    while (position > 0 && newlines <= lines) {
      const length = Math.min(CHUNK, position);
      position -= length;
      const chunk = Buffer.alloc(length);
      await handle.read(chunk, 0, length, position);
      for (const byte of chunk) if (byte === 0x0a) newlines++;
      chunks.unshift(chunk);
    }
    // Decoding the joined bytes once keeps multi-byte characters that straddle chunks intact.
    const all = splitLines(Buffer.concat(chunks).toString("utf8"));
    if (all.at(-1) === "") all.pop();
    // The first piece may be cut mid-line when we stopped before the file's start.
    if (position > 0) all.shift();
    return all.slice(-lines);
  } finally {
    await handle.close();
  }
}

/** Options of {@link followFile}. */
export interface FollowOptions {
  /** stops following; the returned promise resolves then */
  readonly signal?: AbortSignal;
  /** @default 250 */
  readonly intervalMs?: number;
  /** start at the end of the current content (from the start of its unfinished last line) @default true */
  readonly fromEnd?: boolean;
  /**
   * With `fromEnd`, start this many complete lines before the end instead: a tail and a follow
   * in one read, with no line lost between the two.
   * @default 0
   */
  readonly backLines?: number;
  /** users allowed to own the file (checked on every open) @default [effective uid] */
  readonly owners?: LogOwners;
  /**
   * Called once where following starts is settled (the file's end, or its start when it does not
   * exist yet): whatever is appended from then on is reported. @default none
   */
  readonly onReady?: () => void;
}

interface FollowState {
  position: number;
  /** the last bytes read before `position`: a log truncated and grown past it again no longer holds them */
  tail: Buffer;
  /** modification time at the last poll: the tail is checked only when the file changed */
  mtimeMs: number | undefined;
  /** a rotated copy (`<log>.1`) whose end is read before the new content from the log's start */
  drain: string | undefined;
  /** inode and birth time: ext4 hands a deleted file's inode number straight to the next file */
  identity: string | undefined;
  partial: string;
  decoder: TextDecoder;
  owners: LogOwners | undefined;
}

/** Where following should begin: after the last complete line, so an unfinished line is read whole. */
async function startOfLastLine(file: string, size: number, owners: LogOwners | undefined): Promise<number> {
  if (size === 0) return 0;
  const handle = await openLog(file, owners);
  try {
    const length = Math.min(CHUNK, size);
    const chunk = Buffer.alloc(length);
    await handle.read(chunk, 0, length, size - length);
    const newline = chunk.lastIndexOf(0x0a);
    // A last line longer than a chunk is followed from the end: rare enough to accept.
    return newline >= 0 ? size - length + newline + 1 : size === length ? 0 : size;
  } finally {
    await handle.close();
  }
}

/** The offset where the `count` complete lines before offset `end` (a line start) begin. */
async function linesBefore(file: string, end: number, count: number, owners: LogOwners | undefined): Promise<number> {
  const handle = await openLog(file, owners);
  try {
    let position = end;
    // The newline just before `end` closes the first of the wanted lines; one more past the last ends the search.
    let newlines = 0;
    while (position > 0) {
      const length = Math.min(CHUNK, position);
      const chunk = Buffer.alloc(length);
      await handle.read(chunk, 0, length, position - length);
      for (let i = length - 1; i >= 0; i--) {
        if (chunk[i] === 0x0a && ++newlines === count + 1) return position - length + i + 1;
      }
      position -= length;
    }
    return 0;
  } finally {
    await handle.close();
  }
}

const TAIL_BYTES = 64;

/** Reads at most MAX_BATCH_BYTES of what was appended; the next poll picks up the rest. */
async function readNew(file: string, state: FollowState, size: number): Promise<string[]> {
  const handle = await openLog(file, state.owners);
  let text = "";
  const until = Math.min(size, state.position + MAX_BATCH_BYTES);
  try {
    const chunk = Buffer.alloc(CHUNK);
    while (state.position < until) {
      const { bytesRead } = await handle.read(chunk, 0, Math.min(CHUNK, until - state.position), state.position);
      if (bytesRead === 0) break;
      state.position += bytesRead;
      const read = chunk.subarray(0, bytesRead);
      state.tail = Buffer.from(Buffer.concat([state.tail, read]).subarray(-TAIL_BYTES));
      text += state.decoder.decode(read, { stream: true });
    }
  } finally {
    await handle.close();
  }
  const pieces = splitLines(state.partial + text);
  state.partial = pieces.pop() ?? "";
  return pieces;
}

function fileIdentity(info: { ino: number; birthtimeMs: number }): string {
  return `${info.ino}:${info.birthtimeMs}`;
}

/** The TAIL_BYTES before `position`, to recognise the content later. */
async function bytesBefore(file: string, position: number, owners: LogOwners | undefined): Promise<Buffer> {
  const length = Math.min(TAIL_BYTES, position);
  if (length === 0) return Buffer.alloc(0);
  const handle = await openLog(file, owners);
  try {
    const bytes = Buffer.alloc(length);
    const { bytesRead } = await handle.read(bytes, 0, length, position - length);
    return bytes.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Whether `file` still holds, just before `state.position`, the bytes last read there. */
async function holdsTail(file: string, state: FollowState): Promise<boolean> {
  if (state.tail.length === 0 || state.position < state.tail.length) return true;
  const handle = await openLog(file, state.owners);
  try {
    const here = Buffer.alloc(state.tail.length);
    const { bytesRead } = await handle.read(here, 0, here.length, state.position - here.length);
    return bytesRead === here.length && here.equals(state.tail);
  } finally {
    await handle.close();
  }
}

/**
 * The log was truncated (copy-and-truncate rotation): when `<log>.1` is the copy of what was read
 * so far, its end is read first, so a follower loses no line of the rotation; the log's new
 * content is read from its start after that.
 */
async function afterTruncation(file: string, state: FollowState): Promise<void> {
  const rotated = `${file}.1`;
  const copy = await holdsTail(rotated, state).catch(() => false);
  const size = copy ? ((await stat(rotated).catch(() => undefined))?.size ?? 0) : 0;
  if (copy && size >= state.position) {
    state.drain = rotated;
    return;
  }
  Object.assign(state, { position: 0, partial: "", tail: Buffer.alloc(0), decoder: new TextDecoder() });
}

/** One slice of a rotated copy's end; once it is read, the log is followed from its start. */
async function drainOnce(state: FollowState, drain: string): Promise<{ lines: string[]; more: boolean }> {
  const size = (await stat(drain).catch(() => undefined))?.size ?? 0;
  const lines = size > state.position ? await readNew(drain, state, size) : [];
  if (state.position >= size) Object.assign(state, { drain: undefined, position: 0, tail: Buffer.alloc(0) });
  return { lines, more: true };
}

async function pollOnce(file: string, state: FollowState): Promise<{ lines: string[]; more: boolean }> {
  if (state.drain !== undefined) return drainOnce(state, state.drain);
  let info: Stats;
  try {
    info = await stat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    // Deleted (log rotation): whatever appears under the name next is read from its start.
    Object.assign(state, { position: 0, identity: undefined, partial: "", tail: Buffer.alloc(0) });
    state.decoder = new TextDecoder();
    return { lines: [], more: false };
  }
  const identity = fileIdentity(info);
  if (state.identity !== undefined && identity !== state.identity) {
    // Recreated: the old half line belongs to content that no longer exists.
    Object.assign(state, { position: 0, partial: "", tail: Buffer.alloc(0), decoder: new TextDecoder() });
  } else if (
    info.size < state.position ||
    (state.mtimeMs !== info.mtimeMs && state.position > 0 && !(await holdsTail(file, state)))
  ) {
    // Truncated, and maybe grown past where we were since: a rotation by copy-and-truncate.
    state.identity = identity;
    state.mtimeMs = info.mtimeMs;
    await afterTruncation(file, state);
    if (state.drain !== undefined) return drainOnce(state, state.drain);
  }
  state.identity = identity;
  state.mtimeMs = info.mtimeMs;
  if (info.size <= state.position) return { lines: [], more: false };
  const lines = await readNew(file, state, info.size);
  return { lines, more: state.position < info.size };
}

/**
 * Calls `onLines` with each batch of new complete lines of a file, polling every `intervalMs`.
 * Survives the file being missing, truncated or recreated; an unfinished last line is held
 * until its newline arrives.
 * @default intervalMs = 250, fromEnd = true
 * @returns a promise that resolves when `signal` aborts (never without a signal) and rejects if `onLines` throws
 * @example
 * const stop = new AbortController()
 * const done = followFile(logFile, (lines) => lines.forEach((l) => console.log(l)), { signal: stop.signal })
 */
export async function followFile(
  file: string,
  onLines: (lines: string[]) => void,
  options: FollowOptions = {},
): Promise<void> {
  const { signal, intervalMs = 250, fromEnd = true, backLines = 0, owners, onReady } = options;
  const state: FollowState = {
    position: 0,
    identity: undefined,
    partial: "",
    decoder: new TextDecoder(),
    owners,
    tail: Buffer.alloc(0),
    mtimeMs: undefined,
    drain: undefined,
  };
  if (fromEnd) {
    const info = await stat(file).catch(() => undefined);
    if (info) {
      const lastLine = await startOfLastLine(file, info.size, owners);
      const position = backLines > 0 ? await linesBefore(file, lastLine, backLines, owners) : lastLine;
      Object.assign(state, { identity: fileIdentity(info), position, mtimeMs: info.mtimeMs });
      state.tail = await bytesBefore(file, position, owners);
    }
  }
  onReady?.();
  const aborted = new Promise<void>((resolve) => {
    if (signal?.aborted) resolve();
    signal?.addEventListener("abort", () => resolve(), { once: true });
  });
  const waker = folderWaker(file);
  try {
    while (!signal?.aborted) {
      const { lines, more } = await pollOnce(file, state);
      if (lines.length > 0 && !signal?.aborted) onLines(lines);
      // A backlog is read slice by slice, yielding between slices so a slow reader's stream can push back.
      // Otherwise the folder's watcher wakes us; the slow poll is the net for a watcher that misses.
      const woken = waker?.next().then(() => Bun.sleep(WAKE_BATCH_MS));
      const idle = woken ? Promise.race([woken, Bun.sleep(Math.max(intervalMs, WATCHED_POLL_MS))]) : null;
      await Promise.race([more ? Bun.sleep(0) : (idle ?? Bun.sleep(intervalMs)), aborted]);
    }
  } finally {
    waker?.close();
  }
}

/** After a wake-up, what is written in this many ms more is read in the same pass (a chatty log is not read per write). */
const WAKE_BATCH_MS = 20;
/** How often a follower whose folder is watched polls anyway (a watcher can miss, e.g. on a network file system). */
const WATCHED_POLL_MS = 1000;

/**
 * Wakes a follower when its file changes, or is created, renamed or rotated (`<file>.1`): a
 * watch on the folder (inotify here) rather than a poll every `intervalMs`, so an idle follower
 * costs nothing. Only a wake-up: what is read is still opened with O_NOFOLLOW and checked.
 * Undefined where the folder cannot be watched; the follower then polls.
 */
function folderWaker(file: string): { next(): Promise<void>; close(): void } | undefined {
  const names = new Set([basename(file), `${basename(file)}.1`]);
  let pending = false;
  let wake: (() => void) | undefined;
  try {
    const watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
      if (changed !== null && !names.has(String(changed))) return;
      pending = true;
      wake?.();
    });
    watcher.on("error", () => watcher.close());
    return {
      next() {
        if (pending) {
          pending = false;
          return Promise.resolve();
        }
        return new Promise<void>((resolve) => {
          wake = () => {
            wake = undefined;
            pending = false;
            resolve();
          };
        });
      },
      close: () => watcher.close(),
    };
  } catch {
    return undefined;
  }
}

/**
 * Opens a log file for appending, creating its folder (0700): the fd goes to `Bun.spawn` as
 * stdout and stderr. (`Bun.file()` as a spawn target would truncate an existing log.) The file
 * is created 0600 and opened with O_NOFOLLOW; an existing one must be corral's own regular file,
 * so a symlink planted in the logs folder never makes corral write elsewhere.
 * The caller closes the fd once the child has it.
 * @example
 * const fd = openLogForAppend(logFileFor(paths.logs, "0", "qwen"))
 * Bun.spawn(cmd, { stdout: fd, stderr: fd })
 */
export function openLogForAppend(file: string): number {
  mkdirPrivate(dirname(file));
  const fd = openNoFollowSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT);
  try {
    assertRegularFile(fstatSync(fd), file, [effectiveUid()]);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return fd;
}
