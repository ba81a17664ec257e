import { constants } from "node:fs";
import { type FileHandle, lstat, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { Registry } from "../registry/registry.ts";
import type { ProcessEntry } from "../store/schema.ts";
import { assertRegularFile, effectiveUid, openNoFollow } from "../store/secure-fs.ts";
import { openLog } from "./logs.ts";

/**
 * Rotation of a llama-server's log while the server keeps writing it. The server holds its log
 * open with `O_APPEND` (corral opened it so), so renaming the file would leave it writing to the
 * renamed one: instead the content is copied to `<log>.1` and the file truncated, and the
 * server's next write lands at the new start. Bytes the server writes between the last copy and
 * the truncation are lost: one `write` of a few lines at most, as with logrotate's copytruncate.
 */

const CHUNK = 1024 * 1024;

/** What {@link rotateLog} did. */
export interface RotateResult {
  readonly rotated: boolean;
  /** the log's size before (bytes) */
  readonly bytes: number;
  /** bytes copied into `<log>.1` */
  readonly copied?: number;
}

/** Options of {@link rotateLog}. */
export interface RotateOptions {
  /** rotate once the log is larger than this */
  readonly maxBytes: number;
  /** rotated copies kept: `<log>.1` (newest) … `<log>.<keep>` */
  readonly keep: number;
}

/**
 * Rotates a log past `maxBytes`: `<log>.<keep-1>` → `<log>.<keep>` … `<log>` copied to `<log>.1`,
 * then `<log>` truncated to 0. Opens everything with `O_NOFOLLOW` and only files corral owns.
 * @returns whether it rotated; a missing log is not rotated
 * @example
 * await rotateLog("/h/logs/slot-0-qwen-20261126T121500Z.log", { maxBytes: 64 * 2 ** 20, keep: 3 })
 */
export async function rotateLog(file: string, options: RotateOptions): Promise<RotateResult> {
  let source: FileHandle;
  try {
    source = await openLog(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { rotated: false, bytes: 0 };
    throw error;
  }
  try {
    const { size } = await source.stat();
    if (size <= options.maxBytes) return { rotated: false, bytes: size };
    await shift(file, options.keep);
    const copied = await copyThenTruncate(source, file);
    return { rotated: true, bytes: size, copied };
  } finally {
    await source.close();
  }
}

/** `<log>.<n>` → `<log>.<n+1>`, the oldest beyond `keep` removed, so `<log>.1` is free. */
async function shift(file: string, keep: number): Promise<void> {
  await rm(`${file}.${keep}`, { force: true });
  for (let n = keep - 1; n >= 1; n--) {
    await rename(`${file}.${n}`, `${file}.${n + 1}`).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
  }
}

/** Copies to `<log>.1` until the end, then truncates at once: the window for a lost write is one read long. */
async function copyThenTruncate(source: FileHandle, file: string): Promise<number> {
  const target = await openNoFollow(
    `${file}.1`,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_APPEND,
    0o600,
  );
  const writer = await openLogForTruncate(file);
  let position = 0;
  try {
    const chunk = Buffer.alloc(CHUNK);
    for (;;) {
      const { bytesRead } = await source.read(chunk, 0, CHUNK, position);
      if (bytesRead === 0) break;
      await target.write(chunk.subarray(0, bytesRead));
      position += bytesRead;
    }
    await writer.truncate(0);
    await target.sync().catch(() => undefined);
    return position;
  } finally {
    await Promise.all([target.close(), writer.close()]);
  }
}

async function openLogForTruncate(file: string): Promise<FileHandle> {
  const handle = await openNoFollow(file, constants.O_WRONLY);
  try {
    assertRegularFile(await handle.stat(), file, [effectiveUid()]);
  } catch (error) {
    await handle.close();
    throw error;
  }
  return handle;
}

/**
 * Rotates the logs of tracked servers past `logs.max_bytes`: only logs in this home's logs folder
 * (an adopted server's own stdout file is its user's), one history event per rotation.
 * @returns the slots whose log was rotated
 * @example
 * await rotateServerLogs(registry, await registry.list(), config.logs)
 */
export async function rotateServerLogs(
  registry: Pick<Registry, "paths" | "record">,
  rows: readonly { readonly slot: string; readonly entry: ProcessEntry }[],
  options: { readonly max_bytes: number; readonly keep: number },
): Promise<string[]> {
  const rotated: string[] = [];
  for (const { slot, entry } of rows) {
    const file = entry.log_file;
    if (!file || dirname(resolve(file)) !== registry.paths.logs) continue;
    const result = await rotateLog(file, { maxBytes: options.max_bytes, keep: options.keep });
    if (!result.rotated) continue;
    rotated.push(slot);
    await registry.record({
      event: "log-rotated",
      slot,
      pid: entry.pid,
      model_id: entry.model_id,
      reason: `${result.bytes} bytes past logs.max_bytes (${options.max_bytes}): copied to ${file}.1 and truncated`,
    });
  }
  return rotated;
}

/** `slot-<slot>-<model>-<stamp>.log` and its rotated copies (`.1` …): the slot part is digits and "_". */
const SPAWN_LOG = /^slot-([0-9_]+)-.+\.log$/;

/**
 * Removes the logs of past spawns beyond the newest `keep` per slot (each load writes a new log,
 * so a model loaded and unloaded daily for months would otherwise leave hundreds), with their
 * rotated copies. A log a tracked entry still names is never removed; crash reports keep their
 * own last lines in the history.
 * @returns the files removed
 * @example
 * await pruneSpawnLogs("/h/logs", new Set(entries.map((e) => e.log_file)), 3)
 */
export async function pruneSpawnLogs(
  logsDir: string,
  inUse: ReadonlySet<string | undefined>,
  keep: number,
): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(logsDir);
  } catch {
    return [];
  }
  const bySlot = new Map<string, { file: string; mtime: number }[]>();
  for (const name of names) {
    const slot = SPAWN_LOG.exec(name)?.[1];
    if (slot === undefined) continue;
    const file = join(logsDir, name);
    const info = await lstat(file).catch(() => undefined);
    if (!info?.isFile()) continue;
    bySlot.set(slot, [...(bySlot.get(slot) ?? []), { file, mtime: info.mtimeMs }]);
  }
  const removed: string[] = [];
  for (const logs of bySlot.values()) {
    logs.sort((a, b) => b.mtime - a.mtime);
    for (const { file } of logs.slice(keep)) {
      if (inUse.has(file)) continue;
      const copies = names.filter((n) => n.startsWith(`${basename(file)}.`) && /\.\d+$/.test(n));
      for (const f of [file, ...copies.map((n) => join(logsDir, n))]) {
        await rm(f, { force: true });
        removed.push(f);
      }
    }
  }
  return removed;
}
