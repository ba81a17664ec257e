import { slotKey } from "@corral/core";
import { booleanFlag, integerFlag } from "../args.ts";
import type { Command, Context } from "../context.ts";
import { pickSlot } from "../prompts.ts";
import { json } from "../render.ts";

/**
 * `corral logs <slot> [--lines N] [--follow]`: the end of a slot's llama-server log (the live
 * entry's, else the newest that slot had), and with `--follow` every new line until Ctrl-C.
 * @example
 * corral logs 0 --lines 50 --follow
 */
export const command: Command = {
  name: "logs",
  args: [{ name: "slot", description: "the slot whose log to show" }],
  options: {
    lines: { type: "string", short: "n", value: "N", description: "how many lines from the end [default: 100]" },
    follow: { type: "boolean", short: "f", description: "keep printing new lines until Ctrl-C" },
  },
  json: true,
  examples: ["corral logs 0", "corral logs 0 -n 20 -f", "corral logs 0 --json"],
  async run(ctx, input) {
    const count = integerFlag(input, "lines", { min: 1 }, "logs") ?? 100;
    const slot = slotKey(await pickSlot(ctx, input.args.slot, "Whose log?"));
    const controller = await ctx.controller();
    if (!booleanFlag(input, "follow")) {
      const lines = await controller.logs(slot, count);
      return {
        data: { slot, lines },
        lines: lines.length ? lines : [`slot ${slot} has no log lines`],
        summary: `last ${lines.length} lines of slot ${slot}`,
      };
    }
    // One read gives the tail and then every new line: nothing written in between is lost.
    await follow(ctx, (onLines, signal) => controller.followLogs(slot, onLines, signal, { tail: count }));
    return { data: undefined, lines: [], summary: "stopped following" };
  },
};

/** Under --json every log line is printed as one JSON string per line (NDJSON), so a reader can stream it. */
function printLines(ctx: Context, lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return Promise.resolve();
  return ctx.print(ctx.json ? `${lines.map((l) => json(l).trimEnd()).join("\n")}\n` : `${lines.join("\n")}\n`);
}

async function follow(
  ctx: Context,
  start: (onLines: (lines: string[]) => void, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const stop = new AbortController();
  const quit = () => stop.abort();
  // Ctrl-C is the normal way to stop following: it ends the command, it does not fail it.
  process.once("SIGINT", quit);
  process.once("SIGTERM", quit);
  let writing = Promise.resolve();
  try {
    await start((lines) => {
      writing = writing.then(() => printLines(ctx, lines));
    }, stop.signal);
    await writing;
  } finally {
    process.off("SIGINT", quit);
    process.off("SIGTERM", quit);
  }
}
