import { closeSync, fstatSync, openSync, readFileSync } from "node:fs";
import { rename } from "node:fs/promises";
import { resolve } from "node:path";
import { RegistryCorruptError, StoreWriteError } from "../errors.ts";
import { type LockMethod, withFileLock } from "./lock.ts";
import { type ProcessEntry, REGISTRY_VERSION } from "./schema.ts";
import { checkEntries, checkers, decode, entryErrors, parseDocument } from "./store-document.ts";
import { ensureFolder, keepCorruptCopy, stamp, writeAtomic } from "./store-durable.ts";
import { type Memo, remember, setOwn, statKey } from "./store-memo.ts";
import { render } from "./store-render.ts";

/**
 * An entry of the file that does not match the schema. It is reported, and written back untouched.
 * @example
 * for (const { slot, errors } of (await store.read()).invalid) console.warn(`slot ${slot}: ${errors.join("; ")}`)
 */
export interface InvalidEntry {
  slot: string;
  raw: unknown;
  errors: string[];
}

/**
 * What `processes.json` holds, valid entries apart from invalid ones.
 * @example
 * const { entries, invalid, last_updated } = await store.read()
 */
export interface RegistrySnapshot {
  /** the version the file was written with ("1.0" from the original controller) */
  version: string;
  /** when the file was last written; "" when there is no file yet */
  last_updated: string;
  entries: Record<string, ProcessEntry>;
  invalid: InvalidEntry[];
}

/**
 * Options of {@link createStore}.
 * @example
 * const options: StoreOptions = { file: "/tmp/h/processes.json", lockTimeoutMs: 2000, now: () => 0 }
 */
export interface StoreOptions {
  /** path of `processes.json`; its folder is created (0700) on the first write */
  readonly file: string;
  /**
   * How long `update` and `reset` wait for another writer.
   * @default 10000
   */
  readonly lockTimeoutMs?: number;
  /**
   * How the lock is taken (see {@link withFileLock}); tests run the pid-file lock that systems
   * without flock use, here too.
   * @default "flock" where available, else "pidfile"
   */
  readonly lockMethod?: LockMethod;
  /**
   * Clock for `last_updated` and backup names.
   * @default Date.now
   */
  readonly now?: () => number;
}

/** Options of {@link Store.update}. */
export interface UpdateOptions<T> {
  /**
   * The caller's own word on whether `mutate` changed anything, from what it returned. Saves
   * re-parsing the file to compare (about 2 ms at 1000 entries) when the caller knows.
   * @default compare the entries with the file's
   */
  readonly changed?: (result: T) => boolean;
}

/**
 * The durable registry file.
 * @example
 * const pid = await store.update((entries) => entries["0"]?.pid)
 */
export interface Store {
  readonly file: string;
  /**
   * The current registry. Takes no lock: writes are atomic renames, so a read sees one whole file.
   * @throws RegistryCorruptError when the file is unusable (a copy is kept aside first)
   */
  read(): Promise<RegistrySnapshot>;
  /**
   * Read-modify-write under the registry lock. `mutate` changes `entries` in place (and may remove
   * items from `snapshot.invalid` to drop them); the file is written only when something changed.
   * An entry `mutate` leaves in `entries` must match the schema. Resolves to what `mutate` returns.
   * @throws RegistryCorruptError, LockTimeoutError, StoreWriteError, InvalidInputError
   */
  update<T>(
    mutate: (entries: Record<string, ProcessEntry>, snapshot: RegistrySnapshot) => T | Promise<T>,
    options?: UpdateOptions<T>,
  ): Promise<T>;
  /** The user's explicit "start over": moves the current file aside (to `backup`) and starts empty. */
  reset(): Promise<{ backup: string | undefined }>;
}

interface Loaded {
  snapshot: RegistrySnapshot;
  /** unknown top-level fields, kept on write */
  extra: Record<string, unknown>;
  /** slot order of the file */
  order: string[];
  /** the file's `processes` as parsed, untouched by `mutate`, to tell afterwards whether it changed anything */
  before: Record<string, unknown>;
}

/**
 * The registry store over one `processes.json`. Reads the original controller's format unchanged;
 * writes atomically and durably (unique temp file, fsync, rename, fsync the folder) under a
 * cross-process lock at `<file>.lock`, so the CLI and the server never lose each other's updates.
 * A corrupt file is copied aside and reported, and never overwritten until `reset()`.
 * @default options.lockTimeoutMs = 10000, options.now = Date.now
 * @example
 * const store = createStore({ file: corralPaths().registry });
 * await store.update((entries) => { entries["0"] = entry; });
 * const { entries } = await store.read();
 */
