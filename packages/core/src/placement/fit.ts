import type { DeviceEstimate, MemoryEstimate } from "./estimate.ts";
import { describeHolder, type GpuState } from "./gpu-state.ts";
import type { GpuFit } from "./views.ts";

export type { GpuFit };

/** Whether a load fits, GPU by GPU, with the sentence that says why not. */
export interface FitDecision {
  readonly fits: boolean;
  readonly gpus: readonly GpuFit[];
  /** "qwen-32b needs about 21.4 GiB on GPU 0 (weights 18.1, …); 9.2 GiB free: …"; "" when it fits */
  readonly message: string;
}

const MIB = 2 ** 20;
const gib = (mib: number) => (mib / 1024).toFixed(1);

/**
 * Compares what each GPU of the set needs with what it has free, and says it the way a person
 * would read it: "qwen-32b needs about 21.4 GiB on GPU 0 (weights 18.1, KV 2.6 at ctx 8192,
 * compute 0.7); 9.2 GiB free: 14.3 GiB held by pid 4242 (python train.py, not corral's)".
 * A GPU the snapshot does not list, or one without memory figures, is not checked. `measured`
 * (GPU index → MiB, margin included) replaces the estimate where an earlier load measured it.
 * @example
 * const fit = decideFit("qwen-32b", estimate, await classifyGpus(snapshot, ctx))
 * if (!fit.fits) throw new Error(fit.message)
 */
export function decideFit(
  modelId: string,
  estimate: MemoryEstimate,
  states: readonly GpuState[],
  measured: ReadonlyMap<number, number> = new Map(),
): FitDecision {
  const gpus: GpuFit[] = [];
  const lines: string[] = [];
  for (const d of estimate.devices) {
    if (d.device === "cpu") continue;
    const state = states.find((s) => s.index === d.device);
    const learned = measured.get(d.device);
    const need = learned ?? d.total_bytes / MIB;
    if (state?.free_mib === undefined) {
      gpus.push({ gpu: d.device, need_mib: Math.ceil(need), fits: true, state: state?.state ?? "unknown" });
      continue;
    }
    const fits = need <= state.free_mib;
    gpus.push({ gpu: d.device, need_mib: Math.ceil(need), free_mib: state.free_mib, fits, state: state.state });
    if (!fits) lines.push(shortfall(modelId, d, estimate, need, state, learned !== undefined));
  }
  return { fits: lines.length === 0, gpus, message: lines.join("; and ") };
}

function shortfall(
  modelId: string,
  d: DeviceEstimate,
  estimate: MemoryEstimate,
  needMib: number,
  state: GpuState,
  learned: boolean,
): string {
  const parts = learned
    ? `measured at its last load, plus a margin`
    : `weights ${gib(d.weights_bytes / MIB)}, KV ${gib(d.kv_bytes / MIB)} at ctx ${estimate.ctx}, compute ${gib(d.compute_bytes / MIB)}`;
  const holders = [...state.held].sort((a, b) => b.used_mib - a.used_mib);
  const held = holders.map((h) => `${gib(h.used_mib)} GiB held by ${describeHolder(h)}`).join(", ");
  return `${modelId} needs about ${gib(needMib)} GiB on GPU ${d.device} (${parts}); ${gib(state.free_mib ?? 0)} GiB free${held ? `: ${held}` : ""}`;
}
