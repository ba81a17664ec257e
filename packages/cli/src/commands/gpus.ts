import type { GpuSnapshot, ProcessEntry } from "@corral/core";
import type { Command, Outcome } from "../context.ts";
import { style, table } from "../render.ts";

/**
 * `corral gpus`: nvidia-smi's GPUs and the processes holding their memory, each marked with the
 * slot that tracks it. Without nvidia-smi, says so (and `available: false` in JSON).
 * @example
 * corral gpus --json
 */
export const command: Command = {
  name: "gpus",
  args: [],
  options: {},
  json: true,
  examples: ["corral gpus", "corral gpus --json"],
  async run(ctx) {
    const controller = await ctx.controller();
    const [snapshot, entries] = await Promise.all([controller.gpuQuery(), controller.registry.list()]);
    return gpusOutcome(snapshot, entries);
  },
};

function gpusOutcome(
  snapshot: GpuSnapshot | undefined,
  entries: ReadonlyArray<{ slot: string; entry: ProcessEntry }>,
): Outcome {
  if (!snapshot) {
    return {
      data: { available: false, gpus: [], processes: [] },
      lines: ["no NVIDIA GPU found (nvidia-smi is missing or failing)"],
      summary: "no GPU figures",
    };
  }
  const mib = (n: number | undefined) => (n === undefined ? "?" : `${n} MiB`);
  const lines = table(snapshot.gpus, [
    { header: "GPU", cell: (g) => style.bold(String(g.index)), align: "right" },
    { header: "NAME", cell: (g) => g.name },
    { header: "USED", cell: (g) => mib(g.memory_used_mib), align: "right" },
    { header: "TOTAL", cell: (g) => mib(g.memory_total_mib), align: "right" },
  ]);
  const bySlot = new Map(entries.map(({ slot, entry }) => [entry.pid, { slot, entry }]));
  if (snapshot.processes.length > 0) {
    lines.push(
      "",
      ...table(snapshot.processes, [
        { header: "PID", cell: (p) => String(p.pid), align: "right" },
        { header: "GPU", cell: (p) => (p.gpu_index === undefined ? "?" : String(p.gpu_index)), align: "right" },
        { header: "MEMORY", cell: (p) => mib(p.used_memory_mib), align: "right" },
        { header: "TRACKED", cell: (p) => trackedAs(bySlot.get(p.pid)) },
      ]),
    );
  }
  return {
    data: { available: true, ...snapshot },
    lines,
    summary: `${snapshot.gpus.length} GPU${snapshot.gpus.length === 1 ? "" : "s"}`,
  };
}

function trackedAs(held: { slot: string; entry: ProcessEntry } | undefined): string {
  return held ? `slot ${held.slot} (${held.entry.model_id})` : style.dim("not tracked");
}
