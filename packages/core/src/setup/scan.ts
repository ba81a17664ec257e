import type { GgufCandidate } from "../discovery/gguf-files.ts";
import { type FindModelFilesOptions, findModelFiles, searchedPlaces } from "../discovery/sources.ts";
import { type FactsCache, formatParameterCount, readModelFacts } from "../placement/facts.ts";
import type { FoundModel } from "./views.ts";

/** Options of {@link scanForModels}. */
export interface ScanOptions extends FindModelFilesOptions {
  /** @default the facts module's shared cache */
  readonly cache?: FactsCache;
}

/** What {@link scanForModels} found and where it looked. */
export interface ScanResult {
  readonly models: readonly FoundModel[];
  readonly searched: ReturnType<typeof searchedPlaces>;
}

/**
 * Finds the user's GGUF models (the folders given, `~/models`, the Hugging Face cache, LM Studio,
 * Ollama) and reads each one's facts from its header: architecture, parameters (a split model's
 * parts summed), quantization, trained context, size. A header that cannot be read says why.
 * @example
 * const { models } = await scanForModels({ folders: ["/srv/models"] })
 * models[0] // { id: "qwen2.5-7b-q4_k_m", source: "folder", quantization: "Q4_K_M", parameters: "7.6B", … }
 */
export async function scanForModels(options: ScanOptions = {}): Promise<ScanResult> {
  const found = await findModelFiles(options);
  const models = await Promise.all(found.map((c) => withFacts(c, options.cache)));
  return { models, searched: searchedPlaces(options) };
}

async function withFacts(c: GgufCandidate, cache: FactsCache | undefined): Promise<FoundModel> {
  const base: FoundModel = {
    id: c.id_hint,
    path: c.path,
    source: c.source,
    root: c.root,
    parts: c.parts,
    size_bytes: c.size_bytes,
    ...(c.mmproj === undefined ? {} : { mmproj: c.mmproj }),
  };
  const read = (path: string) => readModelFacts(path, cache ? { cache } : {});
  try {
    const first = await read(c.path);
    const rest = await Promise.all(splitParts(c).slice(1).map(read));
    const parameters = rest.reduce((n, f) => n + f.parameter_count, first.parameter_count);
    return {
      ...base,
      architecture: first.architecture,
      parameter_count: parameters,
      parameters: formatParameterCount(parameters),
      quantization: first.quantization,
      context_length: first.context_length,
    };
  } catch (error) {
    return { ...base, error: `not a readable GGUF file: ${error instanceof Error ? error.message : String(error)}` };
  }
}

function splitParts(c: GgufCandidate): string[] {
  const m = /-(\d{5})-of-(\d{5})\.gguf$/i.exec(c.path);
  if (!m) return [c.path];
  return Array.from({ length: c.parts }, (_, i) =>
    c.path.replace(/-\d{5}-of-(\d{5})\.gguf$/i, `-${String(i + 1).padStart(5, "0")}-of-$1.gguf`),
  );
}

/**
 * The comment `corral init` writes above a found model's entry.
 * @example
 * factsLine(found) // "llama 494M Q4_K_M, context 32768, 379 MB, from the Hugging Face cache"
 */
export function factsLine(model: FoundModel): string {
  const facts = model.error
    ? "header unreadable"
    : [model.architecture, model.parameters, model.quantization].filter(Boolean).join(" ");
  const context = model.context_length ? `, context ${model.context_length}` : "";
  const parts = model.parts > 1 ? `, ${model.parts} parts` : "";
  const n = model.size_bytes;
  const mb =
    n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${Math.round(n / 1e6)} MB` : `${Math.ceil(n / 1e3)} kB`;
  return `${facts}${context}, ${mb}${parts}, ${SOURCE_WORDS[model.source]}`;
}

/** How each source reads in a sentence. */
export const SOURCE_WORDS: Readonly<Record<FoundModel["source"], string>> = {
  folder: "from the folder given",
  models_dir: "from models_dir",
  home: "from ~/models",
  huggingface: "from the Hugging Face cache",
  lmstudio: "from LM Studio",
  ollama: "from Ollama",
};
