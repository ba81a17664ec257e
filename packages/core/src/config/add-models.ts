import { existsSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../errors.ts";
import { readPrivateFile } from "../store/secure-fs.ts";
import { parseConfig } from "./load.ts";
import { type DraftModel, modelEntry, renderConfig, writeAtomic } from "./write.ts";

/**
 * Adding models to an existing `corral.yaml` (the page's "add to corral.yaml"): the entries are
 * inserted as text at the end of the `models:` list, so the user's comments and layout stay; the
 * result must parse and validate before it replaces the file (atomically).
 */

/** What {@link addModelsToConfig} did. */
export interface AddedModels {
  readonly file: string;
  /** the ids as written (made unique against the models already there) */
  readonly ids: readonly string[];
  /** the file did not exist and was written whole */
  readonly created: boolean;
}

/**
 * Adds models to the home's configuration file (`corral.yaml`, else `corral.json`; a new
 * `corral.yaml` when there is none). An id already taken gets "-2", "-3".
 * @throws ConfigError when the file's `models` cannot be extended as text (a flow list), or the result does not validate
 * @example
 * await addModelsToConfig({ home: "/h", models: [{ id: "qwen", path: "/m/q.gguf" }] })
 */
export async function addModelsToConfig(options: {
  readonly home: string;
  readonly models: readonly DraftModel[];
  /** an explicit file instead of the home's */
  readonly file?: string;
}): Promise<AddedModels> {
  const file = options.file ?? configFileOf(options.home);
  const text = readPrivateFile(file);
  const existing = text === undefined ? [] : parseConfig(parse(text, file), file).models.map((m) => m.id);
  const models = unique(options.models, existing);
  if (text === undefined) {
    writeAtomic(file, renderConfig({ models }));
    return { file, ids: models.map((m) => m.id), created: true };
  }
  const next = file.endsWith(".json") ? addToJson(text, file, models) : addToYaml(text, file, models);
  const parsed = parseConfig(parse(next, file), file);
  const missing = models.filter((m) => !parsed.models.some((p) => p.id === m.id));
  if (missing.length > 0) throw new ConfigError("models", "the added entries did not land in the list", file);
  writeAtomic(file, next);
  return { file, ids: models.map((m) => m.id), created: false };
}

/** `<home>/corral.yaml`, or `corral.json` where only that exists. */
function configFileOf(home: string): string {
  const yaml = join(home, "corral.yaml");
  const json = join(home, "corral.json");
  return !existsSync(yaml) && existsSync(json) ? json : yaml;
}

function parse(text: string, file: string): unknown {
  try {
    return file.endsWith(".json") ? JSON.parse(text) : Bun.YAML.parse(text);
  } catch (error) {
    throw new ConfigError("syntax", error instanceof Error ? error.message : String(error), file, { cause: error });
  }
}

function unique(models: readonly DraftModel[], taken: readonly string[]): DraftModel[] {
  const used = new Set(taken);
  return models.map((m) => {
    let id = m.id;
    for (let n = 2; used.has(id); n++) id = `${m.id.slice(0, 60)}-${n}`;
    used.add(id);
    return { ...m, id };
  });
}

function addToJson(text: string, file: string, models: readonly DraftModel[]): string {
  const doc = parse(text, file) as Record<string, unknown>;
  const entries = models.map((m) => ({
    id: m.id,
    path: m.path,
    ...(m.gpu ? { gpu: m.gpu } : {}),
    ...(m.mmproj ? { args: ["--mmproj", m.mmproj] } : {}),
  }));
  const list = doc.models;
  if (list && typeof list === "object" && !Array.isArray(list)) {
    for (const { id, ...rest } of entries) (list as Record<string, unknown>)[id] = rest;
  } else doc.models = [...(Array.isArray(list) ? list : []), ...entries];
  return `${JSON.stringify(doc, null, 2)}\n`;
}

const MODELS_LINE = /^models:[ \t]*(\[[ \t]*\]|\{[ \t]*\}|null|~)?[ \t]*(#.*)?$/;

function addToYaml(text: string, file: string, models: readonly DraftModel[]): string {
  const lines = text.replace(/\n$/, "").split("\n");
  const at = lines.findIndex((l) => l.startsWith("models:"));
  if (at === -1) return `${[...lines, "", "models:", ...models.flatMap((m) => modelEntry(m, "  "))].join("\n")}\n`;
  const head = MODELS_LINE.exec(lines[at] ?? "");
  if (!head) {
    throw new ConfigError("models", "is written inline; add the models by hand (or as a block list)", file);
  }
  // The block ends at the next line that starts in column 0 and is not part of the list.
  let end = at + 1;
  let indent: string | undefined;
  let mapForm = false;
  for (; end < lines.length; end++) {
    const line = lines[end] ?? "";
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const lead = /^(\s*)/.exec(line)?.[1] ?? "";
    if (lead === "" && !line.startsWith("- ")) break;
    if (indent === undefined) {
      indent = lead;
      mapForm = !line.trimStart().startsWith("- ");
    }
  }
  if (mapForm) throw new ConfigError("models", "is a map by id; add the models by hand (or as a list)", file);
  while (end > at + 1 && (lines[end - 1] ?? "").trim() === "") end--;
  const entries = models.flatMap((m) => modelEntry(m, indent ?? "  "));
  const headLine = head[1] ? "models:" : (lines[at] ?? "models:");
  return `${[...lines.slice(0, at), headLine, ...lines.slice(at + 1, end), ...entries, ...lines.slice(end)].join("\n")}\n`;
}
