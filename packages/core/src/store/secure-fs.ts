import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  type Stats,
  statSync,
  writeSync,
} from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { UnsafePathError } from "../errors.ts";

/**
 * Opening files in a folder someone else might write to: never through a symlink, and never
 * trusting a descriptor before `fstat` says what it is. Every file corral creates is 0600 and
 * every folder 0700, whichever command creates it.
 */

/** `O_NOFOLLOW` where the platform has it (0 elsewhere, so the flag is a no-op on Windows). */
export const O_NOFOLLOW: number = constants.O_NOFOLLOW ?? 0;

/** Mode of every file corral creates. */
export const FILE_MODE = 0o600;
/** Mode of every folder corral creates. */
export const DIR_MODE = 0o700;

/** The effective uid, or undefined where the platform has none (Windows). */
export function effectiveUid(): number | undefined {
  return typeof process.geteuid === "function" ? process.geteuid() : undefined;
}

/**
 * Opens `path` without following a final symlink (ELOOP for a symlink), created 0600.
 * @default mode = 0o600
 * @example
 * const fd = openNoFollowSync("/h/history.jsonl", constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT)
 */
export function openNoFollowSync(path: string, flags: number, mode: number = FILE_MODE): number {
  try {
    return openSync(path, flags | O_NOFOLLOW, mode);
  } catch (error) {
    throw symlinkRefusal(path, error);
  }
}

/**
 * {@link openNoFollowSync} as a promise of a `FileHandle`.
 * @default mode = 0o600
 * @example
 * const handle = await openNoFollow("/h/logs/slot-0.log", constants.O_RDONLY)
 */
export async function openNoFollow(path: string, flags: number, mode: number = FILE_MODE): Promise<FileHandle> {
  try {
    return await open(path, flags | O_NOFOLLOW, mode);
  } catch (error) {
    throw symlinkRefusal(path, error);
  }
}

/** ELOOP from O_NOFOLLOW becomes an UnsafePathError; anything else (ENOENT …) passes through. */
function symlinkRefusal(path: string, error: unknown): unknown {
  if ((error as NodeJS.ErrnoException).code !== "ELOOP") return error;
  return new UnsafePathError(
    path,
    "is a symbolic link, which corral never follows (it could point at any file)",
    "remove the link; corral creates its own files",
    { cause: error },
  );
}

/**
 * Checks what an open descriptor really is: a regular file, owned by one of `owners` (where the
 * platform has uids). Throws UnsafePathError naming the reason otherwise.
 * @example
 * assertRegularFile(await handle.stat(), file, [process.geteuid()])
 */
export function assertRegularFile(info: Stats, path: string, owners: readonly (number | undefined)[]): void {
  if (!info.isFile()) {
    throw new UnsafePathError(path, "is not a regular file", "corral only reads and writes plain files");
  }
  const allowed = owners.filter((o): o is number => o !== undefined);
  if (effectiveUid() === undefined || allowed.length === 0) return;
  if (!allowed.includes(info.uid)) {
    throw new UnsafePathError(
      path,
      `is owned by uid ${info.uid}, not by corral (uid ${effectiveUid()}) or the process that writes it`,
      "corral will not hand out another user's file",
    );
  }
}

/**
 * Makes sure a home folder is safe to use: creates it 0700 when missing, then refuses one that
 * is not owned by the effective uid or that group or others can write to (they could plant
 * symlinks or swap files under corral).
 * @throws UnsafePathError naming the folder and the fix
 * @example
 * ensureSafeHome("/home/me/.local/state/corral")
 */
export function ensureSafeHome(home: string): void {
  let info: Stats;
  try {
    info = statSync(home);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    mkdirSync(home, { recursive: true, mode: DIR_MODE });
    info = statSync(home);
  }
  if (!info.isDirectory()) {
    throw new UnsafePathError(home, "is not a folder", "point CORRAL_HOME (or --home) at a folder");
  }
  const euid = effectiveUid();
  if (euid === undefined) return;
  if (info.uid !== euid) {
    throw new UnsafePathError(
      home,
      `the corral home is owned by uid ${info.uid}, not by you (uid ${euid})`,
      `use a home of your own (CORRAL_HOME=~/.local/state/corral) or \`chown ${euid} ${home}\``,
    );
  }
  if ((info.mode & 0o022) !== 0) {
    throw new UnsafePathError(
      home,
      `the corral home is writable by ${info.mode & 0o002 ? "others" : "its group"} (mode ${(info.mode & 0o777).toString(8)})`,
      `run \`chmod 700 ${home}\``,
    );
  }
}

/**
 * Creates a folder (and its parents) 0700 inside a home.
 * @example
 * mkdirPrivate("/h/logs")
 */
export function mkdirPrivate(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
}

/**
 * Whether a file is readable by group or others (for warnings about secrets in it).
 * @returns false for a missing file
 * @example
 * if (readableByOthers("/h/corral.yaml")) warn("corral.yaml holds a token and others can read it")
 */
export function readableByOthers(path: string): boolean {
  try {
    return (statSync(path).mode & 0o044) !== 0;
  } catch {
    return false;
  }
}

/**
 * Reads a small file through O_NOFOLLOW, checking it is a regular file owned by the effective uid.
 * @returns undefined for a missing file
 * @example
 * readPrivateFile("/h/token")
 */
export function readPrivateFile(path: string): string | undefined {
  let fd: number;
  try {
    fd = openNoFollowSync(path, constants.O_RDONLY);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    assertRegularFile(fstatSync(fd), path, [effectiveUid()]);
    return Buffer.from(readAll(fd)).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

function readAll(fd: number): Uint8Array {
  const chunks: Buffer[] = [];
  for (;;) {
    const chunk = Buffer.alloc(64 * 1024);
    const n = readSync(fd, chunk, 0, chunk.length, null);
    if (n === 0) break;
    chunks.push(chunk.subarray(0, n));
  }
  return Buffer.concat(chunks);
}

/**
 * Replaces a small file of the home with `text`, durably and atomically: a new temp file beside it
 * (0600, O_EXCL, O_NOFOLLOW, checked with fstat), written, fsynced, renamed over the file, then the
 * folder fsynced. A reader sees the old file or the new one, never a part; on failure the temp file
 * is removed and the error is the caller's.
 * @example
 * writePrivateFileAtomic("/h/tokens.json", JSON.stringify(tokens))
 */
export function writePrivateFileAtomic(file: string, text: string): void {
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const fd = openNoFollowSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL);
  try {
    assertRegularFile(fstatSync(fd), temp, [effectiveUid()]);
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  try {
    const dir = openSync(dirname(file), constants.O_RDONLY);
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // some platforms cannot fsync a folder; the rename is still atomic
  }
}
