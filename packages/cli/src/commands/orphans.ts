import type { Orphan } from "@corral/core";
import type { Command, Context, Outcome } from "../context.ts";
import { answer } from "../prompts.ts";
import { clip, stateWord, style, table, when } from "../render.ts";

/**
 * `corral orphans`: llama-servers the registry does not track, with a verdict (ours,
 * likely-ours, foreign) and the evidence behind it. Changes nothing; `cleanup` and `adopt` act.
 * @example
 * corral orphans --json
 */
export const command: Command = {
  name: "orphans",
  args: [],
  options: {},
  json: true,
  examples: ["corral orphans", "corral orphans --json | jq '.[] | select(.verdict == \"ours\") | .pid'"],
  async run(ctx) {
    const orphans = await (await ctx.controller()).findOrphans();
    return orphansOutcome(orphans);
  },
};

/**
 * The orphan table.
 * @example
 * orphansOutcome(await controller.findOrphans()).lines
 */
export function orphansOutcome(orphans: readonly Orphan[]): Outcome {
  if (orphans.length === 0) return { data: [], lines: ["no orphaned llama-server found"], summary: "no orphans" };
  const lines = table(orphans, [
    { header: "PID", cell: (o) => style.bold(String(o.pid)), align: "right" },
    { header: "VERDICT", cell: (o) => stateWord(o.verdict) },
    { header: "USER", cell: (o) => o.user ?? (o.uid === undefined ? "?" : String(o.uid)) },
    { header: "PORT", cell: (o) => (o.port === undefined ? "-" : String(o.port)), align: "right" },
    { header: "STARTED", cell: (o) => when(o.started_at) },
    { header: "MODEL", cell: (o) => clip(o.model_path ?? "-", 40) },
    { header: "WHY", cell: (o) => o.reasons.join("; ") },
  ]);
  return { data: orphans, lines, summary: `${orphans.length} orphan${orphans.length === 1 ? "" : "s"}` };
}

/**
 * The evidence shown before anything is done to an orphan.
 * @example
 * evidenceOf(orphan) // ["pid 4242 (parent 1), user me", "executable /usr/bin/llama-server", …]
 */
export function evidenceOf(o: Orphan): string[] {
  return [
    `pid ${o.pid} (parent ${o.ppid}), user ${o.user ?? o.uid ?? "?"}, verdict ${o.verdict}`,
    `  executable ${o.executable ?? "?"}`,
    `  command    ${clip(o.command_line.join(" "), 100)}`,
    `  model      ${o.model_path ?? "?"}, port ${o.port ?? "?"}, started ${when(o.started_at)}`,
    `  marker     ${o.marker?.home_id ? `home ${o.marker.home_id}` : o.marker_readable ? "none" : "environment unreadable"}`,
    ...o.reasons.map((r) => `  - ${r}`),
  ];
}

/**
 * Lets a person tick orphans. Only those carrying this home's marker start ticked: a "likely
 * ours" server may be someone's hand-started run, so it takes a deliberate tick; foreign ones
 * cannot be ticked unless allowed.
 * @example
 * const pids = await pickOrphans(ctx, orphans, "Which should go?", false)
 */
export async function pickOrphans(
  ctx: Context,
  orphans: readonly Orphan[],
  question: string,
  includeForeign: boolean,
): Promise<number[]> {
  const ui = await ctx.ui();
  const options = orphans.map((o) => ({
    value: o.pid,
    label: `pid ${o.pid}  ${o.model_path ?? o.command_line[0] ?? "?"}${o.port === undefined ? "" : ` :${o.port}`}`,
    hint:
      o.verdict === "foreign" && !includeForeign
        ? "foreign (pass --include-foreign to pick it)"
        : `${o.verdict}, user ${o.user ?? o.uid ?? "?"}`,
    disabled: o.verdict === "foreign" && !includeForeign,
  }));
  const initialValues = orphans.filter((o) => o.verdict === "ours").map((o) => o.pid);
  return answer(ui, await ui.multiselect({ message: question, options, initialValues, required: true }));
}
