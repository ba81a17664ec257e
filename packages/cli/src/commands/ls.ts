import { join } from "node:path";
import { type Controller, type GatewayModelView, type ModelView, type ProcessStatus, publicEntry } from "@corral/core";
import { booleanFlag } from "../args.ts";
import type { Command, Outcome } from "../context.ts";
import { bytes, duration, stateWord, style, table } from "../render.ts";
import { gatewayViews } from "../server-client.ts";

/**
 * `corral ls`: every tracked llama-server with its identity check, health, uptime and usage
 * (`controller.status()`), or with `--models` the configured models with the gateway's state: where
 * each is loaded, requests in flight and served, the time until its idle unload and the speed of
 * its last request (live figures from the running `corral serve` of this home where it answers).
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
    const first = firstRunLines(controller);
    if (booleanFlag(input, "models")) {
      const outcome = modelsOutcome(await controller.models(), await gatewayViews(controller));
      return first.length ? { ...outcome, lines: first } : outcome;
    }
    const outcome = statusOutcome(await controller.status());
    return first.length && outcome.lines.length === 1 ? { ...outcome, lines: [...outcome.lines, ...first] } : outcome;
  },
};

/** With no model configured: where the configuration is (or would be) and the command that writes one. */
function firstRunLines(controller: Controller): string[] {
  if (controller.config.models.length > 0) return [];
  const file = controller.config.file ?? join(controller.paths.home, "corral.yaml");
  const state = controller.config.file ? "lists no models" : "does not exist yet";
  return [
    `no models are configured: ${file} ${state}`,
    `run ${style.bold("corral init")} to find llama-server and your GGUF files and write it (or list models under \`models:\`)`,
  ];
}

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
    // stale: it runs with settings a reload changed since (until restarted).
    { header: "STATUS", cell: (r) => stateWord(r.entry.status) + (r.entry.stale ? style.yellow(" stale") : "") },
    { header: "PROCESS", cell: (r) => stateWord(r.state) },
    { header: "HEALTH", cell: (r) => stateWord(r.health?.state) },
    { header: "UPTIME", cell: (r) => duration(r.uptime_ms), align: "right" },
    { header: "CPU", cell: (r) => (r.usage ? `${r.usage.cpu_percent.toFixed(0)}%` : "-"), align: "right" },
    { header: "MEM", cell: (r) => bytes(r.usage?.rss_bytes), align: "right" },
    { header: "GPU MEM", cell: (r) => gpuMemory(r), align: "right" },
  ]);
  const problems = rows.filter((r) => r.state !== "running").map((r) => `slot ${r.slot}: ${r.state_reason}`);
  for (const r of rows) if (r.entry.stale) problems.push(`slot ${r.slot} is stale: ${r.entry.stale}`);
  const noun = rows.length === 1 ? "process" : "processes";
  // A server's API key stays in the registry file: never printed.
  const data = rows.map((r) => ({ ...r, entry: publicEntry(r.entry) }));
  return { data, lines: [...lines, ...problems.map((p) => style.yellow(p))], summary: `${rows.length} ${noun}` };
}

function gpuMemory(row: ProcessStatus): string {
  const mib = row.usage?.gpu_memory_mib;
  return mib === undefined ? "-" : `${mib} MiB`;
}

function modelState(state: GatewayModelView["state"]): string {
  if (state === "loaded") return style.green(state);
  return state === "unloaded" ? state : style.yellow(state);
}

function untilUnload(view: GatewayModelView | undefined): string {
  if (!view?.unload_at) return view?.state === "loaded" ? (view.ttl_s > 0 ? "busy" : "never") : "-";
  return duration(Math.max(0, Date.parse(view.unload_at) - Date.now()));
}

function modelsOutcome(models: readonly ModelView[], views: readonly GatewayModelView[] = []): Outcome {
  if (models.length === 0) {
    return {
      data: [],
      lines: ["no models are configured (add them under `models:` in corral.yaml)"],
      summary: "no models",
    };
  }
  const rows = models.map((m) => ({ ...m, gateway: views.find((v) => v.id === m.id) }));
  const lines = table(rows, [
    { header: "ID", cell: (m) => style.bold(m.id) },
    { header: "STATE", cell: (m) => modelState(m.gateway?.state ?? (m.loaded_in.length ? "loaded" : "unloaded")) },
    { header: "GPU", cell: (m) => m.gpu ?? "-" },
    { header: "PARAMS", cell: (m) => m.parameter_count || "-", align: "right" },
    { header: "QUANT", cell: (m) => m.quantization || "-" },
    { header: "PORT", cell: (m) => (m.port === undefined ? "auto" : String(m.port)), align: "right" },
    { header: "LOADED IN", cell: (m) => (m.loaded_in.length ? m.loaded_in.join(" ") : "-") },
    { header: "IN FLIGHT", cell: (m) => String(m.gateway?.in_flight ?? 0), align: "right" },
    { header: "SERVED", cell: (m) => String(m.gateway?.served ?? 0), align: "right" },
    { header: "UNLOAD IN", cell: (m) => untilUnload(m.gateway), align: "right" },
    {
      header: "TOK/S",
      cell: (m) => (m.gateway?.tokens_per_second === undefined ? "-" : m.gateway.tokens_per_second.toFixed(0)),
      align: "right",
    },
    { header: "ALIASES", cell: (m) => m.gateway?.aliases.join(" ") || "-" },
    { header: "PATH", cell: (m) => m.path },
  ]);
  return { data: rows, lines, summary: `${models.length} model${models.length === 1 ? "" : "s"}` };
}
