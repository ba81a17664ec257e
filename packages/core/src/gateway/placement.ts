import type { CorralConfig, ModelConfig } from "../config/load.ts";
import type { RoomCandidate, RoomPlan } from "../placement/room.ts";
import { slotsOverlap } from "../slots.ts";
import { GatewayError } from "./errors.ts";
import type { ModelState } from "./state.ts";
import type { Located } from "./types.ts";

/**
 * Making room for a model the gateway is about to load: swapping out what holds its slot (or an
 * overlapping one) and evicting the least recently used model beyond `gateway.max_loaded`.
 * Only idle, unpinned models are unloaded; a busy one is waited for, a pinned one refuses. A load
 * still in flight is never unloaded: it holds its slot and counts under `gateway.max_loaded`.
 */

/** What placement needs from the gateway. */
export interface PlacementContext {
  readonly config: CorralConfig;
  readonly stateOf: (modelId: string) => ModelState;
  readonly lastUsed: (at: Located) => number;
  /** the registry as it is now */
  readonly read: () => Promise<readonly Located[]>;
  /** the gateway's loads in flight: never unloaded, and each counts under `gateway.max_loaded` */
  readonly loading: () => readonly InFlightLoad[];
  /** unloads unless the model became busy; true when it did */
  readonly unload: (at: Located, reason: string) => Promise<boolean>;
  /** placement's plan of which loaded models to unload so the load fits (undefined: no GPU figures) */
  readonly planRoom: (
    modelId: string,
    slot: string,
    candidates: readonly RoomCandidate[],
  ) => Promise<RoomPlan | undefined>;
}

/**
 * A load the gateway decided and runs outside its lock: from the decision until the load ends
 * (ready or failed) its slot counts as held and it counts under `gateway.max_loaded`.
 */
export class InFlightLoad {
  readonly modelId: string;
  readonly slot: string;
  /** resolves when the load ended, either way */
  readonly finished: Promise<void>;
  readonly finish: () => void;

  constructor(modelId: string, slot: string) {
    this.modelId = modelId;
    this.slot = slot;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.finished = promise;
    this.finish = resolve;
  }
}

/** What to wait for (a busy model becoming idle, a load in flight ending) before trying again. */
export interface Wait {
  readonly kind: "wait";
  readonly wait: Promise<unknown>;
}

function modelOf(config: CorralConfig, id: string): ModelConfig | undefined {
  return config.models.find((m) => m.id === id);
}

function inFlight(ctx: PlacementContext, id: string): boolean {
  return ctx.loading().some((load) => load.modelId === id);
}

/**
 * Frees the slot `slot` and a place under `max_loaded` for `model`.
 * A load in flight on an overlapping slot holds it: it is waited for, then swapped out as any holder.
 * @returns undefined when the room is made, or what to wait for (a busy model becoming idle, a load ending)
 * @throws GatewayError swap_refused when `gateway.swap` is false or a pinned model is in the way
 * @example
 * const wait = await makeRoom(ctx, model, "0", entries); if (wait) await wait.wait
 */
export async function makeRoom(
  ctx: PlacementContext,
  model: ModelConfig,
  slot: string,
  entries: readonly Located[],
): Promise<Wait | undefined> {
  const overlapping = ctx.loading().find((load) => slotsOverlap(load.slot, slot));
  if (overlapping) return { kind: "wait", wait: overlapping.finished };
  const blockers = entries.filter((at) => slotsOverlap(at.slot, slot));
  for (const at of blockers) refuseSwap(ctx.config, model, slot, at);
  for (const at of blockers) {
    const state = ctx.stateOf(at.entry.model_id);
    if (state.busy) return { kind: "wait", wait: state.idle() };
    const unloaded = await ctx.unload(at, `gateway: swapped out for ${model.id} (slot ${slot})`);
    if (!unloaded) return { kind: "wait", wait: state.idle() };
  }
  return evict(ctx, model);
}

function refuseSwap(config: CorralConfig, model: ModelConfig, slot: string, at: Located): void {
  const holder = `slot ${at.slot} holds ${at.entry.model_id} (pid ${at.entry.pid})`;
  if (!config.gateway.swap) {
    throw new GatewayError(
      "swap_refused",
      `cannot load ${model.id} in slot ${slot}: ${holder} and gateway.swap is false`,
    );
  }
  if (modelOf(config, at.entry.model_id)?.pinned) {
    throw new GatewayError("swap_refused", `cannot load ${model.id} in slot ${slot}: ${holder}, which is pinned`);
  }
}

/** Unloads least recently used idle unpinned models until one more fits under `gateway.max_loaded`. */
async function evict(ctx: PlacementContext, model: ModelConfig): Promise<Wait | undefined> {
  const cap = ctx.config.gateway.max_loaded;
  if (cap === 0) return undefined;
  for (;;) {
    // A load in flight counts as loaded from its decision on (its entry appears once it is spawned).
    const loads = ctx.loading();
    const loaded = (await ctx.read()).filter((at) => !inFlight(ctx, at.entry.model_id));
    if (loaded.length + loads.length < cap) return undefined;
    const idle = loaded
      .filter((at) => !modelOf(ctx.config, at.entry.model_id)?.pinned && !ctx.stateOf(at.entry.model_id).busy)
      .sort((a, b) => ctx.lastUsed(a) - ctx.lastUsed(b));
    const victim = idle[0];
    if (victim) {
      await ctx.unload(victim, `gateway: gateway.max_loaded is ${cap}; least recently used, evicted for ${model.id}`);
      continue;
    }
    const busy = loaded.map((at) => ctx.stateOf(at.entry.model_id)).filter((s) => s.busy);
    const waits = [...busy.map((s) => s.idle()), ...loads.map((load) => load.finished)];
    if (waits.length > 0) return { kind: "wait", wait: Promise.race(waits) };
    throw new GatewayError(
      "swap_refused",
      `cannot load ${model.id}: gateway.max_loaded is ${cap} and every loaded model is pinned`,
    );
  }
}

/**
 * Frees GPU memory for `model` in `slot` the way placement plans it: the least recently used idle,
 * unpinned models of ours that hold memory on that GPU set, only as many as the estimate needs.
 * A plan that cannot make it fit unloads nothing: the load then refuses with placement's numbers.
 * @returns undefined when nothing more is to be done, or what to wait for (a model became busy)
 * @example
 * const wait = (await makeRoom(ctx, model, "0", entries)) ?? (await freeMemory(ctx, model, "0"))
 */
export async function freeMemory(ctx: PlacementContext, model: ModelConfig, slot: string): Promise<Wait | undefined> {
  const loaded = await ctx.read();
  const candidates: RoomCandidate[] = loaded.map((at) => ({
    slot: at.slot,
    pid: at.entry.pid,
    model_id: at.entry.model_id,
    last_used: ctx.lastUsed(at),
    pinned: modelOf(ctx.config, at.entry.model_id)?.pinned ?? false,
    // a model still loading is never unloaded to make room
    busy: ctx.stateOf(at.entry.model_id).busy || inFlight(ctx, at.entry.model_id),
  }));
  const plan = await ctx.planRoom(model.id, slot, candidates);
  if (!plan?.fits) return undefined;
  for (const victim of plan.unload) {
    const at = loaded.find((l) => l.slot === victim.slot && l.entry.pid === victim.pid);
    if (!at) continue;
    const unloaded = await ctx.unload(at, `gateway: frees GPU memory for ${model.id} (slot ${slot})`);
    if (!unloaded) return { kind: "wait", wait: ctx.stateOf(at.entry.model_id).idle() };
  }
  return undefined;
}
