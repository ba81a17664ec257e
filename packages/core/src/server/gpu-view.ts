import { entryGpus } from "../slots.ts";
import type { ProcessEntry } from "../store/schema.ts";
import type { GpuSnapshot, GpusView } from "./views.ts";

/**
 * The one join of GPUs and tracked slots: each GPU with the slots whose `gpu_id` includes it,
 * and each process on it marked with the slot that tracks its PID. No snapshot (no nvidia-smi)
 * gives `{ available: false, gpus: [] }`.
 * @example
 * const [snapshot, entries] = await Promise.all([controller.gpuQuery(), controller.registry.list()])
 * gpusView(snapshot, entries) // { available: true, taken_at, gpus: [{ index: 0, slots: ["0"], processes: […] }] }
 */
export function gpusView(
  snapshot: GpuSnapshot | undefined,
  entries: ReadonlyArray<{ readonly slot: string; readonly entry: Pick<ProcessEntry, "pid" | "gpu_id"> }>,
): GpusView {
  if (!snapshot) return { available: false, gpus: [] };
  const slotOfPid = new Map(entries.map(({ slot, entry }) => [entry.pid, slot]));
  const gpus = snapshot.gpus.map((g) => ({
    index: g.index,
    name: g.name,
    ...(g.memory_total_mib !== undefined ? { memory_total_mib: g.memory_total_mib } : {}),
    ...(g.memory_used_mib !== undefined ? { memory_used_mib: g.memory_used_mib } : {}),
    ...(g.uuid !== undefined ? { uuid: g.uuid } : {}),
    slots: entries.filter(({ entry }) => entryGpus(entry).includes(g.index)).map(({ slot }) => slot),
    processes: snapshot.processes
      .filter((p) => p.gpu_index === g.index)
      .map((p) => {
        const slot = slotOfPid.get(p.pid);
        return { pid: p.pid, used_memory_mib: p.used_memory_mib, ...(slot !== undefined ? { slot } : {}) };
      }),
  }));
  return { available: true, taken_at: snapshot.taken_at, gpus };
}
