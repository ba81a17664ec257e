import { lstat, readdir, realpath, stat } from "node:fs/promises";
import { basename, join, relative } from "node:path";

/**
 * GGUF files of one folder tree, grouped the way llama-server takes them: a split model counts
 * once, by its first part; an `mmproj` file belongs to the models beside it, not a model of its own.
 */

/** Where a found model came from. */
export type ModelSource = "folder" | "models_dir" | "home" | "huggingface" | "lmstudio" | "ollama";

/** One model file found on disk (no header read yet). */
export interface GgufCandidate {
  /** the file to pass as `--model` (a split model's first part); symlinks as found, not resolved */
  readonly path: string;
  /** the file behind the symlinks, for counting a file reached twice only once */
  readonly real_path: string;
  readonly source: ModelSource;
  /** the folder that was searched */
  readonly root: string;
  /** an id derived from where it was found (file name, Ollama's `<name>:<tag>`) */
  readonly id_hint: string;
  /** split parts, all of them present @default 1 */
  readonly parts: number;
  /** bytes of every part together */
  readonly size_bytes: number;
  /** the projector for a multimodal model (`--mmproj`) */
  readonly mmproj?: string;
}

/** Options of {@link findGgufFiles}. */
export interface FindGgufOptions {
  readonly root: string;
  readonly source: ModelSource;
  /** folders below `root` searched @default 4 */
  readonly depth?: number;
  /**
   * A folder whose symlinks are never followed (corral's home: someone could plant a link there).
   * Files reached through symlinks elsewhere are read: the Hugging Face cache is built of them.
   */
  readonly noFollowUnder?: string;
}

const SPLIT_RE = /-(\d{5})-of-(\d{5})\.gguf$/i;

/**
 * The id a file name gives: without `.gguf` and the split suffix, other characters turned to "-", at most 64.
 * @example
 * idFromFileName("Qwen2.5-7B-Instruct-Q4_K_M-00001-of-00003.gguf") // "Qwen2.5-7B-Instruct-Q4_K_M"
 */
export function idFromFileName(file: string): string {
  const stem = basename(file)
    .replace(SPLIT_RE, "")
    .replace(/\.gguf$/i, "");
  const id = stem
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 64);
  return id || "model";
}

/**
 * Whether a file name is a multimodal projector (llama.cpp's and Hugging Face's `mmproj` naming).
 * @example
 * isMmprojFile("mmproj-model-f16.gguf") // true
 */
export function isMmprojFile(file: string): boolean {
  return /mmproj/i.test(basename(file));
}

function inside(path: string, folder: string | undefined): boolean {
  if (folder === undefined) return false;
  const rel = relative(folder, path);
  return rel === "" || (!rel.startsWith("..") && !rel.startsWith("/"));
}

/**
 * Every GGUF model under `root`, sorted by path; a missing or unreadable root is no models.
 * @default depth = 4
 * @example
 * await findGgufFiles({ root: "/home/me/models", source: "home" })
 */
export async function findGgufFiles(options: FindGgufOptions): Promise<GgufCandidate[]> {
  const byFolder = new Map<string, string[]>();
  const seenFolders = new Set<string>();
  await walk(options.root, options.depth ?? 4, options, byFolder, seenFolders);
  const found: GgufCandidate[] = [];
  for (const files of byFolder.values()) found.push(...(await groupFolder(files.sort(), options)));
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

async function walk(
  folder: string,
  depth: number,
  options: FindGgufOptions,
  byFolder: Map<string, string[]>,
  seen: Set<string>,
): Promise<void> {
  let real: string;
  let names: string[];
  try {
    real = await realpath(folder);
    if (seen.has(real)) return; // a symlink loop, or a folder linked twice
    seen.add(real);
    names = await readdir(folder);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(".")) continue;
    const path = join(folder, name);
    const info = await entryInfo(path, options.noFollowUnder);
    if (info === "dir" && depth > 0) await walk(path, depth - 1, options, byFolder, seen);
    else if (info === "file" && /\.gguf$/i.test(name)) byFolder.set(folder, [...(byFolder.get(folder) ?? []), path]);
  }
}

async function entryInfo(path: string, noFollowUnder: string | undefined): Promise<"dir" | "file" | undefined> {
  try {
    const info = inside(path, noFollowUnder) ? await lstat(path) : await stat(path);
    return info.isDirectory() ? "dir" : info.isFile() ? "file" : undefined;
  } catch {
    return undefined; // a dangling link (a Hugging Face download in progress), or no permission
  }
}

async function groupFolder(files: readonly string[], options: FindGgufOptions) {
  const mmproj = files.find(isMmprojFile);
  const out: GgufCandidate[] = [];
  for (const path of files) {
    if (isMmprojFile(path)) continue;
    const split = SPLIT_RE.exec(path);
    if (split && split[1] !== "00001") continue;
    const total = split ? Number(split[2]) : 1;
    const parts = split
      ? Array.from({ length: total }, (_, i) =>
          path.replace(SPLIT_RE, `-${String(i + 1).padStart(5, "0")}-of-${split[2]}.gguf`),
        )
      : [path];
    if (!parts.every((p) => files.includes(p))) continue; // a split model still downloading
    const sizes = await Promise.all(parts.map((p) => stat(p).then((s) => s.size)));
    out.push({
      path,
      real_path: await realpath(path),
      source: options.source,
      root: options.root,
      id_hint: idFromFileName(path),
      parts: total,
      size_bytes: sizes.reduce((a, b) => a + b, 0),
      ...(mmproj ? { mmproj } : {}),
    });
  }
  return out;
}
