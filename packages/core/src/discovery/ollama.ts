import { readdir, readFile, realpath, stat } from "node:fs/promises";
import { join } from "node:path";
import type { GgufCandidate } from "./gguf-files.ts";

/**
 * Models pulled by Ollama: `<models>/manifests/<registry>/<namespace>/<name>/<tag>` is a JSON manifest;
 * its layer of media type `application/vnd.ollama.image.model` names the blob
 * `<models>/blobs/sha256-<digest>`, which is the GGUF file (a projector layer is the `--mmproj`).
 */

const MODEL_LAYER = "application/vnd.ollama.image.model";
const PROJECTOR_LAYER = "application/vnd.ollama.image.projector";

interface Manifest {
  readonly layers?: readonly { readonly mediaType?: unknown; readonly digest?: unknown }[];
}

async function names(folder: string): Promise<string[]> {
  try {
    return (await readdir(folder)).filter((n) => !n.startsWith("."));
  } catch {
    return [];
  }
}

function blobOf(models: string, manifest: Manifest, mediaType: string): string | undefined {
  const digest = manifest.layers?.find((l) => l.mediaType === mediaType)?.digest;
  if (typeof digest !== "string" || !/^sha256:[0-9a-f]{64}$/.test(digest)) return undefined;
  return join(models, "blobs", digest.replace(":", "-"));
}

/**
 * Every model in Ollama's store at `models` (usually `~/.ollama/models`, or `$OLLAMA_MODELS`), with the
 * id Ollama users know (`<name>:<tag>`); manifests that do not parse or name a missing blob are skipped.
 * @example
 * (await findOllamaModels("/home/me/.ollama/models"))[0]?.id_hint // "llama3.2:1b"
 */
export async function findOllamaModels(models: string): Promise<GgufCandidate[]> {
  const root = join(models, "manifests");
  const found: GgufCandidate[] = [];
  for (const registry of await names(root)) {
    for (const namespace of await names(join(root, registry))) {
      for (const name of await names(join(root, registry, namespace))) {
        for (const tag of await names(join(root, registry, namespace, name))) {
          const model = await fromManifest(models, join(root, registry, namespace, name, tag), `${name}:${tag}`);
          if (model) found.push(model);
        }
      }
    }
  }
  return found.sort((a, b) => a.id_hint.localeCompare(b.id_hint));
}

async function fromManifest(models: string, file: string, id: string): Promise<GgufCandidate | undefined> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(file, "utf8")) as Manifest;
  } catch {
    return undefined;
  }
  const blob = blobOf(models, manifest, MODEL_LAYER);
  if (blob === undefined) return undefined;
  try {
    const info = await stat(blob);
    if (!info.isFile()) return undefined;
    const projector = blobOf(models, manifest, PROJECTOR_LAYER);
    const hasProjector = projector !== undefined && (await stat(projector).catch(() => undefined))?.isFile();
    return {
      path: blob,
      real_path: await realpath(blob),
      source: "ollama",
      root: models,
      id_hint: id,
      parts: 1,
      size_bytes: info.size,
      ...(hasProjector ? { mmproj: projector } : {}),
    };
  } catch {
    return undefined;
  }
}
