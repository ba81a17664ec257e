import type { Controller, KillOutcome } from "@corral/core";
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
    const target = pid !== undefined ? `pid ${pid}` : `"${name}"`;
    await confirmOrYes(ctx, `Kill ${target}?`, await evidence(controller, pid, name));
    const outcomes = await withSpinner(
      ctx,
      `Killing ${target}`,
      async () =>
        pid !== undefined
          ? [await controller.registry.killByPid(pid, options)]
          : controller.registry.killByName(name ?? "", options),
      (r) => `killed ${r.length} process${r.length === 1 ? "" : "es"}`,
    );
    return killOutcome(outcomes);
  },
};

async function evidence(controller: Controller, pid: number | undefined, name: string | undefined): Promise<string[]> {
  if (pid === undefined) {
    const tracked = (await controller.registry.list()).filter(({ entry }) =>
      [entry.model_id, entry.model_name].includes(name ?? ""),
    );
    if (tracked.length === 0) return [`every llama-server process named "${name}"`];
    return tracked.map(({ slot, entry }) => `slot ${slot}: ${entry.model_id}, pid ${entry.pid}, port ${entry.port}`);
  }
  const info = await controller.registry.probe.get(pid);
  if (!info) return [`pid ${pid}: no such process (nothing will be killed)`];
  return [
    `pid ${pid} (parent ${info.ppid}), user ${info.user ?? info.uid ?? "?"}`,
    `  executable ${info.exe ?? info.name}`,
    `  command    ${clip(info.cmdline.join(" "), 100)}`,
  ];
}

function killOutcome(outcomes: readonly KillOutcome[]): Outcome {
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
  return { data: outcomes, lines, summary: `killed ${outcomes.length}` };
}
