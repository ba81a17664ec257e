import type { CorralConfig, ModelConfig } from "../config/load.ts";
import { InvalidInputError } from "../errors.ts";
import type { ProcessProbe } from "../process/types.ts";
import type { GpuSnapshot } from "../server/gpu.ts";
import { parseSlot } from "../slots.ts";
import type { HistoryEvent, ProcessEntry } from "../store/schema.ts";
import { parseMemoryArgs } from "./args.ts";
import { DoesNotFitError } from "./errors.ts";
import { estimateMemory } from "./estimate.ts";
import { type FactsCache, type ModelFacts, readModelFacts } from "./facts.ts";
import type { GpuFit } from "./fit.ts";
import { decideFit } from "./fit.ts";
import { classifyGpus, type GpuState } from "./gpu-state.ts";
import { LEARNED_MARGIN, type LearnedFigure, type LearnedFigures, learnedKey, loadTimeoutFrom } from "./learned.ts";
import { pickGpus } from "./pick.ts";
import { planRoom, type RoomCandidate, type RoomPlan } from "./room.ts";
import type { PlacementReport } from "./views.ts";

/** What placement needs from the controller. */
export interface PlaceContext {
  readonly config: CorralConfig;
  readonly homeId: string;
  readonly probe: Pick<ProcessProbe, "get" | "environ">;
  readonly entries: () => Promise<readonly { readonly slot: string; readonly entry: ProcessEntry }[]>;
  readonly history: (limit: number) => Promise<readonly HistoryEvent[]>;
  /** GPU figures, uncached: polled while memory is being released */
  readonly gpuQuery: () => Promise<GpuSnapshot | undefined>;
  readonly learned: LearnedFigures;
  /** @default the module's shared cache */
  readonly facts?: FactsCache;
  /** @default 250 */
  readonly releasePollMs?: number;
}

export type { PlacementReport };

const MIB = 2 ** 20;
const gib = (mib: number) => (mib / 1024).toFixed(1);

/**
 * Checks a load before anything is spawned: waits (bounded by `gpu_release_wait_ms`) for memory
 * that servers of this home just stopped still hold on the GPU set, then compares the estimate
 * (or the figures an earlier load measured, plus a margin) with the free memory of each GPU.
 * @throws DoesNotFitError when it does not fit and `force` is not set
 * @example
 * const report = await checkPlacement(ctx, model, "0", { force: false })
 * if (!report.checked) console.log(report.message) // "no GPU figures (nvidia-smi): no placement check"
 */
export async function checkPlacement(
  ctx: PlaceContext,
  model: ModelConfig,
  slot: string,
  options: { readonly force?: boolean } = {},
): Promise<PlacementReport> {
  const gpus = parseSlot(slot);
  const learned = await ctx.learned.get(learnedKey(model.id, model.path, model.args, slot)).catch(() => undefined);
  const timing = timingOf(learned, ctx.config);
  const first = await ctx.gpuQuery();
  if (!first) return { checked: false, slot, message: "no GPU figures (nvidia-smi): no placement check", ...timing };
  const facts = await factsOf(ctx, model);
  if (typeof facts === "string") return { checked: false, slot, message: facts, ...timing };
  const { snapshot, waited } = await waitForReleases(ctx, gpus, first);
  const states = await classify(ctx, snapshot);
  const measured = measuredMap(learned);
  const estimate = estimateMemory(facts, parseMemoryArgs(model.args), gpus);
  const fit = decideFit(model.id, estimate, states, measured);
  const source: "estimate" | "measured" = measured.size > 0 ? "measured" : "estimate";
  const base = { checked: true, slot, source, gpus: [...fit.gpus], ...(waited ? { waited } : {}), ...timing };
  if (fit.fits) return { ...base, fits: true, message: fitsMessage(fit.gpus, source) };
  if (!options.force) throw new DoesNotFitError({ slot, modelId: model.id, detail: fit.message, fit: fit.gpus });
  return { ...base, fits: false, forced: true, message: `loaded anyway (force): ${fit.message}` };
}

/**
 * `gpu: auto`: the slot where the model fits with the most room (see {@link pickGpus}).
 * @throws InvalidInputError without GPU figures or a readable model; DoesNotFitError when nothing fits
 * @example
 * const slot = await chooseSlot(ctx, model) // "1"
 */
