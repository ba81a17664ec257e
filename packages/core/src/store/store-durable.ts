import { randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { mkdir, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { StoreWriteError } from "../errors.ts";
import { O_NOFOLLOW } from "./secure-fs.ts";
import { statKey } from "./store-memo.ts";

/** Temp files: created new (O_EXCL, which never follows a symlink either) and O_NOFOLLOW, to say so. */
const TEMP_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | O_NOFOLLOW;

/**
 * Creates the folder of `file` (0700) if it is missing.
 * @throws StoreWriteError
 * @example
 * await ensureFolder("/home/me/.local/state/corral/processes.json")
 */
export async function ensureFolder(file: string): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new StoreWriteError(file, { cause: error });
  }
}

/**
 * Replaces `file` with `content` so that a crash at any moment leaves either the old or the new
 * file, whole. On failure the temp file is removed and the old file is untouched.
 * @returns the {@link statKey} of the file written (undefined on Windows, where it is closed before the rename)
 * @example
 * const key = await writeAtomic(file, text)
 */
export async function writeAtomic(file: string, content: string): Promise<string | undefined> {
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

/**
 * Compact UTC time for file names.
 * @example
 * stamp(Date.now()) // "20261126T121500123Z"
 */
export function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:.]/g, "");
}

/**
 * Copies the unusable bytes to `<file>.corrupt-<time>`, unless an identical copy is already there
 * (every read of a corrupt file ends up here, and one copy is enough).
 * @example
 * const { path } = await keepCorruptCopy(file, bytes, Date.now)
 */
export async function keepCorruptCopy(
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
