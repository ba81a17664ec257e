import { mkdir, open } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { Value } from "@sinclair/typebox/value";
import { InvalidInputError } from "../errors.ts";
import { HistoryEventSchema, type HistoryEvent } from "./schema.ts";

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
  /** The newest events first, reading the file backwards so a huge log costs only its tail. */
  read(options?: HistoryReadOptions): Promise<HistoryEvent[]>;
}

const DEFAULT_LIMIT = 100;
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
  return {
    file,
    append: async (event) => {
      const written = { ...event, time: event.time ?? new Date(now()).toISOString() } as HistoryEvent;
      if (!Value.Check(HistoryEventSchema, written)) {
        const first = Value.Errors(HistoryEventSchema, written).First();
        throw new InvalidInputError("event", first ? `${first.path || "/"}: ${first.message}` : "not a history event");
      }
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      await appendLine(file, JSON.stringify(written));
      return written;
    },
    read: async (readOptions = {}) => {
      const limit = readOptions.limit ?? DEFAULT_LIMIT;
      if (!(limit >= 1)) return [];
      const events: HistoryEvent[] = [];
      for await (const line of linesBackwards(file)) {
        const event = parseEvent(line);
        if (!event || (readOptions.slot !== undefined && event.slot !== readOptions.slot)) continue;
        events.push(event);
        if (events.length >= limit) break;
      }
      return events;
    },
  };
}

async function appendLine(file: string, line: string): Promise<void> {
  const handle = await open(file, "a+", 0o600);
  try {
    // After a crash mid-append the file ends in half a line; gluing ours onto it would lose both.
    const { size } = await handle.stat();
    let torn = false;
    if (size > 0) {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      torn = last[0] !== NEWLINE;
    }
    await handle.write(`${torn ? "\n" : ""}${line}\n`);
    await handle.datasync();
  } finally {
    await handle.close();
  }
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
async function* linesBackwards(file: string): AsyncGenerator<Buffer> {
  let handle;
  try {
    handle = await open(file, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  try {
    let position = (await handle.stat()).size;
    let rest: Buffer = Buffer.alloc(0); // the start of a line whose beginning is in an earlier chunk
    while (position > 0) {
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

async function readFully(handle: Awaited<ReturnType<typeof open>>, into: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
}
