import { type HistoryEvent, slotKey } from "@corral/core";
import { booleanFlag, integerFlag, stringFlag } from "../args.ts";
import type { Command, Outcome } from "../context.ts";
import { bytes, duration, style, table, when } from "../render.ts";

/**
 * `corral history [--limit N] [--slot S]`: the newest events of `history.jsonl` (loads, stops,
 * kills, status changes, recoveries), oldest first on screen, newest first in JSON.
 * @example
 * corral history --limit 20
 */
export const command: Command = {
  name: "history",
  args: [],
  options: {
    limit: { type: "string", value: "N", description: "how many events [default: 50]" },
    slot: { type: "string", value: "S", description: "only events of this slot" },
    crashes: { type: "boolean", description: "the crash reports: exit, last log lines, usage, restart decision" },
  },
  json: true,
  examples: ["corral history", "corral history --slot 0 --limit 10 --json", "corral history --crashes"],
  async run(ctx, input) {
    const limit = integerFlag(input, "limit", { min: 1 }, "history") ?? 50;
    const slot = stringFlag(input, "slot");
    const controller = await ctx.controller();
    const crashes = booleanFlag(input, "crashes");
    const events = await controller.history({
      limit: crashes ? (integerFlag(input, "limit", { min: 1 }, "history") ?? 10) : limit,
      ...(slot === undefined ? {} : { slot: slotKey(slot) }),
      ...(crashes ? { event: "crash-report", budgetMs: 2000 } : {}),
    });
    return crashes ? crashesOutcome(events) : historyOutcome(events);
  },
};

function historyOutcome(events: readonly HistoryEvent[]): Outcome {
  if (events.length === 0) return { data: [], lines: ["no history yet"], summary: "no events" };
  const lines = table([...events].reverse(), [
    { header: "TIME", cell: (e) => style.dim(when(e.time)) },
    { header: "EVENT", cell: (e) => style.bold(e.event) },
    { header: "SLOT", cell: (e) => e.slot ?? "-" },
    { header: "PID", cell: (e) => (e.pid === undefined ? "-" : String(e.pid)), align: "right" },
    { header: "MODEL", cell: (e) => e.model_id ?? "-" },
    { header: "CHANGE", cell: (e) => (e.from || e.to ? `${e.from ?? ""} → ${e.to ?? ""}`.trim() : "") },
    { header: "BY", cell: (e) => e.by ?? "" },
    { header: "WHY", cell: (e) => e.reason ?? "" },
  ]);
  return { data: events, lines, summary: `${events.length} event${events.length === 1 ? "" : "s"}` };
}

/** Each crash report in full, oldest first: how it ended, its figures, the restart decision, its last log lines. */
function crashesOutcome(events: readonly HistoryEvent[]): Outcome {
  const reports = events.flatMap((e) => (e.report ? [e.report] : []));
  if (reports.length === 0) return { data: [], lines: ["no crash reports"], summary: "no crashes" };
  const lines = [...reports].reverse().flatMap((r) => {
    const exit = !r.exit.known
      ? (r.exit.note ?? "exit status unknown")
      : r.exit.signal
        ? `signal ${r.exit.signal}`
        : `exit code ${r.exit.code}`;
    const usage = r.usage
      ? `CPU ${r.usage.cpu_percent.toFixed(0)}%, RSS ${bytes(r.usage.rss_bytes)}${r.usage.gpu_memory_mib === undefined ? "" : `, GPU ${r.usage.gpu_memory_mib} MiB`} (at ${when(r.usage.at)})`
      : "no figures seen";
    const busy = r.slots
      ? `${r.slots.slots.filter((s) => s.is_processing).length} of ${r.slots.slots.length} busy`
      : "not seen";
    return [
      style.bold(`${when(r.detected_at)}  slot ${r.slot}  ${r.model_id}  pid ${r.pid}`),
      `  how:      ${style.red(exit)}`,
      `  uptime:   ${duration(r.uptime_ms)}`,
      `  last:     ${usage}`,
      `  /slots:   ${busy}`,
      `  restart:  ${r.restart.reason}`,
      `  log:      ${r.log_file ?? "-"} (last ${r.log_tail.length} lines)`,
      ...r.log_tail.map((l) => style.dim(`    ${l}`)),
      "",
    ];
  });
  return { data: events, lines, summary: `${reports.length} crash report${reports.length === 1 ? "" : "s"}` };
}
