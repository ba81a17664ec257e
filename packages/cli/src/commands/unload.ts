import { EntryNotFoundError, slotKey, type UnloadResult } from "@corral/core";
import { booleanFlag, integerFlag } from "../args.ts";
import type { Command, Outcome } from "../context.ts";
import { assertMayAsk, confirmOrYes, pickSlot, withSpinner } from "../prompts.ts";
import { duration } from "../render.ts";

/**
 * `corral unload <slot> [--force] [--yes]`: SIGTERM to the slot's process tree, SIGKILL after the timeout.
 * @example
 * corral unload 0 --yes
 */
export const command: Command = {
  name: "unload",
  args: [{ name: "slot", description: 'the slot to stop: a GPU index or a list such as "0,1"' }],
  options: {
    force: { type: "boolean", description: "SIGKILL at once instead of SIGTERM first" },
    "timeout-ms": { type: "string", value: "MS", description: "SIGTERM → SIGKILL timeout [default: timeouts.stop_ms]" },
  },
  json: true,
  destructive: true,
  examples: ["corral unload 0", "corral unload 0,1 --force --yes"],
  async run(ctx, input) {
    assertMayAsk(ctx);
    const timeoutMs = integerFlag(input, "timeout-ms", { min: 1 }, "unload");
    const force = booleanFlag(input, "force");
    const slot = slotKey(await pickSlot(ctx, input.args.slot, "Which slot should stop?"));
    const controller = await ctx.controller();
    const entry = await controller.entry(slot);
    if (!entry) throw new EntryNotFoundError(slot);
    await confirmOrYes(ctx, `Stop ${entry.model_id} (pid ${entry.pid}, port ${entry.port}) in slot ${slot}?`, [
      `model    ${entry.model_id} (${entry.model_path})`,
      `pid      ${entry.pid}, started ${entry.started_at}`,
      `port     ${entry.port}`,
      `status   ${entry.status}`,
      `signal   ${force ? "SIGKILL at once" : "SIGTERM, then SIGKILL after the timeout"}`,
    ]);
    const result = await withSpinner(
      ctx,
      `Stopping ${entry.model_id} in slot ${slot}`,
      () => controller.unload(slot, { force, ...(timeoutMs === undefined ? {} : { timeoutMs }) }),
      (r) => `stopped ${r.model_id} after ${duration(r.ms)}`,
      `slot ${slot} may be left "stopping": "corral ls" shows it`,
    );
    return unloadOutcome(result);
  },
};

function unloadOutcome(result: UnloadResult): Outcome {
  const how = !result.signalled
    ? `was already gone (${result.reason})`
    : `stopped in ${duration(result.ms)}${result.escalated ? " (SIGKILL after the timeout)" : ""}`;
  const lines = [`slot ${result.slot}: ${result.model_id} (pid ${result.pid}) ${how}`];
  if (!result.portFreed) lines.push("warning: its port still answers");
  if (result.gpuReleased === false) lines.push("warning: its GPU memory was still held when corral stopped waiting");
  return { data: result, lines, summary: `slot ${result.slot} is free` };
}
