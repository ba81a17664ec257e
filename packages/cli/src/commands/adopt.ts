import type { Controller, ProcessEntry } from "@corral/core";
import { booleanFlag, integerValue, stringFlag } from "../args.ts";
import type { Command, Context, Outcome } from "../context.ts";
import { answer, need } from "../prompts.ts";

/**
 * `corral adopt <pid> [--slot S] [--model ID]`: takes a running llama-server that corral did not
 * start into the registry, so it is listed, health-checked and stopped like any other.
 * @example
 * corral adopt 4242 --slot 1
 */
export const command: Command = {
  name: "adopt",
  args: [{ name: "pid", description: "process id of the llama-server (corral orphans lists candidates)" }],
  options: {
    slot: { type: "string", value: "S", description: "slot to track it in [default: its CUDA_VISIBLE_DEVICES]" },
    model: {
      type: "string",
      value: "ID",
      description: "model id to record [default: the configured model with its path]",
    },
    "include-foreign": { type: "boolean", description: "adopt another user's or another corral home's server" },
  },
  json: true,
  examples: ["corral adopt 4242", "corral adopt 4242 --slot 0,1 --model qwen-7b"],
  async run(ctx, input) {
    const text = await need(
      ctx,
      input.args.pid,
      "<pid>",
      async (ui) => {
        const orphans = (await (await ctx.controller()).findOrphans()).filter((o) => o.verdict !== "foreign");
        if (orphans.length === 0) throw new Error("no orphaned llama-server of ours to adopt");
        const options = orphans.map((o) => ({
          value: String(o.pid),
          label: `pid ${o.pid}`,
          hint: `${o.model_path ?? "?"}, port ${o.port ?? "?"}`,
        }));
        return ui.select({ message: "Which process should corral track?", options });
      },
      "corral orphans lists candidates",
    );
    const pid = integerValue(text, "<pid>", { min: 1 }, "adopt");
    const entry = await adoptAsking(
      ctx,
      await ctx.controller(),
      pid,
      stringFlag(input, "slot"),
      stringFlag(input, "model"),
      {
        includeForeign: booleanFlag(input, "include-foreign"),
      },
    );
    return adoptOutcome([entry]);
  },
};

/**
 * Adopts one PID; in a terminal, a GPU that cannot be read from the process is asked for.
 * @example
 * const entry = await adoptAsking(ctx, controller, 4242)
 */
export async function adoptAsking(
  ctx: Context,
  controller: Controller,
  pid: number,
  slot?: string,
  modelId?: string,
  rule: { readonly includeForeign?: boolean } = {},
): Promise<ProcessEntry> {
  const options = {
    ...(slot === undefined ? {} : { slot }),
    ...(modelId === undefined ? {} : { modelId }),
    ...(rule.includeForeign ? { includeForeign: true } : {}),
  };
  try {
    return await controller.adopt(pid, options);
  } catch (error) {
    const field = (error as { field?: unknown }).field;
    if (slot !== undefined || !ctx.interactive || field !== "slot") throw error;
    const ui = await ctx.ui();
    ui.log.warn((error as Error).message);
    const typed = answer(ui, await ui.text({ message: `Which slot (GPU) does pid ${pid} use?`, initialValue: "0" }));
    return controller.adopt(pid, { ...options, slot: typed.trim() });
  }
}

/**
 * What adopting printed.
 * @example
 * adoptOutcome([entry]).lines // ["now tracking pid 4242 in slot 0: qwen on port 8081 (running)"]
 */
export function adoptOutcome(entries: readonly ProcessEntry[]): Outcome {
  return {
    data: entries.length === 1 ? entries[0] : entries,
    lines: entries.map(
      (e) => `now tracking pid ${e.pid} in slot ${e.gpu_id}: ${e.model_id} on port ${e.port} (${e.status})`,
    ),
    summary: `adopted ${entries.length === 1 ? `pid ${entries[0]?.pid}` : `${entries.length} processes`}`,
  };
}
