import type { GpuState } from "./gpu-state.ts";

/** A loaded model of this home that could be unloaded to make room. */
export interface RoomCandidate {
  readonly slot: string;
  readonly pid: number;
  readonly model_id: string;
  /** ms epoch of its last request; the least recent goes first */
  readonly last_used: number;
  readonly pinned: boolean;
  readonly busy: boolean;
}

/** Which models to unload so that a load fits, least recently used first, no more than needed. */
export interface RoomPlan {
  readonly unload: readonly RoomCandidate[];
  /** the load fits once `unload` are gone (false: even unloading every candidate is not enough) */
  readonly fits: boolean;
  /** MiB still missing per GPU after the plan (empty when it fits) */
  readonly short_mib: Readonly<Record<string, number>>;
}

/**
 * Plans the gateway's room for an on-demand load: while a GPU of the set has less free memory than
 * the load needs there, the least recently used idle, unpinned model of ours that holds memory on
 * such a GPU is marked for unloading (its memory counted as freed); one that the later choices make
 * unneeded is dropped again, so no more go than the load needs.
 * @param need MiB the load needs per GPU index (from the estimate or the learned figure)
 * @example
 * const plan = planRoom(new Map([[0, 21914]]), states, candidates)
 * for (const c of plan.unload) await controller.unload(c.slot)
 */
export function planRoom(
  need: ReadonlyMap<number, number>,
  states: readonly GpuState[],
  candidates: readonly RoomCandidate[],
): RoomPlan {
  const free = new Map(states.map((s) => [s.index, s.free_mib ?? Number.POSITIVE_INFINITY]));
  const short = () =>
    [...need].filter(([gpu, mib]) => mib > (free.get(gpu) ?? Number.POSITIVE_INFINITY)).map(([gpu]) => gpu);
  const heldBy = (pid: number, gpu: number) =>
    states
      .find((s) => s.index === gpu)
      ?.held.filter((h) => h.pid === pid)
      .reduce((a, h) => a + h.used_mib, 0) ?? 0;
  const order = candidates.filter((c) => !c.pinned && !c.busy).sort((a, b) => a.last_used - b.last_used);
  const unload: RoomCandidate[] = [];
  for (const c of order) {
    const missing = short();
    if (missing.length === 0) break;
    if (!missing.some((gpu) => heldBy(c.pid, gpu) > 0)) continue;
    unload.push(c);
    for (const s of states) free.set(s.index, (free.get(s.index) ?? 0) + heldBy(c.pid, s.index));
  }
  // LRU order can pick a small model before the one that frees enough: drop those not needed after all.
  for (const c of [...unload]) {
    const without = unload.filter((u) => u !== c);
    if (fitsAfter(need, states, without, heldBy)) unload.splice(unload.indexOf(c), 1);
  }
  const left = Object.fromEntries(short().map((gpu) => [String(gpu), (need.get(gpu) ?? 0) - (free.get(gpu) ?? 0)]));
  return { unload, fits: Object.keys(left).length === 0, short_mib: left };
}

function fitsAfter(
  need: ReadonlyMap<number, number>,
  states: readonly GpuState[],
  unload: readonly RoomCandidate[],
  heldBy: (pid: number, gpu: number) => number,
): boolean {
  return [...need].every(([gpu, mib]) => {
    const state = states.find((s) => s.index === gpu);
    const freed = unload.reduce((a, c) => a + heldBy(c.pid, gpu), 0);
    return mib <= (state?.free_mib ?? Number.POSITIVE_INFINITY) + freed;
  });
}
