import { type Controller, findModel, type LoadResult, serverUrl } from "@corral/core";
import { booleanFlag, integerFlag, stringFlag } from "../args.ts";
import type { Command, Context, Outcome } from "../context.ts";
import { answer, pickGpu, pickModel, pickPort, withSpinner } from "../prompts.ts";
import { duration } from "../render.ts";

/**
 * `corral load <model> [--gpu G|auto] [--port N] [--replace] [--force]`: starts a model and waits for `/health`.
 * @example
 * corral load qwen-7b --gpu 0 --port 8081
 */
export const command: Command = {
  name: "load",
  args: [{ name: "model", description: "model id from the configuration (corral ls --models)" }],
  options: {
    gpu: { type: "string", value: "GPU", description: "GPU index, list (0,1) or auto [default: the model's gpu]" },
    port: {
      type: "string",
      value: "N",
      description: "port to listen on [default: the model's, the GPU's, or a free one]",
    },
    replace: { type: "boolean", description: "stop whatever holds the slot first" },
    force: { type: "boolean", description: "load even where placement finds it does not fit in free GPU memory" },
    "timeout-ms": {
      type: "string",
      value: "MS",
      description: "how long to wait for /health [default: timeouts.load_ms]",
    },
  },
  json: true,
  examples: ["corral load qwen-7b", "corral load qwen-7b --gpu 0,1 --port 8090 --replace"],
  async run(ctx, input) {
    const port = integerFlag(input, "port", { min: 1, max: 65535 }, "load");
    const timeoutMs = integerFlag(input, "timeout-ms", { min: 1 }, "load");
    const modelId = await pickModel(ctx, input.args.model, "Which model should load?");
    const controller = await ctx.controller();
    const model = findModel(controller.config, modelId);
    const gpu = await pickGpu(ctx, stringFlag(input, "gpu"), model.gpu);
    const chosenPort = await pickPort(ctx, port, model.port);
    const options = {
      ...(gpu === undefined ? {} : { gpu }),
      ...(chosenPort === undefined ? {} : { port: chosenPort }),
      timeoutMs,
      force: booleanFlag(input, "force"),
    };
    const result = await loadOrReplace(ctx, controller, modelId, options, booleanFlag(input, "replace"));
    return loadOutcome(result, "loaded");
  },
};

interface Target {
  readonly gpu?: string;
  readonly port?: number;
  readonly timeoutMs?: number;
  readonly force?: boolean;
}

/** In a terminal a held slot is a question ("replace it?"), not a dead end. */
async function loadOrReplace(
  ctx: Context,
  controller: Controller,
  modelId: string,
  target: Target,
  replace: boolean,
): Promise<LoadResult> {
  try {
    return await spinLoad(ctx, controller, modelId, target, replace);
  } catch (error) {
    if (replace || !ctx.interactive || (error as { code?: string }).code !== "SLOT_IN_USE") throw error;
    const ui = await ctx.ui();
    const held = (error as { holder: { slot: string; pid: number; model_id: string } }).holder;
    ui.log.warn((error as Error).message);
    const ok = answer(
      ui,
      await ui.confirm({
        message: `Stop ${held.model_id} (pid ${held.pid}, slot ${held.slot}) and load ${modelId} instead?`,
        initialValue: false,
      }),
    );
    if (!ok) throw error;
    return spinLoad(ctx, controller, modelId, target, true);
  }
}

function spinLoad(
  ctx: Context,
  controller: Controller,
  modelId: string,
  target: Target,
  replace: boolean,
): Promise<LoadResult> {
  const where = target.gpu === undefined ? "its default GPU" : `GPU ${target.gpu}`;
  return withSpinner(
    ctx,
    `Loading ${modelId} on ${where}`,
    () => controller.load(modelId, { ...target, replace }),
    (r) => `${modelId} is ready in slot ${r.slot} after ${duration(r.readyMs)}`,
    'the server goes on starting: "corral ls" shows it, "corral unload <slot>" stops it',
  );
}

/**
 * What `load` and `switch` print.
 * @example
 * loadOutcome(result, "loaded").lines // ["loaded qwen in slot 0: pid 4242, http://127.0.0.1:8081, ready in 3.2s"]
 */
export function loadOutcome(result: LoadResult, verb: string): Outcome {
  const { slot, entry, readyMs } = result;
  const url = serverUrl(entry.host ?? "127.0.0.1", entry.port);
  return {
    data: result,
    lines: [
      `${verb} ${entry.model_id} in slot ${slot}: pid ${entry.pid}, ${url}, ready in ${duration(readyMs)}`,
      ...(result.placement ? [`placement: ${result.placement.message}`] : []),
    ],
    summary: `${entry.model_id} is serving on ${url}`,
  };
}
