import { dirname } from "node:path";
import { ConfigError } from "../errors.ts";
import { mkdirPrivate, readPrivateFile, writePrivateFileAtomic } from "../store/secure-fs.ts";

/**
 * Writing `corral.yaml`: the commented file `corral init` makes, written atomically (0600, never
 * over an existing file without `force`, and then a copy of the old one is kept).
 */

/** One model as a written configuration lists it. */
export interface DraftModel {
  readonly id: string;
  /** the GGUF file (a split model's first part) */
  readonly path: string;
  /** `--mmproj` for a multimodal model */
  readonly mmproj?: string;
  /** slot key or "auto" */
  readonly gpu?: string;
  /** a comment line above the entry: facts and where it was found */
  readonly comment?: string;
}

/** What {@link renderConfig} writes. */
export interface ConfigDraft {
  readonly models: readonly DraftModel[];
  /** an absolute path; absent leaves the default (`llama-server` on PATH and the usual build folders) */
  readonly llamaServer?: string;
  /** where it was found, for its comment */
  readonly llamaServerNote?: string;
  /** the GPUs chosen; each model then gets the one, or `auto` among several @default [] (no gpu key) */
  readonly gpus?: readonly number[];
  /** written as `models_dir:` @default [] (a commented example) */
  readonly modelsDir?: readonly string[];
  /** @default new Date() */
  readonly now?: Date;
}

const q = (s: string) => JSON.stringify(s);

/**
 * One model entry, indented for a block list under `models:`.
 * @example
 * modelEntry({ id: "qwen", path: "/m/q.gguf" }, "  ") // ["  - id: \"qwen\"", "    path: \"/m/q.gguf\""]
 */
export function modelEntry(model: DraftModel, indent: string): string[] {
  const inner = `${indent}  `;
  return [
    ...(model.comment ? [`${indent}# ${model.comment.replace(/\s*\n\s*/g, " ")}`] : []),
    `${indent}- id: ${q(model.id)}`,
    `${inner}path: ${q(model.path)}`,
    ...(model.gpu === undefined ? [] : [`${inner}gpu: ${q(model.gpu)}`]),
    ...(model.mmproj === undefined ? [] : [`${inner}args: [${q("--mmproj")}, ${q(model.mmproj)}]`]),
  ];
}

/**
 * The text of a commented `corral.yaml` for the chosen models, GPUs and llama-server.
 * @example
 * renderConfig({ models: [{ id: "qwen", path: "/m/q.gguf" }], gpus: [0] })
 */
export function renderConfig(draft: ConfigDraft): string {
  const gpus = draft.gpus ?? [];
  const gpu = gpus.length === 0 ? undefined : gpus.length === 1 ? String(gpus[0]) : "auto";
  const lines = [
    `# corral.yaml, written by \`corral init\` on ${(draft.now ?? new Date()).toISOString()}.`,
    "# Every key is optional (the README's Configuration section lists them). Edit freely: corral reads",
    "# this file at every command, and `corral serve` when it starts or reloads.",
    "",
    "# The llama-server executable corral starts.",
    ...(draft.llamaServer === undefined
      ? ["# llama_server: /path/to/llama-server   # default: llama-server on PATH and the usual build folders"]
      : [...(draft.llamaServerNote ? [`# ${draft.llamaServerNote}`] : []), `llama_server: ${q(draft.llamaServer)}`]),
    "",
    "# Folders whose GGUF files are all models too (ids from the file names); listed models win.",
    ...((draft.modelsDir ?? []).length === 0
      ? ["# models_dir:", "#   - ~/models"]
      : ["models_dir:", ...(draft.modelsDir ?? []).map((d) => `  - ${q(d)}`)]),
    "",
    gpus.length === 0
      ? '# The models. No GPU was chosen: add `gpu: 0` (or "0,1", or auto) to a model to place it.'
      : `# The models, on GPU${gpus.length > 1 ? `s ${gpus.join(", ")} (auto: the one with the most room)` : ` ${gpus[0]}`}.`,
    "# Other keys per model: args (llama-server flags), port, restart: on-failure, aliases, ttl.",
  ];
  if (draft.models.length === 0) lines.push("models: []");
  else {
    lines.push("models:");
    for (const model of draft.models) lines.push(...modelEntry({ ...model, ...(gpu ? { gpu } : {}) }, "  "));
  }
  return `${lines.join("\n")}\n`;
}

/** What {@link writeConfigFile} did. */
export interface WrittenConfig {
  readonly file: string;
  /** the copy of the file it replaced (with `force`) */
  readonly backup?: string;
}

/**
 * Writes `text` to `file` atomically: a temp file beside it (O_EXCL, O_NOFOLLOW, 0600), fsync,
 * rename, fsync of the folder. An existing file is refused unless `force`, and then copied to
 * `<file>.<timestamp>.bak` first.
 * @default force = false
 * @throws ConfigError when the file exists and `force` is not set
 * @example
 * writeConfigFile({ file: "/h/corral.yaml", text: renderConfig(draft) })
 */
export function writeConfigFile(options: {
  readonly file: string;
  readonly text: string;
  readonly force?: boolean;
  readonly now?: Date;
}): WrittenConfig {
  const { file } = options;
  mkdirPrivate(dirname(file));
  const old = readPrivateFile(file);
  if (old !== undefined && !options.force) {
    throw new ConfigError("file", "already exists; nothing was changed (--force replaces it and keeps a copy)", file);
  }
  let backup: string | undefined;
  if (old !== undefined) {
    const stamp = (options.now ?? new Date()).toISOString().replace(/[:.]/g, "-");
    backup = `${file}.${stamp}.bak`;
    writeAtomic(backup, old);
  }
  writeAtomic(file, options.text);
  return backup === undefined ? { file } : { file, backup };
}

/**
 * Replaces `file` with `text`: temp file, fsync, rename, fsync the folder.
 * @example
 * writeAtomic("/h/corral.yaml", "models: []\n")
 */
export function writeAtomic(file: string, text: string): void {
  writePrivateFileAtomic(file, text);
}
