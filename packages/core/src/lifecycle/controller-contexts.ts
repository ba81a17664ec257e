import { join } from "node:path";
import type { CorralConfig } from "../config/load.ts";
import type { PlaceContext } from "../placement/check.ts";
import { FactsCache } from "../placement/facts.ts";
import { LearnedFigures } from "../placement/learned.ts";
import type { Registry } from "../registry/registry.ts";
import type { GpuSnapshot } from "../server/gpu.ts";
import type { ControllerHooks } from "./load.ts";
import type { SlotLoadContext } from "./load-slot.ts";
import { PortChoice } from "./port-choice.ts";

/** What a controller builds its helpers' contexts from. */
export interface ControllerParts {
  readonly registry: Registry;
  /** the configuration in force now: every context reads it through a getter, so a reload reaches them all */
  readonly config: () => CorralConfig;
  readonly now: () => number;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly hooks: ControllerHooks;
  /** uncached GPU figures (placement and unload poll them) */
  readonly gpuFresh: () => Promise<GpuSnapshot | undefined>;
}

/**
 * The contexts of placement, loads and unloads of one controller, each reading the configuration
 * live, with the learned figures and GGUF facts kept in the home.
 * @example
 * const { place, slots } = controllerContexts({ registry, config: () => cell.current, now, env, hooks, gpuFresh })
 */
export function controllerContexts(parts: ControllerParts): { place: PlaceContext; slots: SlotLoadContext } {
  const { registry, config } = parts;
  const place: PlaceContext = {
    get config() {
      return config();
    },
    homeId: registry.homeId,
    probe: registry.probe,
    entries: () => registry.list(),
    history: (limit) => registry.history.read({ limit }),
    gpuQuery: parts.gpuFresh,
    learned: new LearnedFigures({ file: join(registry.paths.home, "learned.json") }),
    facts: new FactsCache({ file: join(registry.paths.home, "facts.json") }),
  };
  const ports = new PortChoice({
    registry,
    get config() {
      return config();
    },
  });
  const unload = {
    registry,
    get config() {
      return config();
    },
    gpuQuery: parts.gpuFresh,
  };
  const load = {
    registry,
    get config() {
      return config();
    },
    now: parts.now,
    env: parts.env,
    hooks: parts.hooks,
  };
  const slots: SlotLoadContext = {
    registry,
    get config() {
      return config();
    },
    place,
    ports,
    load,
    unload,
  };
  return { place, slots };
}
