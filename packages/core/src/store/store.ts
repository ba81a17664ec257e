import { randomBytes } from "node:crypto";
import { type BigIntStats, closeSync, constants as fsConstants, fstatSync, openSync, readFileSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { type TypeCheck, TypeCompiler } from "@sinclair/typebox/compiler";
import { Value } from "@sinclair/typebox/value";
import { InvalidInputError, RegistryCorruptError, StoreWriteError } from "../errors.ts";
import { type LockMethod, withFileLock } from "./lock.ts";
import { O_NOFOLLOW } from "./secure-fs.ts";

/** Temp files: created new (O_EXCL, which never follows a symlink either) and O_NOFOLLOW, to say so. */
const TEMP_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | O_NOFOLLOW;

import { type ProcessEntry, ProcessEntrySchema, REGISTRY_VERSION, RegistryDocumentSchema } from "./schema.ts";

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
 * What a store last read or wrote, so that a file it already knows is neither parsed nor rendered
 * again: at 1000 entries JSON.parse and JSON.stringify were half the time of a register. The file
 * is the known one while its device, inode, size, mtime and ctime are: a writer that follows the
 * protocol renames a new file into place (a new inode), and an edit in place moves mtime and ctime
 * (Linux 6.13+ makes them fine-grained once stat'ed; on older kernels an edit in place of the same
 * size within one timer tick of the store's own write could go unseen until the file next changes).
 * Its objects never leave the store: callers get copies.
 */
interface Memo {
  /** {@link statKey} of the file this describes */
  readonly key: string;
  readonly version: string;
  readonly last_updated: string;
  readonly processes: Record<string, unknown>;
  readonly extra: Record<string, unknown>;
  /** slot → the text `render` gave `processes[slot]`, filled as it renders */
  readonly rendered: Map<string, string>;
}

/** The identity of one version of a file (see {@link Memo}). */
function statKey(s: BigIntStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
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

async function ensureFolder(file: string): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new StoreWriteError(file, { cause: error });
  }
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
 * What the store knows after writing `processes`: its own copies (an entry rendered from the
 * previous memo's unchanged value keeps that value; others are parsed back from their text).
 */
function remember(
  key: string,
  last_updated: string,
  processes: Record<string, unknown>,
  extra: Record<string, unknown>,
  previous: Memo | undefined,
  rendered: Map<string, string>,
): Memo {
  const own: Record<string, unknown> = {};
  for (const slot of Object.keys(processes)) {
    const text = rendered.get(slot);
    // What JSON left out (an undefined value) is not in the file, so not in its memory either.
    if (text === undefined) continue;
    const same = previous !== undefined && previous.rendered.get(slot) === text;
    setOwn(own, slot, same ? previous.processes[slot] : JSON.parse(text));
  }
  const extraCopy = Object.keys(extra).length === 0 ? {} : structuredClone(extra);
  return { key, version: REGISTRY_VERSION, last_updated, processes: own, extra: extraCopy, rendered };
}

/** From this many entries on, compiling the schemas pays for itself within a read or two. */
const COMPILE_FROM = 100;
let compiled:
  | { entry: TypeCheck<typeof ProcessEntrySchema>; document: TypeCheck<typeof RegistryDocumentSchema> }
  | undefined;

/**
 * Schema checks for a registry of `count` entries. Compiled, the schemas check 1000 entries in
 * about 0.1 ms instead of 2 ms (and an update checks each entry twice), but compiling costs
 * about 7 ms once per process: it is done the first time a registry this big is seen, so a
 * CLI start over a handful of entries does not pay for it.
 */
function checkers(count: number): { entry: (value: unknown) => boolean; document: (value: unknown) => boolean } {
  if (!compiled && count >= COMPILE_FROM) {
    compiled = {
      entry: TypeCompiler.Compile(ProcessEntrySchema),
      document: TypeCompiler.Compile(RegistryDocumentSchema),
    };
  }
  const c = compiled;
  return c
    ? { entry: (value) => c.entry.Check(value), document: (value) => c.document.Check(value) }
    : {
        entry: (value) => Value.Check(ProcessEntrySchema, value),
        document: (value) => Value.Check(RegistryDocumentSchema, value),
      };
}

/**
 * Whether `processes` differs from what the file holds (`mutate` changed copies, so the parsed
 * file is untouched). Like JSON, the comparison ignores properties whose value is undefined.
 */
function changed(loaded: Loaded, processes: Record<string, unknown>): boolean {
  return !Bun.deepEquals(loaded.before, processes);
}

/** The file's text; editors on Windows like to add a byte order mark, which JSON.parse does not accept. */
function decode(bytes: Buffer): string {
  const text = bytes.toString("utf8");
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

type Document = { version: string; last_updated: string; processes: Record<string, unknown> } & Record<string, unknown>;

/** The document, or why it is unusable. */
function parseDocument(text: string): Document | string {
  if (text.trim() === "") return "the file is empty";
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return `not valid JSON (${why.slice(0, 160)})`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "the top level is not an object";
  const processes = (value as Record<string, unknown>).processes;
  if (typeof processes !== "object" || processes === null || Array.isArray(processes)) {
    return '"processes" is missing or not an object';
  }
  if (!checkers(Object.keys(processes).length).document(value)) {
    const first = Value.Errors(RegistryDocumentSchema, value).First();
    return `wrong shape: ${first ? `${first.path || "/"} ${first.message}` : "does not match the registry schema"}`;
  }
  return value as Document;
}

/** One message per offending field: the first (most telling) one TypeBox gives. */
function entryErrors(raw: unknown): string[] {
  const byPath = new Map<string, string>();
  for (const error of Value.Errors(ProcessEntrySchema, raw)) {
    const path = error.path || "/";
    if (!byPath.has(path)) byPath.set(path, `${path}: ${error.message}`);
  }
  return [...byPath.values()];
}

function checkEntries(entries: Record<string, ProcessEntry>): void {
  const check = checkers(Object.keys(entries).length);
  for (const [slot, entry] of Object.entries(entries)) {
    if (!check.entry(entry)) {
      throw new InvalidInputError(`entry "${slot}"`, entryErrors(entry).join("; "));
    }
  }
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

/** Assignment that also works for a slot a hostile file names "__proto__" (which `=` would not store). */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  // defineProperty is about ten times slower than `=`, which is right for every other key.
  if (key === "__proto__")
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/**
 * The file's text: exactly `JSON.stringify({ version, last_updated, processes, ...extra }, null, 2)`
 * plus a newline, built entry by entry so that an entry equal to the one `known` rendered keeps
 * its text (at 1000 entries a register then stringifies one entry, not the whole file).
 * `rendered` receives each slot's text.
 */
function render(
  doc: { last_updated: string; processes: Record<string, unknown>; extra: Record<string, unknown> },
  known?: Memo,
  rendered = new Map<string, string>(),
): string {
  const fields = [
    `  "version": ${JSON.stringify(REGISTRY_VERSION)}`,
    `  "last_updated": ${JSON.stringify(doc.last_updated)}`,
  ];
  const slots: string[] = [];
  for (const [slot, value] of Object.entries(doc.processes)) {
    const before = known?.rendered.get(slot);
    const text = before !== undefined && Bun.deepEquals(known?.processes[slot], value) ? before : nested(value, "    ");
    if (text === undefined) continue;
    rendered.set(slot, text);
    slots.push(`    ${JSON.stringify(slot)}: ${text}`);
  }
  fields.push(slots.length === 0 ? `  "processes": {}` : `  "processes": {\n${slots.join(",\n")}\n  }`);
  for (const [key, value] of Object.entries(doc.extra)) {
    const text = nested(value, "  ");
    if (text !== undefined) fields.push(`  ${JSON.stringify(key)}: ${text}`);
  }
  return `{\n${fields.join(",\n")}\n}\n`;
}

/** A value as `JSON.stringify(…, null, 2)` writes it `indent` deep (undefined where JSON leaves it out). */
function nested(value: unknown, indent: string): string | undefined {
  const text = JSON.stringify(value, null, 2) as string | undefined;
  return text?.replaceAll("\n", `\n${indent}`);
}

/**
 * Replaces `file` with `content` so that a crash at any moment leaves either the old or the new
 * file, whole. On failure the temp file is removed and the old file is untouched.
 */
async function writeAtomic(file: string, content: string): Promise<string | undefined> {
  const dir = dirname(file);
  const temp = join(dir, `.${basename(file)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  let key: string | undefined;
  try {
    const handle = await open(temp, TEMP_FLAGS, 0o600);
    let isOpen = true;
    try {
      await handle.writeFile(content, "utf8");
      await handle.sync();
      // Windows cannot rename a file it holds open: there it is closed first and not remembered.
      if (process.platform === "win32") {
        isOpen = false;
        await handle.close();
      }
      await renameOver(temp, file);
      // Stat'ed through the descriptor after the rename (which moves ctime): this is our file, whoever renames next.
      if (isOpen) key = statKey(await handle.stat({ bigint: true }));
    } finally {
      if (isOpen) await handle.close();
    }
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw new StoreWriteError(file, { cause: error });
  }
  await syncFolder(dir);
  return key;
}

/**
 * `rename`, retried briefly on Windows, where a reader holding the target open makes it fail
 * with EPERM/EACCES/EBUSY for a moment (POSIX renames over open files fine).
 */
async function renameOver(from: string, to: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await rename(from, to);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "";
      if (process.platform !== "win32" || attempt >= 10 || !["EPERM", "EACCES", "EBUSY"].includes(code)) throw error;
      await Bun.sleep(5 * 2 ** Math.min(attempt, 4));
    }
  }
}

/** Makes the rename itself durable. Best effort: Windows cannot open a folder for fsync. */
async function syncFolder(dir: string): Promise<void> {
  try {
    const handle = await open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // the new file is in place either way; only its durability across a power cut is at stake
  }
}

/** Compact UTC time for file names: 20261126T121500123Z. */
function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:.]/g, "");
}

/**
 * Copies the unusable bytes to `<file>.corrupt-<time>`, unless an identical copy is already there
 * (every read of a corrupt file ends up here, and one copy is enough).
 */
async function keepCorruptCopy(
  file: string,
  bytes: Buffer,
  now: () => number,
): Promise<{ path: string | undefined; error?: unknown }> {
  const dir = dirname(file);
  const prefix = `${basename(file)}.corrupt-`;
  try {
    const existing = await findIdenticalCopy(dir, prefix, bytes);
    if (existing) return { path: existing };
    const path = await freeName(join(dir, `${prefix}${stamp(now())}`));
    const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    try {
      const handle = await open(temp, TEMP_FLAGS, 0o600);
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, path);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
    return { path };
  } catch (error) {
    return { path: undefined, error };
  }
}

/** `path`, or `path-2`, `path-3` … when a different copy already took that name in the same millisecond. */
async function freeName(path: string): Promise<string> {
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? path : `${path}-${n}`;
    if (!(await stat(candidate).catch(() => undefined))) return candidate;
  }
}

async function findIdenticalCopy(dir: string, prefix: string, bytes: Buffer): Promise<string | undefined> {
  const names = (await readdir(dir))
    .filter((name) => name.startsWith(prefix))
    .sort()
    .reverse();
  for (const name of names) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile() || info.size !== bytes.length) continue;
    if (bytes.equals(await readFile(path))) return path;
  }
  return undefined;
}
