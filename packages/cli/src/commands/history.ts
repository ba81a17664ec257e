import { type HistoryEvent, slotKey } from "@corral/core";
import { integerFlag, stringFlag } from "../args.ts";
import type { Command, Outcome } from "../context.ts";
import { style, table, when } from "../render.ts";

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
  },
  json: true,
  examples: ["corral history", "corral history --slot 0 --limit 10 --json"],
  async run(ctx, input) {
    const limit = integerFlag(input, "limit", { min: 1 }, "history") ?? 50;
    const slot = stringFlag(input, "slot");
    const controller = await ctx.controller();
    const events = await controller.history({ limit, ...(slot === undefined ? {} : { slot: slotKey(slot) }) });
    return historyOutcome(events);
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
