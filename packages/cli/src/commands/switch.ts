import { slotKey } from "@corral/core";
import { integerFlag } from "../args.ts";
import type { Command } from "../context.ts";
import { pickModel, pickSlot, withSpinner } from "../prompts.ts";
import { duration } from "../render.ts";
import { loadOutcome } from "./load.ts";

/**
 * `corral switch <slot> <model>`: unloads the slot and loads another model on the same GPUs.
 * @example
 * corral switch 0 llama-3-8b
 */
export const command: Command = {
  name: "switch",
  args: [
    { name: "slot", description: "the slot to switch" },
    { name: "model", description: "model id to load there" },
  ],
  options: {
    port: {
      type: "string",
      value: "N",
      description: "port for the new model [default: the model's, else the old port]",
    },
    "timeout-ms": {
      type: "string",
      value: "MS",
      description: "how long to wait for /health [default: timeouts.load_ms]",
    },
  },
  json: true,
  examples: ["corral switch 0 llama-3-8b"],
  async run(ctx, input) {
    const port = integerFlag(input, "port", { min: 1, max: 65535 }, "switch");
    const timeoutMs = integerFlag(input, "timeout-ms", { min: 1 }, "switch");
    const slot = slotKey(await pickSlot(ctx, input.args.slot, "Which slot should switch?"));
    const modelId = await pickModel(ctx, input.args.model, `Which model should run in slot ${slot}?`);
    const controller = await ctx.controller();
    const result = await withSpinner(
      ctx,
      `Switching slot ${slot} to ${modelId}`,
      () =>
        controller.switch(slot, modelId, {
          ...(port === undefined ? {} : { port }),
          ...(timeoutMs === undefined ? {} : { timeoutMs }),
        }),
      (r) => `${modelId} is ready in slot ${r.slot} after ${duration(r.readyMs)}`,
      `slot ${slot} is mid-switch: "corral ls" shows what runs there`,
    );
    // Core says what it replaced (read inside the slot's queue), so the line names the right model.
    return loadOutcome(result, `switched from ${result.previous?.model_id ?? "nothing"} to`);
  },
};
