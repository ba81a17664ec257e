import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import type { ModelConfig } from "../config/load.ts";
import type { ProcessStatus } from "../lifecycle/types.ts";
import type { GatewayModelView } from "./gateway.ts";

/**
 * Ollama's listing endpoints (`/api/tags`, `/api/ps`, `/api/show`, `/api/version`) from the
 * gateway's view of the configured models. `/api/ps` reports the real GPU memory a loaded
 * server holds where nvidia-smi tells (the original answered `size_vram: 0`), and when the
 * gateway will unload it.
 */

/** The Ollama version corral answers with: recent enough for clients that check. */
export const OLLAMA_COMPAT_VERSION = "0.12.0";
const MIB = 1024 * 1024;
/** Ollama's "never expires" (keep_alive < 0) is a far-future time. */
const NEVER = "2318-01-01T00:00:00Z";

interface FileFacts {
  readonly size: number;
  readonly modified: string;
}

async function fileFacts(path: string): Promise<FileFacts> {
  try {
    const info = await stat(path);
    return { size: info.size, modified: info.mtime.toISOString() };
  } catch {
    return { size: 0, modified: new Date(0).toISOString() };
  }
}

/** A stable stand-in for Ollama's blob digest: the model file's path, hashed. */
function digestOf(model: ModelConfig): string {
  return createHash("sha256").update(model.path).digest("hex");
}

function detailsOf(model: ModelConfig) {
  const quant = /\b(Q\d_[A-Z0-9_]+|F16|F32|BF16)\b/i.exec(model.path)?.[1]?.toUpperCase() ?? "";
  return {
    parent_model: "",
    format: "gguf",
    family: "llama",
    families: ["llama"],
    parameter_size: "",
    quantization_level: quant,
  };
}

/**
 * `GET /api/tags`: every configured model, loaded or not.
 * @example
 * await ollamaTags(config.models) // { models: [{ name: "qwen", model: "qwen", size: 4368439584, … }] }
 */
export async function ollamaTags(models: readonly ModelConfig[]) {
  return {
    models: await Promise.all(
      models.map(async (m) => {
        const facts = await fileFacts(m.path);
        return {
          name: m.id,
          model: m.id,
          modified_at: facts.modified,
          size: facts.size,
          digest: digestOf(m),
          details: detailsOf(m),
        };
      }),
    ),
  };
}

/**
 * `GET /api/ps`: the loaded models, each with its GPU memory (0 where unknown) and unload time.
 * @example
 * await ollamaPs(config.models, await gateway.models(), await supervisor.statuses())
 */
export async function ollamaPs(
  models: readonly ModelConfig[],
  views: readonly GatewayModelView[],
  statuses: readonly ProcessStatus[],
) {
  const loaded = views.filter((v) => v.state === "loaded" || v.state === "unloading");
  return {
    models: await Promise.all(
      loaded.flatMap((v) => {
        const model = models.find((m) => m.id === v.id);
        if (!model) return [];
        return [
          (async () => {
            const facts = await fileFacts(model.path);
            const usage = statuses.find((s) => s.entry.pid === v.pid)?.usage;
            const vram = usage?.gpu_memory_mib === undefined ? 0 : Math.round(usage.gpu_memory_mib * MIB);
            return {
              name: v.id,
              model: v.id,
              size: Math.max(facts.size, vram),
              digest: digestOf(model),
              details: detailsOf(model),
              expires_at: v.unload_at ?? NEVER,
              size_vram: vram,
            };
          })(),
        ];
      }),
    ),
  };
}

/**
 * `POST /api/show`: what corral knows of a configured model.
 * @example
 * await ollamaShow(model) // { modelfile: "FROM /m/q.gguf", parameters: "--ctx-size 4096", … }
 */
export async function ollamaShow(model: ModelConfig) {
  const facts = await fileFacts(model.path);
  return {
    modelfile: `FROM ${model.path}`,
    parameters: model.args.join(" "),
    template: "",
    details: detailsOf(model),
    model_info: { "general.architecture": "llama", "general.file_size": facts.size },
    capabilities: ["completion"],
    modified_at: facts.modified,
  };
}
