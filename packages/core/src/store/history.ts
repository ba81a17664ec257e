import { constants } from "node:fs";
import { type FileHandle, mkdir, rename, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { Value } from "@sinclair/typebox/value";
import { InvalidInputError } from "../errors.ts";
import { withFileLock } from "./lock.ts";
import { type HistoryEvent, HistoryEventSchema } from "./schema.ts";
import { assertRegularFile, effectiveUid, openNoFollow } from "./secure-fs.ts";

/**
 * Options of {@link createHistory}.
 * @example
 * const options: HistoryOptions = { file: "/tmp/h/history.jsonl", now: () => 0 }
 */
export interface HistoryOptions {
  /** path of `history.jsonl`; its folder is created (0700) on the first append */
  readonly file: string;
  /**
   * Clock for events appended without a `time`.
   * @default Date.now
   */
  readonly now?: () => number;
  /**
   * Past this size `history.jsonl` is rotated: it becomes `history.jsonl.1`, the old `.1`
   * becomes `.2`, the old `.2` is dropped (three files kept).
   * @default 16777216 (16 MiB; corral.yaml `history.max_bytes`)
   */
  readonly maxBytes?: number;
}

/**
 * Options of {@link History.read}.
 * @example
 * await history.read({ limit: 20, slot: "0,1" })
 */
export interface HistoryReadOptions {
  /**
   * At most this many events.
   * @default 100
   */
  readonly limit?: number;
  /** only events of this slot */
  readonly slot?: string;
  /** only events of this kind (`crash-report`, say) */
  readonly event?: string;
  /**
   * Stop scanning after this long and return what was found: a filter that matches nothing
   * must not read all three files on every request.
   * @default 500
   */
  readonly budgetMs?: number;
}

/**
 * The append-only event log.
 * @example
 * await history.append({ event: "killed", slot: "0", pid: 4242, reason: "user asked" })
 */
export interface History {
  readonly file: string;
  /** Appends one event (stamped with the current time unless it has one) and returns it as written. */
  append(event: Omit<HistoryEvent, "time"> & { time?: string }): Promise<HistoryEvent>;
  /** The newest events first, reading the files backwards (the current one, then `.1`, `.2`) so a huge log costs only its tail. */
  read(options?: HistoryReadOptions): Promise<HistoryEvent[]>;
  /** Changes the rotation size (the configuration is read after the history is opened). */
  setMaxBytes(bytes: number): void;
}

const DEFAULT_LIMIT = 100;
const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
const DEFAULT_BUDGET_MS = 500;
/** Rotated files kept besides the current one. */
const KEPT = 2;
const CHUNK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * The history log over one `history.jsonl`: one JSON object per line, appended and never
 * rewritten. Each append is a single `write` of one whole line to a file opened for appending,
 * then fdatasync, so concurrent appenders never interleave; a line torn by a crash is skipped
 * when reading, and the next append starts on a fresh line.
 * @default options.now = Date.now
 * @example
 * const history = createHistory({ file: corralPaths().history });
 * await history.append({ event: "registered", slot: "0", pid: 4242 });
 * const last = await history.read({ limit: 20, slot: "0" });
 */
export function createHistory(options: HistoryOptions): History {
  const file = resolve(options.file);
  const now = options.now ?? Date.now;
  let maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  return {
    file,
    setMaxBytes(bytes) {
      maxBytes = bytes;
    },
    append: async (event) => {
      const written = { ...event, time: event.time ?? new Date(now()).toISOString() } as HistoryEvent;
      if (!Value.Check(HistoryEventSchema, written)) {
        const first = Value.Errors(HistoryEventSchema, written).First();
        throw new InvalidInputError("event", first ? `${first.path || "/"}: ${first.message}` : "not a history event");
      }
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      const size = await appendLine(file, JSON.stringify(written));
      if (size > maxBytes) await rotate(file, maxBytes);
      return written;
    },
    read: async (readOptions = {}) => {
      const limit = readOptions.limit ?? DEFAULT_LIMIT;
      if (!(limit >= 1)) return [];
      const deadline = performance.now() + (readOptions.budgetMs ?? DEFAULT_BUDGET_MS);
      const events: HistoryEvent[] = [];
      for (const name of [file, ...Array.from({ length: KEPT }, (_, i) => `${file}.${i + 1}`)]) {
        for await (const line of linesBackwards(name, deadline)) {
          const event = parseEvent(line);
          if (!event || (readOptions.slot !== undefined && event.slot !== readOptions.slot)) continue;
          if (readOptions.event !== undefined && event.event !== readOptions.event) continue;
          events.push(event);
          if (events.length >= limit) return events;
        }
        if (performance.now() > deadline) break;
      }
      return events;
    },
  };
}

/** Appends one line; returns the file's size after it. */
async function appendLine(file: string, line: string): Promise<number> {
  const handle = await openNoFollow(file, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT);
  try {
    const info = await handle.stat();
    assertRegularFile(info, file, [effectiveUid()]);
    const { size } = info;
    // After a crash mid-append the file ends in half a line; gluing ours onto it would lose both.
    let torn = false;
    if (size > 0) {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      torn = last[0] !== NEWLINE;
    }
    const text = `${torn ? "\n" : ""}${line}\n`;
    await handle.write(text);
    await handle.datasync();
    return size + Buffer.byteLength(text);
  } finally {
    await handle.close();
  }
}

/**
 * Shifts `history.jsonl` → `.1` → `.2` under a lock, once: whoever gets the lock second finds the
 * file small again and does nothing. An appender that opened the old file just before the rename
 * writes its line into `.1`, where readers still find it.
 */
async function rotate(file: string, maxBytes: number): Promise<void> {
  await withFileLock(`${file}.lock`, async () => {
    const size = await stat(file).then(
      (s) => s.size,
      () => 0,
    );
    if (size <= maxBytes) return;
    for (let i = KEPT; i >= 1; i--) {
      const from = i === 1 ? file : `${file}.${i - 1}`;
      await rename(from, `${file}.${i}`).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "ENOENT") throw error;
      });
    }
  });
}

function parseEvent(line: Buffer): HistoryEvent | undefined {
  if (line.length === 0) return undefined;
  try {
    const value: unknown = JSON.parse(line.toString("utf8"));
    return Value.Check(HistoryEventSchema, value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The file's lines, last first, as bytes (split on bytes so a multi-byte character across a
 * chunk boundary stays whole). A missing file has no lines.
 */
async function* linesBackwards(file: string, deadline = Number.POSITIVE_INFINITY): AsyncGenerator<Buffer> {
  let handle: FileHandle;
  try {
    handle = await openNoFollow(file, constants.O_RDONLY);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  try {
    let position = (await handle.stat()).size;
    let rest: Buffer = Buffer.alloc(0); // the start of a line whose beginning is in an earlier chunk
    while (position > 0) {
      if (performance.now() > deadline) return;
      const size = Math.min(CHUNK_BYTES, position);
      position -= size;
      const chunk = Buffer.alloc(size);
      await readFully(handle, chunk, position);
      const buffer = Buffer.concat([chunk, rest]);
      let end = buffer.length;
      for (let i = buffer.length - 1; i >= 0; i--) {
        if (buffer[i] !== NEWLINE) continue;
        yield buffer.subarray(i + 1, end);
        end = i;
      }
      rest = buffer.subarray(0, end);
    }
    yield rest;
  } finally {
    await handle.close();
  }
}

async function readFully(handle: FileHandle, into: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
}
