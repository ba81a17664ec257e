import { resolve } from "node:path";
import { findModelFiles } from "../discovery/sources.ts";
import type { ModelConfig } from "./models.ts";

/** The part of the configuration the scan reads and extends. */
export interface WithModels {
  readonly models: readonly ModelConfig[];
  readonly models_dir: readonly string[];
  readonly restart: { readonly max_attempts: number };
}

/** Settings a found model file suggests (placement reads them from its GGUF header). */
export interface ScannedModelDefaults {
  /** the model's own name (`general.name`) */
  readonly name?: string;
  /** llama-server arguments the file calls for, e.g. a context size under a huge trained one */
  readonly args?: readonly string[];
}

/** Options of {@link withModelsDir}. */
export interface ModelsDirOptions {
  /** corral's home: symlinks under it are not followed */
  readonly corralHome?: string;
  /**
   * Defaults for each found file, from its facts. Injected by the controller (the header reader
   * sits above config); a file it cannot read keeps the plain defaults. @default none
   */
  readonly defaultsFor?: (path: string) => Promise<ScannedModelDefaults | undefined>;
}

/**
 * The configuration with every GGUF model found in `models_dir` added after the listed models:
 * the id is the file name's (Ollama style ids are not made here), an mmproj beside it is passed as
 * `--mmproj`. A listed model wins: a found file whose id, alias or path a listed model already has
 * is left out. Scanned at every load of the configuration, so a reload sees new files. Headers are
 * not read here: `defaultsFor` (the controller's, over placement's cached header reader) gives each
 * file's name and arguments from its facts.
 * @example
 * (await withModelsDir(parseConfig({ models_dir: "/srv/models" }))).models.map((m) => m.id) // ["qwen2.5-7b-q4_k_m"]
 */
export async function withModelsDir<C extends WithModels>(config: C, options: ModelsDirOptions = {}): Promise<C> {
  if (config.models_dir.length === 0) return config;
  const found = await findModelFiles({
    folders: config.models_dir,
    wellKnown: false,
    folderSource: "models_dir",
    ...(options.corralHome === undefined ? {} : { corralHome: options.corralHome }),
  });
  const taken = new Set(config.models.flatMap((m) => [m.id, ...(m.aliases ?? [])]));
  const paths = new Set(config.models.map((m) => resolve(m.path)));
  const fresh = found.filter((c) => !taken.has(c.id_hint) && !paths.has(resolve(c.path)));
  const scanned: ModelConfig[] = await Promise.all(
    fresh.map(async (c) => {
      const defaults = await options.defaultsFor?.(c.path).catch(() => undefined);
      return {
        id: c.id_hint,
        name: defaults?.name ?? c.id_hint,
        path: c.path,
        args: [...(defaults?.args ?? []), ...(c.mmproj === undefined ? [] : ["--mmproj", c.mmproj])],
        restart: "never" as const,
        max_restart_attempts: config.restart.max_attempts,
        env: {},
      };
    }),
  );
  return scanned.length === 0 ? config : { ...config, models: [...config.models, ...scanned] };
}
