import { readdir } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { findGgufFiles, type GgufCandidate, type ModelSource } from "./gguf-files.ts";
import { findOllamaModels } from "./ollama.ts";

/** Options of {@link findModelFiles}. */
export interface FindModelFilesOptions {
  /** folders named by the user (`--models DIR`, the page's folder box), searched first */
  readonly folders?: readonly string[];
  /** also search `~/models`, the Hugging Face cache, LM Studio's and Ollama's stores @default true */
  readonly wellKnown?: boolean;
  /** the user's home folder @default $HOME, else os.homedir() */
  readonly userHome?: string;
  /** for `HF_HUB_CACHE`, `HF_HOME`, `OLLAMA_MODELS` @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** corral's home: symlinks under it are never followed */
  readonly corralHome?: string;
  /** the source named for `folders` @default "folder" */
  readonly folderSource?: ModelSource;
}

/** One place searched, for "looked in …" messages. */
export interface SearchedPlace {
  readonly source: ModelSource;
  readonly root: string;
}

/**
 * The places searched, in order: the given folders, `~/models`, the Hugging Face cache, LM Studio, Ollama.
 * @default as {@link FindModelFilesOptions}
 * @example
 * searchedPlaces({ userHome: "/home/me" })[0] // { source: "home", root: "/home/me/models" }
 */
export function searchedPlaces(options: FindModelFilesOptions = {}): SearchedPlace[] {
  const env = options.env ?? process.env;
  const home = options.userHome ?? (env.HOME || homedir());
  const hub = env.HF_HUB_CACHE || (env.HF_HOME ? join(env.HF_HOME, "hub") : join(home, ".cache", "huggingface", "hub"));
  const given = (options.folders ?? []).map((f) => ({ source: options.folderSource ?? "folder", root: resolve(f) }));
  if (options.wellKnown === false) return given;
  return [
    ...given,
    { source: "home", root: join(home, "models") },
    { source: "huggingface", root: hub },
    { source: "lmstudio", root: join(home, ".lmstudio", "models") },
    { source: "lmstudio", root: join(home, ".cache", "lm-studio", "models") },
    { source: "ollama", root: env.OLLAMA_MODELS || join(home, ".ollama", "models") },
  ];
}

/**
 * Every GGUF model in the places {@link searchedPlaces} names, each file once (a file reached twice,
 * through a symlink or two snapshots, keeps its first place), with ids made unique ("-2", "-3").
 * @example
 * const found = await findModelFiles({ folders: ["/srv/models"] })
 */
export async function findModelFiles(options: FindModelFilesOptions = {}): Promise<GgufCandidate[]> {
  const places = searchedPlaces(options);
  const lists = await Promise.all(places.map((p) => filesOf(p, options.corralHome)));
  const seenFiles = new Set<string>();
  const ids = new Set<string>();
  const out: GgufCandidate[] = [];
  for (const candidate of lists.flat()) {
    if (seenFiles.has(candidate.real_path)) continue;
    seenFiles.add(candidate.real_path);
    out.push({ ...candidate, id_hint: uniqueId(candidate.id_hint, ids) });
  }
  return out;
}

function uniqueId(id: string, taken: Set<string>): string {
  let unique = id;
  for (let n = 2; taken.has(unique); n++) unique = `${id.slice(0, 60)}-${n}`;
  taken.add(unique);
  return unique;
}

async function filesOf(place: SearchedPlace, corralHome: string | undefined): Promise<GgufCandidate[]> {
  const noFollowUnder = corralHome;
  if (place.source === "ollama") return findOllamaModels(place.root);
  if (place.source === "huggingface") return huggingFace(place.root, noFollowUnder);
  if (place.source === "lmstudio")
    return findGgufFiles({ root: place.root, source: "lmstudio", depth: 2, noFollowUnder });
  return findGgufFiles({ root: place.root, source: place.source, noFollowUnder });
}

/** `<hub>/models--<org>--<repo>/snapshots/<revision>/…`: only snapshots, never `blobs/` (nameless files). */
async function huggingFace(hub: string, noFollowUnder: string | undefined): Promise<GgufCandidate[]> {
  let repos: string[];
  try {
    repos = (await readdir(hub)).filter((n) => n.startsWith("models--")).sort();
  } catch {
    return [];
  }
  const found = await Promise.all(
    repos.map((repo) =>
      findGgufFiles({ root: join(hub, repo, "snapshots"), source: "huggingface", depth: 3, noFollowUnder }),
    ),
  );
  return found.flat().map((c) => ({ ...c, root: hub }));
}
