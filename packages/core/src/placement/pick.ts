import type { MemoryEstimate } from "./estimate.ts";
import { decideFit, type FitDecision } from "./fit.ts";
import type { GpuState } from "./gpu-state.ts";

/** The GPU set `gpu: auto` chose, with the fit that chose it. */
export interface GpuPick {
  readonly gpus: readonly number[];
  readonly fit: FitDecision;
  /** MiB left on the tightest GPU of the set after the load */
  readonly room_mib: number;
}

/**
 * `gpu: auto`: the single GPU where the model fits with the most room, else the smallest set
 * of GPUs (pairs, then triples …) that fits, with the most room on its tightest GPU. A GPU
 * occupied by others is never chosen, nor one without memory figures.
 * @param estimateFor the estimate for a GPU set (layers split evenly over it)
 * @returns undefined when no set fits
 * @example
 * const pick = pickGpus("qwen-7b", (gpus) => estimateMemory(facts, args, gpus), states)
 * pick?.gpus // [1]
 */
export function pickGpus(
  modelId: string,
  estimateFor: (gpus: readonly number[]) => MemoryEstimate,
  states: readonly GpuState[],
  measuredFor: (gpus: readonly number[]) => ReadonlyMap<number, number> = () => new Map(),
): GpuPick | undefined {
  const usable = states.filter((s) => s.state !== "occupied" && s.free_mib !== undefined).map((s) => s.index);
  for (let size = 1; size <= usable.length; size++) {
    let best: GpuPick | undefined;
    for (const gpus of combinations(usable, size)) {
      const fit = decideFit(modelId, estimateFor(gpus), states, measuredFor(gpus));
      if (!fit.fits) continue;
      const room = Math.min(...fit.gpus.map((g) => (g.free_mib ?? 0) - g.need_mib));
      if (!best || room > best.room_mib) best = { gpus, fit, room_mib: room };
    }
    if (best) return best;
  }
  return undefined;
}

function* combinations(items: readonly number[], size: number, from = 0): Generator<number[]> {
  if (size === 0) {
    yield [];
    return;
  }
  for (let i = from; i <= items.length - size; i++) {
    for (const rest of combinations(items, size - 1, i + 1)) yield [items[i] as number, ...rest];
  }
}
