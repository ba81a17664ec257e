import { type AddedModels, addModelsToConfig } from "../config/add-models.ts";
import {
  type ConfigDraft,
  type DraftModel,
  renderConfig,
  type WrittenConfig,
  writeConfigFile,
} from "../config/write.ts";
import { ConfigError } from "../errors.ts";
import { factsLine, type ScanOptions, scanForModels } from "./scan.ts";
import type { FoundModel } from "./views.ts";

/**
 * The entries a configuration lists for found models: their ids, paths, `--mmproj`, and a comment
 * with the facts and the source.
 * @example
 * draftModels(found)[0] // { id: "llama3.2:1b", path: "/h/.ollama/models/blobs/sha256-…", comment: "llama 1.2B Q8_0, …" }
 */
export function draftModels(found: readonly FoundModel[]): DraftModel[] {
  return found.map((m) => ({
    id: m.id,
    path: m.path,
    ...(m.mmproj === undefined ? {} : { mmproj: m.mmproj }),
    comment: factsLine(m),
  }));
}

/**
 * Writes a first configuration (what `corral init` does once the choices are made).
 * @throws ConfigError when the file exists and `force` is not set (nothing is changed)
 * @example
 * writeFirstConfig({ file: "/h/corral.yaml", found, gpus: [0], llamaServer: "/usr/local/bin/llama-server" })
 */
export function writeFirstConfig(
  options: Omit<ConfigDraft, "models"> & {
    readonly file: string;
    readonly found: readonly FoundModel[];
    readonly force?: boolean;
  },
): WrittenConfig {
  const { file, found, force, ...draft } = options;
  const text = renderConfig({ ...draft, models: draftModels(found) });
  return writeConfigFile({ file, text, force: force === true });
}

/**
 * Adds models to the home's configuration by path, accepting only files a scan of the same
 * places finds (a caller cannot name an arbitrary file).
 * @throws ConfigError listing the paths the scan did not find
 * @example
 * await addFoundModels({ home: "/h", paths: ["/srv/models/qwen.gguf"], scan: { folders: ["/srv/models"] } })
 */
export async function addFoundModels(options: {
  readonly home: string;
  readonly file?: string;
  readonly paths: readonly string[];
  readonly scan: ScanOptions;
}): Promise<AddedModels> {
  const { models } = await scanForModels(options.scan);
  const chosen = options.paths.map((p) => models.find((m) => m.path === p));
  const unknown = options.paths.filter((_, i) => chosen[i] === undefined);
  if (unknown.length > 0) {
    throw new ConfigError("models", `not found by the scan: ${unknown.join(", ")}`, options.file);
  }
  return addModelsToConfig({
    home: options.home,
    ...(options.file === undefined ? {} : { file: options.file }),
    models: draftModels(chosen.filter((m) => m !== undefined)),
  });
}