export async function chooseSlot(ctx: PlaceContext, model: ModelConfig): Promise<string> {
  const snapshot = await ctx.gpuQuery();
  if (!snapshot)
    throw new InvalidInputError("gpu", `gpu auto needs GPU figures, and nvidia-smi gave none: say which GPU`);
  const facts = await factsOf(ctx, model);
  if (typeof facts === "string") throw new InvalidInputError("gpu", `gpu auto: ${facts}`);
  const states = await classify(ctx, snapshot);
  const args = parseMemoryArgs(model.args);
  const learned = new Map<string, LearnedFigure | undefined>();
  for (const gpus of [...states.map((s) => [s.index])]) {
    const key = learnedKey(model.id, model.path, model.args, gpus.join(","));
    learned.set(gpus.join(","), await ctx.learned.get(key).catch(() => undefined));
  }
  const pick = pickGpus(
    model.id,
    (gpus) => estimateMemory(facts, args, gpus),
    states,
    (gpus) => measuredMap(learned.get(gpus.join(","))),
  );
  if (pick) return pick.gpus.join(",");
  const each = states.map((s) => {
    if (s.state === "occupied") return `GPU ${s.index} is occupied by others (${gib(s.others_mib)} GiB)`;
    const need =
      (estimateMemory(facts, args, [s.index]).devices.find((d) => d.device === s.index)?.total_bytes ?? 0) / MIB;
    return `GPU ${s.index} has ${gib(s.free_mib ?? 0)} GiB free of the ${gib(need)} GiB it needs there`;
  });
  const fit = states.map((s) => ({
    gpu: s.index,
    need_mib: 0,
    fits: false,
    state: s.state,
    ...(s.free_mib !== undefined ? { free_mib: s.free_mib } : {}),
  }));
  throw new DoesNotFitError({
    slot: "auto",
    modelId: model.id,
    detail: `no GPU or GPU set fits ${model.id}: ${each.join("; ")}`,
    fit,
  });
}

function timingOf(learned: LearnedFigure | undefined, config: CorralConfig) {
  if (!learned) return {};
  return { timeout_ms: loadTimeoutFrom(learned, config.timeouts.load_ms), expected_ready_ms: learned.ready_ms };
}

function measuredMap(learned: LearnedFigure | undefined): Map<number, number> {
  const map = new Map<number, number>();
  for (const [gpu, mib] of Object.entries(learned?.peak_mib ?? {}))
    map.set(Number(gpu), Math.round(mib * (1 + LEARNED_MARGIN)));
  return map;
}

async function factsOf(ctx: PlaceContext, model: ModelConfig): Promise<ModelFacts | string> {
  try {
    return await readModelFacts(model.path, { cache: ctx.facts });
  } catch (error) {
    return `could not read the GGUF header of ${model.path} (${(error as Error).message}): no placement check`;
  }
}

async function classify(ctx: PlaceContext, snapshot: GpuSnapshot): Promise<GpuState[]> {
  return classifyGpus(snapshot, {
    entries: await ctx.entries(),
    homeId: ctx.homeId,
    probe: ctx.probe,
    occupiedMb: ctx.config.gpu.occupied_mb,
  });
}

function fitsMessage(gpus: readonly GpuFit[], source: "estimate" | "measured"): string {
  const parts = gpus.map((g) =>
    g.free_mib === undefined
      ? `GPU ${g.gpu} reports no memory figures (not checked)`
      : `GPU ${g.gpu} needs about ${gib(g.need_mib)} GiB of ${gib(g.free_mib)} GiB free`,
  );
  return `fits (${source === "measured" ? "as measured at its last load, plus a margin" : "estimated"}): ${parts.join(", ")}`;
}

/**
 * A PID this home recorded (in its recent history) that is gone now but whose memory nvidia-smi
 * still shows on the GPU set: a server stopped a moment ago whose memory the driver is still
 * releasing. The load waits for it, bounded by `gpu_release_wait_ms`, so it never starts into it.
 */
async function waitForReleases(
  ctx: PlaceContext,
  gpus: readonly number[],
  first: GpuSnapshot,
): Promise<{ snapshot: GpuSnapshot; waited?: PlacementReport["waited"] }> {
  const recorded = new Set((await ctx.history(200)).flatMap((e) => (e.pid ? [e.pid] : [])));
  const lingering = async (s: GpuSnapshot) => {
    const held = s.processes.filter(
      (p) => p.gpu_index !== undefined && gpus.includes(p.gpu_index) && recorded.has(p.pid),
    );
    const gone = await Promise.all(held.map(async (p) => ((await ctx.probe.get(p.pid))?.state ?? "Z") === "Z"));
    return [...new Set(held.filter((_, i) => gone[i]).map((p) => p.pid))];
  };
  let pids = await lingering(first);
  if (pids.length === 0) return { snapshot: first };
  const waitingFor = pids;
  const started = performance.now();
  const bound = ctx.config.gpu_release_wait_ms;
  let snapshot = first;
  while (pids.length > 0 && performance.now() - started < bound) {
    await Bun.sleep(Math.min(ctx.releasePollMs ?? 250, Math.max(1, bound - (performance.now() - started))));
    snapshot = (await ctx.gpuQuery()) ?? snapshot;
    pids = await lingering(snapshot);
  }
  const ms = Math.round(performance.now() - started);
  return { snapshot, waited: { pids: waitingFor, ms, released: pids.length === 0 } };
}

