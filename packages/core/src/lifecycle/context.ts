import type { CorralConfig } from "../config/load.ts";
import type { Registry } from "../registry/registry.ts";
import type { GpuSnapshot } from "../server/gpu.ts";

/**
 * What the controller's helpers (status, recover, adopt, kill) need: the registry, the
 * configuration, the clock and the GPU figures. They take this, not the Controller class, so
 * imports point one way (controller → helpers) and a helper can be called with a plain object.
 * @example
 * await collectStatus({ registry, config, now: Date.now, gpuQuery: async () => undefined })
 */
export interface LifecycleContext {
  readonly registry: Registry;
  readonly config: CorralConfig;
  readonly now: () => number;
  readonly gpuQuery: () => Promise<GpuSnapshot | undefined>;
}
