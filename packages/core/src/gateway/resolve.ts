import { basename } from "node:path";
import type { ModelConfig } from "../config/load.ts";
import { GatewayError } from "./errors.ts";

/**
 * Finds the configured model a request's `model` field names: its id, one of its `aliases`,
 * or the file name llama-server reports (`tiny-chat.gguf`, or `tiny-chat`). Ollama clients
 * add a tag (`qwen:latest`); `:latest` is ignored. Ids and aliases win over file names.
 */
export interface ModelResolver {
  /**
   * @throws GatewayError "unknown_model" (404) listing the names it knows
   * @example
   * createResolver(config.models).resolve("gpt-4o").id // "qwen-7b" (an alias)
   */
  resolve(name: unknown): ModelConfig;
  /** Every name a model answers to, its id first. */
  namesOf(model: ModelConfig): string[];
}

/**
 * An index of the configured models by every name they answer to.
 * @example
 * const resolver = createResolver(config.models); resolver.resolve("tiny-chat.gguf")
 */
export function createResolver(models: readonly ModelConfig[]): ModelResolver {
  const strong = new Map<string, ModelConfig>();
  const weak = new Map<string, ModelConfig>();
  for (const m of models) {
    strong.set(m.id, m);
    for (const alias of m.aliases ?? []) strong.set(alias, m);
  }
  for (const m of models) {
    for (const name of fileNames(m)) if (!weak.has(name)) weak.set(name, m);
  }
  const lookup = (name: string) => strong.get(name) ?? weak.get(name);
  return {
    resolve(name) {
      if (typeof name !== "string" || name === "") {
        throw new GatewayError("bad_request", "the request needs a `model` naming a configured model");
      }
      const found = lookup(name) ?? (name.endsWith(":latest") ? lookup(name.slice(0, -":latest".length)) : undefined);
      if (found) return found;
      const known = models.map((m) => m.id).join(", ") || "none configured";
      throw new GatewayError("unknown_model", `model "${name.slice(0, 100)}" is not configured (known: ${known})`);
    },
    namesOf(model) {
      return [...new Set([model.id, ...(model.aliases ?? []), ...fileNames(model)])];
    },
  };
}

function fileNames(model: ModelConfig): string[] {
  const file = basename(model.path);
  return file.endsWith(".gguf") ? [model.path, file, file.slice(0, -".gguf".length)] : [model.path, file];
}
