import { type CleanupResult, summarizeCleanup } from "@corral/core";
import { booleanFlag, integerList } from "../args.ts";
import type { Command, Outcome } from "../context.ts";
import { assertMayAsk, confirmOrYes, withSpinner } from "../prompts.ts";
import { stateWord, style, table } from "../render.ts";
import { evidenceOf, pickOrphans } from "./orphans.ts";

/**
 * `corral cleanup [--force] [--include-foreign] [--pid N]… [--yes]`: kills orphaned llama-servers.
 * By default every orphan that is ours or likely ours; foreign ones only with `--include-foreign`.
 * In a terminal (without --yes) the orphans are ticked in a list and the evidence shown first.
 * @example
 * corral cleanup --yes
 */
export const command: Command = {
  name: "cleanup",
  args: [],
  options: {
    force: { type: "boolean", description: "SIGKILL at once instead of SIGTERM first" },
    "include-foreign": { type: "boolean", description: "also kill other users' and other corral homes' servers" },
    pid: {
      type: "string",
      multiple: true,
      value: "PID",
      description: "only these orphans (repeat, or a list such as 1,2)",
    },
  },
  json: true,
  destructive: true,
  examples: ["corral cleanup", "corral cleanup --yes --json", "corral cleanup --pid 4242 --force --yes"],
  async run(ctx, input) {
    assertMayAsk(ctx);
    const force = booleanFlag(input, "force");
    const includeForeign = booleanFlag(input, "include-foreign");
    let pids = integerList(input, "pid", "cleanup");
    const controller = await ctx.controller();
    if (!ctx.yes) {
      const orphans = await controller.findOrphans();
      const candidates = pids ? orphans.filter((o) => pids?.includes(o.pid)) : orphans;
      if (candidates.length === 0)
        return { data: [], lines: ["no orphaned llama-server to clean up"], summary: "nothing to do" };
      if (!includeForeign && candidates.every((o) => o.verdict === "foreign")) {
        const lines = [
          "every orphan found is foreign (another user's or another corral home's): pass --include-foreign to kill them",
        ];
        return { data: [], lines, summary: "nothing to do" };
      }
      pids ??= await pickOrphans(ctx, candidates, "Which orphans should be killed?", includeForeign);
      const chosen = candidates.filter((o) => pids?.includes(o.pid));
      await confirmOrYes(
        ctx,
        `Kill ${chosen.length} process${chosen.length === 1 ? "" : "es"}?`,
        chosen.flatMap(evidenceOf),
      );
    }
    const results = await withSpinner(
      ctx,
      "Killing orphans",
      () => controller.cleanupOrphans({ force, includeForeign, ...(pids ? { pids } : {}) }),
      (r) => summarizeCleanup(r).message,
    );
    return cleanupOutcome(results);
  },
};

/**
 * The per-PID result table, as core reported each PID (`outcome`). Only a kill that was attempted
 * and failed is a failure (exit 1); foreign ones left alone and non-orphans are not.
 * @example
 * cleanupOutcome([{ pid: 4242, verdict: "ours", outcome: "killed", killed: true }]).exitCode // 0
 */
export function cleanupOutcome(results: readonly CleanupResult[]): Outcome {
  if (results.length === 0) return { data: [], lines: ["no orphaned llama-server found"], summary: "nothing to do" };
  const summary = summarizeCleanup(results);
  const word = {
    killed: style.green("killed"),
    "left-foreign": style.yellow("left alone (foreign)"),
    "not-orphan": style.yellow("not an orphan"),
    failed: style.red("failed"),
  } as const;
  const lines = table(results, [
    { header: "PID", cell: (r) => style.bold(String(r.pid)), align: "right" },
    { header: "VERDICT", cell: (r) => stateWord(r.verdict) },
    { header: "RESULT", cell: (r) => word[r.outcome] },
    { header: "WHY", cell: (r) => r.reason ?? "" },
  ]);
  return { data: results, lines, exitCode: summary.ok ? 0 : 1, summary: summary.message };
}
