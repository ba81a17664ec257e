import type { CorralConfig } from "../config/load.ts";
import { type FactsCache, modelLabels } from "../placement/facts.ts";
import type { Registry } from "../registry/registry.ts";
import type { ModelView } from "./types.ts";

/** What {@link modelViews} reads: the configured models, the entries, and the cache of GGUF facts. */
export interface ModelViewsContext {
  readonly config: CorralConfig;
  readonly registry: Pick<Registry, "list">;
  readonly facts: FactsCache | undefined;
}

/**
 * The configured models, each with the slots it is loaded in and the labels read from its GGUF.
 * @example
 * await modelViews({ config, registry, facts: new FactsCache({ file }) })
 */
export async function modelViews(ctx: ModelViewsContext): Promise<ModelView[]> {
  const entries = await ctx.registry.list();
  const { models } = ctx.config;
  const labels = await Promise.all(models.map((m) => modelLabels(m.path, ctx.facts)));
  return models.map((m, i) => ({
    id: m.id,
    name: m.name,
    path: m.path,
    gpu: m.gpu,
    port: m.port,
    loaded_in: entries.filter(({ entry }) => entry.model_id === m.id).map(({ slot }) => slot),
    ...labels[i],
  }));
}