export function createStore(options: StoreOptions): Store {
  const file = resolve(options.file);
  const now = options.now ?? Date.now;
  const lockFile = `${file}.lock`;
  const memo: { current?: Memo } = {};
  const locked = async <T>(fn: () => Promise<T>): Promise<T> => {
    await ensureFolder(file);
    return withFileLock(lockFile, fn, { timeoutMs: options.lockTimeoutMs, method: options.lockMethod });
  };

  return {
    file,
    read: async () => (await load(file, now, memo)).snapshot,
    update: (mutate, updateOptions = {}) =>
      locked(async () => {
        const loaded = await load(file, now, memo);
        const result = await mutate(loaded.snapshot.entries, loaded.snapshot);
        checkEntries(loaded.snapshot.entries);
        const processes = processesOf(loaded);
        const dirty = updateOptions.changed ? updateOptions.changed(result) : changed(loaded, processes);
        if (!dirty) return result;
        const last_updated = new Date(now()).toISOString();
        const previous = memo.current;
        const rendered = new Map<string, string>();
        const text = render({ last_updated, processes, extra: loaded.extra }, previous, rendered);
        memo.current = undefined;
        const key = await writeAtomic(file, text);
        if (key !== undefined) memo.current = remember(key, last_updated, processes, loaded.extra, previous, rendered);
        return result;
      }),
    reset: () =>
      locked(async () => {
        const backup = `${file}.reset-${stamp(now())}`;
        const moved = await rename(file, backup).then(
          () => true,
          (error: NodeJS.ErrnoException) => {
            if (error.code === "ENOENT") return false;
            throw new StoreWriteError(file, { cause: error });
          },
        );
        memo.current = undefined;
        await writeAtomic(file, render({ last_updated: new Date(now()).toISOString(), processes: {}, extra: {} }));
        return { backup: moved ? backup : undefined };
      }),
  };
}

async function load(file: string, now: () => number, memo: { current?: Memo }): Promise<Loaded> {
  // Synchronous: the usual read is open, fstat and close of a file the store already knows, a
  // few microseconds each, where the promise versions cost tens through the thread pool.
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EISDIR")
      throw new RegistryCorruptError(file, "it is a folder, not a file", undefined, { cause: error });
    if (code !== "ENOENT") throw error;
    return {
      snapshot: { version: REGISTRY_VERSION, last_updated: "", entries: {}, invalid: [] },
      extra: {},
      order: [],
      before: {},
    };
  }
  let doc: Memo;
  try {
    const info = fstatSync(fd, { bigint: true });
    // A folder in the file's place is as unusable as bad JSON: refused the same way, not a bare EISDIR.
    if (info.isDirectory()) throw new RegistryCorruptError(file, "it is a folder, not a file");
    const key = statKey(info);
    if (memo.current?.key === key) doc = memo.current;
    else {
      // The same descriptor is read as was stat'ed: a file replaced in between is never taken for the known one.
      const bytes = readFileSync(fd);
      const parsed = parseDocument(decode(bytes));
      if (typeof parsed === "string") {
        const backup = await keepCorruptCopy(file, bytes, now);
        throw new RegistryCorruptError(file, parsed, backup.path, backup.error ? { cause: backup.error } : undefined);
      }
      const { version, last_updated, processes, ...extra } = parsed;
      doc = { key, version, last_updated, processes, extra, rendered: new Map() };
      memo.current = doc;
    }
  } finally {
    closeSync(fd);
  }
  const check = checkers(Object.keys(doc.processes).length);
  const snapshot: RegistrySnapshot = { version: doc.version, last_updated: doc.last_updated, entries: {}, invalid: [] };
  for (const [slot, raw] of Object.entries(doc.processes)) {
    const known = checked.get(raw as object);
    if (known !== undefined || check.entry(raw)) {
      const entry = raw as ProcessEntry;
      // The memo's objects never change, so one that passed once passes again, and keeps its shape.
      const flat = known ?? isFlat(entry);
      checked.set(entry, flat);
      setOwn(snapshot.entries, slot, flat ? { ...entry, command_line: entry.command_line.slice() } : copyEntry(entry));
    } else snapshot.invalid.push({ slot, raw: structuredClone(raw), errors: entryErrors(raw) });
  }
  const extra = Object.keys(doc.extra).length === 0 ? {} : structuredClone(doc.extra);
  return { snapshot, extra, order: Object.keys(doc.processes), before: doc.processes };
}

/** Entries of a memo (never changed, never handed out) that matched the schema, and whether they are flat. */
const checked = new WeakMap<object, boolean>();

/** Whether an entry's only object is its command line (fields from elsewhere may hold more). */
function isFlat(entry: ProcessEntry): boolean {
  for (const key in entry) {
    const value = (entry as Record<string, unknown>)[key];
    if (key !== "command_line" && typeof value === "object" && value !== null) return false;
  }
  return true;
}

/** A copy of a valid entry that shares nothing with the original (a fast structuredClone for this shape). */
function copyEntry(raw: ProcessEntry): ProcessEntry {
  const copy: Record<string, unknown> = { ...raw, command_line: [...raw.command_line] };
  for (const key in copy) {
    const value = copy[key];
    if (key !== "command_line" && typeof value === "object" && value !== null) copy[key] = structuredClone(value);
  }
  return copy as ProcessEntry;
}

/**
 * Whether `processes` differs from what the file holds (`mutate` changed copies, so the parsed
 * file is untouched). Like JSON, the comparison ignores properties whose value is undefined.
 */
function changed(loaded: Loaded, processes: Record<string, unknown>): boolean {
  return !Bun.deepEquals(loaded.before, processes);
}

/** The `processes` object to write: entries, plus invalid entries exactly as read, in the file's slot order. */
function processesOf(loaded: Loaded): Record<string, unknown> {
  const { entries, invalid } = loaded.snapshot;
  const raw = new Map(invalid.map((item) => [item.slot, item.raw] as const));
  const out: Record<string, unknown> = {};
  const slots = [...loaded.order, ...Object.keys(entries), ...raw.keys()];
  for (const slot of slots) {
    if (Object.hasOwn(out, slot)) continue;
    // An entry `mutate` put in a slot that held an invalid one replaces it: that is how it gets repaired.
    if (Object.hasOwn(entries, slot)) setOwn(out, slot, entries[slot]);
    else if (raw.has(slot)) setOwn(out, slot, raw.get(slot));
  }
  return out;
}