/**
 * Records what a load measured, for the next estimate and load timeout: the GPU memory its
 * server holds per GPU now that it is ready (nvidia-smi), and spawn → ready. Never fails the load.
 * @example
 * await learnFromLoad(ctx, model, "0", entry.pid, readyMs)
 */
export async function learnFromLoad(
  ctx: Pick<PlaceContext, "gpuQuery" | "learned">,
  model: ModelConfig,
  slot: string,
  pid: number,
  readyMs: number,
): Promise<void> {
  try {
    const snapshot = await ctx.gpuQuery();
    const peak = heldBy(snapshot, pid);
    await ctx.learned.record(learnedKey(model.id, model.path, model.args, slot), { peak_mib: peak, ready_ms: readyMs });
  } catch {
    // Learned figures are a hint for the next load; this one succeeded whatever happens here.
  }
}

/** MiB a PID holds per GPU index in a snapshot (several entries of one PID on one GPU add up). */
function heldBy(snapshot: GpuSnapshot | undefined, pid: number): Record<string, number> {
  const held: Record<string, number> = {};
  for (const p of snapshot?.processes ?? []) {
    if (p.pid === pid && p.gpu_index !== undefined) held[p.gpu_index] = (held[p.gpu_index] ?? 0) + p.used_memory_mib;
  }
  return held;
}

/**
 * Keeps each running server's learned peak true while it runs: where nvidia-smi now shows a
 * server of this home holding more memory on a GPU than its last load recorded, the figure is
 * raised (see {@link LearnedFigures.raisePeaks}). Called with each status pass; never fails it.
 * @example
 * await learnPeaks(ctx, rows.map((r) => ({ slot: r.slot, entry: r.entry })), snapshot)
 */
export async function learnPeaks(
  ctx: Pick<PlaceContext, "config" | "learned">,
  running: readonly { readonly slot: string; readonly entry: { readonly pid: number; readonly model_id: string } }[],
  snapshot: GpuSnapshot | undefined,
): Promise<void> {
  if (!snapshot) return;
  const seen = new Map<string, Record<string, number>>();
  for (const { slot, entry } of running) {
    const model = ctx.config.models.find((m) => m.id === entry.model_id);
    if (!model) continue;
    const held = heldBy(snapshot, entry.pid);
    if (Object.keys(held).length > 0) seen.set(learnedKey(model.id, model.path, model.args, slot), held);
  }
  if (seen.size > 0) await ctx.learned.raisePeaks(seen).catch(() => []);
}

/**
 * The gateway's room for an on-demand load: which least recently used idle, unpinned models of
 * this home to unload from the GPU set so that the load fits (see {@link planRoom}); undefined
 * where placement cannot tell (no GPU figures, an unreadable GGUF), and then nothing need go.
 * @example
 * const plan = await roomFor(ctx, model, "0", candidates)
 * for (const c of plan?.unload ?? []) await controller.unload(c.slot)
 */
export async function roomFor(
  ctx: PlaceContext,
  model: ModelConfig,
  slot: string,
  candidates: readonly RoomCandidate[],
): Promise<RoomPlan | undefined> {
  const snapshot = await ctx.gpuQuery();
  const facts = snapshot ? await factsOf(ctx, model) : undefined;
  if (!snapshot || facts === undefined || typeof facts === "string") return undefined;
  const gpus = parseSlot(slot);
  const learned = await ctx.learned.get(learnedKey(model.id, model.path, model.args, slot)).catch(() => undefined);
  const measured = measuredMap(learned);
  const need = new Map<number, number>();
  for (const d of estimateMemory(facts, parseMemoryArgs(model.args), gpus).devices) {
    if (d.device !== "cpu") need.set(d.device, measured.get(d.device) ?? d.total_bytes / MIB);
  }
  return planRoom(need, await classify(ctx, snapshot), candidates);
}
