import type { GpusView } from "@corral/core";
import type { Command, Outcome } from "../context.ts";
import { style, table } from "../render.ts";

/**
 * `corral gpus`: nvidia-smi's GPUs and the processes holding their memory, each marked with the
 * slot that tracks it (core's one GPU↔slot join, the API's `GET /gpus` shape). Without
 * nvidia-smi, says so (and `available: false` in JSON).
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
    return gpusOutcome(await (await ctx.controller()).gpus());
  },
};

function gpusOutcome(view: GpusView): Outcome {
  if (!view.available) {
    return {
      data: view,
      lines: ["no NVIDIA GPU found (nvidia-smi is missing or failing)"],
      summary: "no GPU figures",
    };
  }
  const mib = (n: number | undefined) => (n === undefined ? "?" : `${n} MiB`);
  const lines = table(view.gpus, [
    { header: "GPU", cell: (g) => style.bold(String(g.index)), align: "right" },
    { header: "NAME", cell: (g) => g.name },
    { header: "USED", cell: (g) => mib(g.memory_used_mib), align: "right" },
    { header: "TOTAL", cell: (g) => mib(g.memory_total_mib), align: "right" },
    { header: "SLOTS", cell: (g) => (g.slots.length ? g.slots.join(" ") : style.dim("-")) },
  ]);
  const processes = view.gpus.flatMap((g) => g.processes.map((p) => ({ ...p, gpu: g.index })));
  if (processes.length > 0) {
    lines.push(
      "",
      ...table(processes, [
        { header: "PID", cell: (p) => String(p.pid), align: "right" },
        { header: "GPU", cell: (p) => String(p.gpu), align: "right" },
        { header: "MEMORY", cell: (p) => mib(p.used_memory_mib), align: "right" },
        { header: "TRACKED", cell: (p) => (p.slot === undefined ? style.dim("not tracked") : `slot ${p.slot}`) },
      ]),
    );
  }
  return { data: view, lines, summary: `${view.gpus.length} GPU${view.gpus.length === 1 ? "" : "s"}` };
}
