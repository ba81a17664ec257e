import type { KillOutcome, KillPlan } from "@corral/core";
import { booleanFlag, integerFlag, integerValue, stringFlag, UsageError } from "../args.ts";
import type { Command, Outcome } from "../context.ts";
import { assertMayAsk, confirmOrYes, need, withSpinner } from "../prompts.ts";
import { clip, duration, table } from "../render.ts";

/**
 * `corral kill (--pid N | --name NAME) [--force] [--yes]`: kills a llama-server by PID, or every
 * tracked model / llama-server process with that name. Anything that is not a llama-server is refused.
 * @example
 * corral kill --pid 4242 --yes
 */
export const command: Command = {
  name: "kill",
  args: [],
  usage: "(--pid N | --name NAME)",
  options: {
    pid: { type: "string", value: "N", description: "the process id to kill" },
    name: {
      type: "string",
      value: "NAME",
      description: "a tracked model id or name, or a llama-server executable name",
    },
    force: { type: "boolean", description: "SIGKILL at once instead of SIGTERM first" },
    "include-foreign": { type: "boolean", description: "allow killing another user's llama-server" },
  },
  json: true,
  destructive: true,
  examples: ["corral kill --pid 4242 --yes", "corral kill --name qwen-7b --force --yes"],
  async run(ctx, input) {
    assertMayAsk(ctx);
    let pid = integerFlag(input, "pid", { min: 1 }, "kill");
    let name = stringFlag(input, "name");
    if (pid !== undefined && name !== undefined) throw new UsageError("give --pid or --name, not both", "kill");
    if (pid === undefined && name === undefined) {
      const typed = await need(ctx, undefined, "--pid or --name", (ui) =>
        ui.text({ message: "Which process? (a pid or a name)" }),
      );
      if (/^\d+$/.test(typed.trim())) pid = integerValue(typed, "pid", { min: 1 }, "kill");
      else name = typed.trim();
    }
    const controller = await ctx.controller();
    const options = { force: booleanFlag(input, "force"), includeForeign: booleanFlag(input, "include-foreign") };
    // Core decides what will be killed; the confirmation shows exactly that, and exactly that is killed.
    const plan = await controller.resolveKillTargets(pid !== undefined ? { pid } : { name: name ?? "" }, options);
    const what = plan.targets.length === 1 ? `pid ${plan.targets[0]?.pid}` : `${plan.targets.length} processes`;
    await confirmOrYes(ctx, `Kill ${what}?`, evidence(plan));
    const outcomes = await withSpinner(
      ctx,
      `Killing ${what}`,
      () => controller.kill({ targets: plan.targets }, options),
      (r) => `killed ${r.length} process${r.length === 1 ? "" : "es"}`,
    );
    return killOutcome(outcomes, plan);
  },
};

/** What the confirmation shows: each target as core resolved it, and what it leaves alone. */
function evidence(plan: KillPlan): string[] {
  return [
    ...plan.targets.flatMap((t) => [t.description, `  command    ${clip(t.command_line.join(" "), 100)}`]),
    ...plan.skipped.map((s) => `left alone: pid ${s.pid} (${s.reason})`),
  ];
}

function killOutcome(outcomes: readonly KillOutcome[], plan: KillPlan): Outcome {
  const lines = table(outcomes, [
    { header: "PID", cell: (o) => String(o.pid), align: "right" },
    { header: "SLOT", cell: (o) => o.slot ?? "-" },
    {
      header: "RESULT",
      cell: (o) =>
        o.signalled ? `${o.tree?.signal ?? "signalled"}${o.tree?.escalated ? " (after timeout)" : ""}` : "already gone",
    },
    { header: "TOOK", cell: (o) => duration(o.tree?.ms), align: "right" },
  ]);
  for (const s of plan.skipped) lines.push(`left alone: pid ${s.pid} (${s.reason})`);
  return { data: outcomes, lines, summary: `killed ${outcomes.length}` };
}
