import { join } from "node:path";
import type { ScannedModelDefaults } from "../config/models-dir.ts";
import { FactsCache, type ModelFacts, readModelFacts } from "./facts.ts";

/**
 * The context a found model gets when its file was trained for more: llama-server's own default is the
 * trained context, and a 128k-token KV cache does not fit where the weights do (Ollama and LM Studio
 * start such files at a few thousand tokens too).
 */
export const SCANNED_CONTEXT_CAP = 8192;

/**
 * What a model found in `models_dir` gets from its GGUF facts: its own name (`general.name`), and
 * `--ctx-size 8192` where it was trained for more (see {@link SCANNED_CONTEXT_CAP}).
 * @example
 * defaultsFromFacts({ name: "Qwen2.5 7B Instruct", context_length: 32768, ... })
 * // { name: "Qwen2.5 7B Instruct", args: ["--ctx-size", "8192"] }
 */
export function defaultsFromFacts(facts: Pick<ModelFacts, "name" | "context_length">): ScannedModelDefaults {
  return {
    ...(facts.name ? { name: facts.name } : {}),
    args: facts.context_length > SCANNED_CONTEXT_CAP ? ["--ctx-size", String(SCANNED_CONTEXT_CAP)] : [],
  };
}

/**
 * `loadConfig`'s `modelDefaults` over placement's header reader and its cache (facts.json in the
 * home: a file read once is answered from it afterwards, in every process). A file whose header
 * cannot be read gets none.
 * @example
 * await loadConfig({ home, modelDefaults: scannedModelDefaults(cache) })
 */
export function scannedModelDefaults(cache: FactsCache): (path: string) => Promise<ScannedModelDefaults | undefined> {
  return async (path) => {
    try {
      return defaultsFromFacts(await readModelFacts(path, { cache }));
    } catch {
      return undefined;
    }
  };
}

/**
 * {@link scannedModelDefaults} over the home's own facts cache (`<home>/facts.json`): what the
 * controller and a reload pass to `loadConfig`.
 * @example
 * await loadConfig({ home, modelDefaults: homeModelDefaults(home) })
 */
export function homeModelDefaults(home: string): (path: string) => Promise<ScannedModelDefaults | undefined> {
  return scannedModelDefaults(new FactsCache({ file: join(home, "facts.json") }));
}
