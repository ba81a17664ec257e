import { type CorralConfig, checkRunnable, type ModelConfig } from "../config/load.ts";
import { InvalidInputError, LoadFailedError, SlotInUseError } from "../errors.ts";
import { checkPlacement, chooseSlot, learnFromLoad, type PlaceContext } from "../placement/check.ts";
import { isGone } from "../process/identity.ts";
import type { Registry } from "../registry/registry.ts";
import { isPortFree } from "../server/ports.ts";
import { slotKey, slotsOverlap } from "../slots.ts";
import { type LoadContext, spawnAndWait } from "./load.ts";
import type { PortChoice } from "./port-choice.ts";
import type { LoadOptions, LoadResult, SwitchResult } from "./types.ts";
import { type UnloadContext, unloadSlot } from "./unload.ts";

/**
 * What a load into a slot needs from its controller: placement, the port reservations, and the
 * contexts of a spawn and of an unload (a `replace` or a switch clears the slot first).
 */
export interface SlotLoadContext {
  readonly registry: Registry;
  readonly config: CorralConfig;
  readonly place: PlaceContext;
  readonly ports: PortChoice;
  readonly load: LoadContext;
  readonly unload: UnloadContext;
}

/** A GPU index or list, or "auto" (placement picks). */
export type GpuChoice = NonNullable<LoadOptions["gpu"]>;

/**
 * The GPU (or GPU set) a load of `model` asks for: `gpu` if given, else the model's own.
 * @throws InvalidInputError where neither says
 * @example
 * requireGpu(model, options.gpu) // "auto", 0, [0, 1] …
 */
export function requireGpu(model: ModelConfig, gpu: LoadOptions["gpu"]): GpuChoice {
  const chosen = gpu ?? model.gpu;
  if (chosen === undefined) throw new InvalidInputError("gpu", `model "${model.id}" has no default gpu: say which GPU`);
  return chosen;
}

/**
 * The slot of a GPU choice: the one placement picks now for `"auto"`, else the GPU set's key.
 * @example
 * await slotOf(place, model, "auto") // "2"
 */
export function slotOf(place: PlaceContext, model: ModelConfig, gpu: GpuChoice): Promise<string> {
  return gpu === "auto" ? chooseSlot(place, model) : Promise.resolve(slotKey(gpu));
}

/**
 * Loads `model` into `slot` (the controller calls it inside the slot's queue): clears the slot
 * (`replace`), refuses a load that does not fit unless forced, reserves a port, spawns and waits
 * for ready, and learns the load's figures. A port it picked and lost to another process's bind
 * is picked again, once.
 * @example
 * const { entry, placement } = await loadInSlot(ctx, model, "0", { replace: true })
 */
export async function loadInSlot(
  ctx: SlotLoadContext,
  model: ModelConfig,
  slot: string,
  options: LoadOptions,
): Promise<LoadResult> {
  const { executable } = await checkRunnable(ctx.config, model);
  await clearSlot(ctx, slot, options.replace ?? false);
  // Refuses a load that does not fit (DoesNotFitError) before anything is spawned, unless forced.
  const placement = await checkPlacement(ctx.place, model, slot, { force: options.force });
  const timed = {
    ...options,
    timeoutMs: options.timeoutMs ?? placement.timeout_ms,
    expectedReadyMs: options.expectedReadyMs ?? placement.expected_ready_ms,
  };
  const picked = (options.port ?? model.port ?? ctx.config.ports.gpu[slot]) === undefined;
  for (let attempt = 1; ; attempt++) {
    const port = await ctx.ports.reserve(slot, model, options.port);
    try {
      const loaded = await spawnAndWait(ctx.load, model, slot, executable, port, timed);
      await learnFromLoad(ctx.place, model, slot, loaded.entry.pid, loaded.readyMs);
      return { ...loaded, placement };
    } catch (error) {
      // Another process (the CLI beside the server, say) took the free port we picked between our
      // check and the server's bind: pick again, once. A port the user chose is not second-guessed.
      const lostRace = error instanceof LoadFailedError && error.exitCode !== undefined && !(await isPortFree(port));
      if (!picked || attempt > 1 || !lostRace) throw error;
    } finally {
      await ctx.ports.release(port);
    }
  }
}

/**
 * Unloads what a slot holds and loads `model` on the same GPUs (and port, unless the model has
 * its own), inside the slot's queue: the model it replaced is the one this switch unloaded.
 * @example
 * const { previous } = await switchInSlot(ctx, "0", model, {})
 */
export async function switchInSlot(
  ctx: SlotLoadContext,
  slot: string,
  model: ModelConfig,
  options: LoadOptions,
): Promise<SwitchResult> {
  const previous = await ctx.registry.get(slot);
  if (previous) await unloadSlot(ctx.unload, slot, { reason: `switching to ${model.id}` });
  const port = options.port ?? model.port ?? previous?.port;
  const loaded = await loadInSlot(ctx, model, slot, {
    ...options,
    port,
    reason: options.reason ?? `switched from ${previous?.model_id ?? "nothing"}`,
  });
  return { ...loaded, previous };
}

/** Prunes dead entries overlapping `slot`; live ones are unloaded with `replace`, else refused (SlotInUseError). */
async function clearSlot(ctx: SlotLoadContext, slot: string, replace: boolean): Promise<void> {
  const overlapping = (await ctx.registry.verifyAll()).filter((v) => slotsOverlap(v.slot, slot));
  for (const held of overlapping) {
    if (isGone(held.probe.state)) {
      await ctx.registry.unregister(held.slot, { pid: held.entry.pid, event: "pruned", reason: held.probe.reason });
    } else if (replace) {
      await unloadSlot(ctx.unload, held.slot, { reason: `replaced by a load in slot ${slot}` });
    } else {
      throw new SlotInUseError(slot, { slot: held.slot, pid: held.entry.pid, model_id: held.entry.model_id });
    }
  }
}
