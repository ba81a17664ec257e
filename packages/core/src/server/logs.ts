import { mkdirSync, openSync } from "node:fs";
import { open, stat } from "node:fs/promises";
import { dirname, join } from "node:path";

/**
 * Per-process log files: naming, reading the end of a big one, and following one as it grows.
 * Logs can reach gigabytes over weeks of uptime, so nothing here reads a whole file.
 */

const CHUNK = 64 * 1024;
const UNSAFE = /[^A-Za-z0-9._-]/g;

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
export async function tailFile(file: string, lines: number): Promise<string[]> {
  if (lines <= 0) return [];
  let handle;
  try {
    handle = await open(file, "r");
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
}

interface FollowState {
  position: number;
  /** inode and birth time: ext4 hands a deleted file's inode number straight to the next file */
  identity: string | undefined;
  partial: string;
  decoder: TextDecoder;
}

/** Where following should begin: after the last complete line, so an unfinished line is read whole. */
async function startOfLastLine(file: string, size: number): Promise<number> {
  if (size === 0) return 0;
  const handle = await open(file, "r");
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
async function linesBefore(file: string, end: number, count: number): Promise<number> {
  const handle = await open(file, "r");
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

async function readNew(file: string, state: FollowState, size: number): Promise<string[]> {
  const handle = await open(file, "r");
  let text = "";
  try {
    const chunk = Buffer.alloc(CHUNK);
    while (state.position < size) {
      const { bytesRead } = await handle.read(chunk, 0, Math.min(CHUNK, size - state.position), state.position);
      if (bytesRead === 0) break;
      state.position += bytesRead;
      text += state.decoder.decode(chunk.subarray(0, bytesRead), { stream: true });
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

async function pollOnce(file: string, state: FollowState): Promise<string[]> {
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    // Deleted (log rotation): whatever appears under the name next is read from its start.
    Object.assign(state, { position: 0, identity: undefined, partial: "", decoder: new TextDecoder() });
    return [];
  }
  const identity = fileIdentity(info);
  if ((state.identity !== undefined && identity !== state.identity) || info.size < state.position) {
    // Recreated or truncated: the old half line belongs to content that no longer exists.
    Object.assign(state, { position: 0, partial: "", decoder: new TextDecoder() });
  }
  state.identity = identity;
  return info.size > state.position ? readNew(file, state, info.size) : [];
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
  const { signal, intervalMs = 250, fromEnd = true, backLines = 0 } = options;
  const state: FollowState = { position: 0, identity: undefined, partial: "", decoder: new TextDecoder() };
  if (fromEnd) {
    const info = await stat(file).catch(() => undefined);
    if (info) {
      const lastLine = await startOfLastLine(file, info.size);
      const position = backLines > 0 ? await linesBefore(file, lastLine, backLines) : lastLine;
      Object.assign(state, { identity: fileIdentity(info), position });
    }
  }
  const aborted = new Promise<void>((resolve) => {
    if (signal?.aborted) resolve();
    signal?.addEventListener("abort", () => resolve(), { once: true });
  });
  while (!signal?.aborted) {
    const lines = await pollOnce(file, state);
    if (lines.length > 0 && !signal?.aborted) onLines(lines);
    await Promise.race([Bun.sleep(intervalMs), aborted]);
  }
}

/**
 * Opens a log file for appending, creating its folder: the fd goes to `Bun.spawn` as
 * stdout and stderr. (`Bun.file()` as a spawn target would truncate an existing log.)
 * The caller closes the fd once the child has it.
 * @example
 * const fd = openLogForAppend(logFileFor(paths.logs, "0", "qwen"))
 * Bun.spawn(cmd, { stdout: fd, stderr: fd })
 */
export function openLogForAppend(file: string): number {
  mkdirSync(dirname(file), { recursive: true });
  return openSync(file, "a");
}
