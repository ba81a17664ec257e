import type { ModelView, ProcessStatus } from "@corral/core";
import { booleanFlag } from "../args.ts";
import type { Command, Outcome } from "../context.ts";
import { bytes, duration, stateWord, style, table } from "../render.ts";

/**
 * `corral ls`: every tracked llama-server with its identity check, health, uptime and usage
 * (`controller.status()`), or with `--models` the configured models and where each is loaded.
 * @example
 * corral ls --json
 */
export const command: Command = {
  name: "ls",
  args: [],
  options: {
    models: { type: "boolean", description: "list the configured models instead of the running servers" },
  },
  json: true,
  examples: ["corral ls", "corral ls --json | jq '.[].entry.port'", "corral ls --models"],
  async run(ctx, input) {
    const controller = await ctx.controller();
    if (booleanFlag(input, "models")) return modelsOutcome(await controller.models());
    return statusOutcome(await controller.status());
  },
};

/**
 * The status table (also used by the menu).
 * @example
 * statusOutcome(await controller.status()).lines
 */
export function statusOutcome(rows: readonly ProcessStatus[]): Outcome {
  if (rows.length === 0) return { data: [], lines: ["no llama-server is tracked"], summary: "nothing loaded" };
  const lines = table(rows, [
    { header: "SLOT", cell: (r) => style.bold(r.slot) },
    { header: "MODEL", cell: (r) => r.entry.model_id },
    { header: "PID", cell: (r) => String(r.entry.pid), align: "right" },
    { header: "PORT", cell: (r) => String(r.entry.port), align: "right" },
    { header: "STATUS", cell: (r) => stateWord(r.entry.status) },
    { header: "PROCESS", cell: (r) => stateWord(r.state) },
    { header: "HEALTH", cell: (r) => stateWord(r.health?.state) },
    { header: "UPTIME", cell: (r) => duration(r.uptime_ms), align: "right" },
    { header: "CPU", cell: (r) => (r.usage ? `${r.usage.cpu_percent.toFixed(0)}%` : "-"), align: "right" },
    { header: "MEM", cell: (r) => bytes(r.usage?.rss_bytes), align: "right" },
    { header: "GPU MEM", cell: (r) => gpuMemory(r), align: "right" },
  ]);
  const problems = rows.filter((r) => r.state !== "running").map((r) => `slot ${r.slot}: ${r.state_reason}`);
  const noun = rows.length === 1 ? "process" : "processes";
  return { data: rows, lines: [...lines, ...problems.map((p) => style.yellow(p))], summary: `${rows.length} ${noun}` };
}

function gpuMemory(row: ProcessStatus): string {
  const mib = row.usage?.gpu_memory_mib;
  return mib === undefined ? "-" : `${mib} MiB`;
}

function modelsOutcome(models: readonly ModelView[]): Outcome {
  if (models.length === 0) {
    return {
      data: [],
      lines: ["no models are configured (add them under `models:` in corral.yaml)"],
      summary: "no models",
    };
  }
  const lines = table(models, [
    { header: "ID", cell: (m) => style.bold(m.id) },
    { header: "NAME", cell: (m) => m.name },
    { header: "GPU", cell: (m) => m.gpu ?? "-" },
    { header: "PORT", cell: (m) => (m.port === undefined ? "auto" : String(m.port)), align: "right" },
    { header: "LOADED IN", cell: (m) => (m.loaded_in.length ? m.loaded_in.join(" ") : "-") },
    { header: "PATH", cell: (m) => m.path },
  ]);
  return { data: models, lines, summary: `${models.length} model${models.length === 1 ? "" : "s"}` };
}
