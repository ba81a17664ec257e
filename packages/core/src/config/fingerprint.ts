import { createHash } from "node:crypto";
import type { CorralConfig, ModelConfig } from "./load.ts";

/**
 * What decides how a model's server is started, fingerprinted: a running server whose fingerprint
 * is no longer its model's runs with an out-of-date configuration (stale) until it is restarted.
 * Settings read at each decision (restart policy, ttl, aliases, pinned, name) are not part of it:
 * they apply at once.
 */

/**
 * The fingerprint of a model's start-up settings (executable, host, path, args, env,
 * cpu_affinity, port, gpu): 16 hex characters.
 * @example
 * modelFingerprint(config, findModel(config, "qwen")) // "3f2a9c0d51e7b6a4"
 */
export function modelFingerprint(config: Pick<CorralConfig, "llama_server" | "host">, model: ModelConfig): string {
  const env = Object.entries(model.env).sort(([a], [b]) => a.localeCompare(b));
  const facts = [
    config.llama_server,
    config.host,
    model.path,
    model.args,
    env,
    model.cpu_affinity ?? null,
    model.port ?? null,
    model.gpu ?? null,
  ];
  return createHash("sha256").update(JSON.stringify(facts)).digest("hex").slice(0, 16);
}

/**
 * Why a running entry no longer matches `config`, or undefined when it does or cannot be told
 * (an entry without a fingerprint: adopted, or started by an older corral).
 * @example
 * staleReason(config, entry) // "the configuration of model qwen changed: restart it to apply"
 */
export function staleReason(
  config: Pick<CorralConfig, "llama_server" | "host" | "models">,
  entry: { readonly model_id: string; readonly config_hash?: string },
): string | undefined {
  if (entry.config_hash === undefined) return undefined;
  const model = config.models.find((m) => m.id === entry.model_id);
  if (!model) return `model ${entry.model_id} is no longer configured: it runs until unloaded`;
  if (modelFingerprint(config, model) === entry.config_hash) return undefined;
  return `the configuration of model ${entry.model_id} changed: restart it to apply`;
}
