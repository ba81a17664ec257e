import type { GpuSnapshot } from "@corral/core";
import { UsageError } from "./args.ts";
import type { Context, Ui } from "./context.ts";
import { style } from "./render.ts";

/**
 * Prompts that first check their flag: a value given on the command line is used as is; a
 * missing one is asked for in a terminal, and is a usage error naming the flag anywhere else.
 */

/**
 * The person backed out: Ctrl-C or Escape (exit 130), or answered no (exit 1).
 * @example
 * throw new CancelledError(130)
 */
export class CancelledError extends Error {
  readonly exitCode: 1 | 130;
  constructor(exitCode: 1 | 130 = 130, message = "cancelled") {
    super(message);
    this.name = "CancelledError";
    this.exitCode = exitCode;
  }
}

/**
 * A prompt's answer, or CancelledError when it was cancelled.
 * @example
 * const name = answer(ui, await ui.text({ message: "Name?" }))
 */
export function answer<T>(ui: Ui, value: T): Exclude<T, symbol> {
  if (ui.isCancel(value)) throw new CancelledError(130);
  return value as Exclude<T, symbol>;
}

/**
 * The given value, else the prompt's answer in a terminal, else a usage error naming `flag`.
 * @example
 * const model = await need(ctx, input.args.model, "<model>", (ui) => ui.text({ message: "Model?" }), "corral ls --models lists them")
 */
export async function need<T>(
  ctx: Context,
  given: Exclude<T, symbol> | undefined,
  flag: string,
  ask: (ui: Ui) => Promise<T>,
  hint?: string,
): Promise<Exclude<T, symbol>> {
  if (given !== undefined) return given;
  if (!ctx.interactive) throw new UsageError(`missing ${flag}${hint ? ` (${hint})` : ""}`, ctx.command);
  const ui = await ctx.ui();
  const value = await ask(ui);
  if (ui.isCancel(value)) throw new CancelledError(130);
  return value as Exclude<T, symbol>;
}

/**
 * Goes ahead when `--yes` was given; asks in a terminal (showing the evidence first); refuses elsewhere.
 * @example
 * await confirmOrYes(ctx, "Stop qwen (pid 4242) in slot 0?", ["pid 4242", "port 8081"])
 */
export async function confirmOrYes(ctx: Context, question: string, evidence?: readonly string[]): Promise<void> {
  if (ctx.yes) return;
  assertMayAsk(ctx);
  const ui = await ctx.ui();
  if (evidence && evidence.length > 0) ui.note(evidence.join("\n"), "evidence");
  const ok = answer(ui, await ui.confirm({ message: question, initialValue: false }));
  if (!ok) throw new CancelledError(1, "cancelled: nothing was done");
}

/**
 * Refuses a destructive command up front when it has neither `--yes` nor a terminal to ask in,
 * before anything is looked up or touched.
 * @example
 * assertMayAsk(ctx) // throws UsageError under a script without --yes
 */
export function assertMayAsk(ctx: Context): void {
  if (ctx.yes || ctx.interactive) return;
  throw new UsageError("this stops processes: pass --yes to go ahead (there is no terminal to ask in)", ctx.command);
}

/**
 * Picks a tracked slot: the given one, else a choice among the registry's entries.
 * @example
 * const slot = await pickSlot(ctx, input.args.slot, "Which slot should stop?")
 */
export async function pickSlot(ctx: Context, given: string | undefined, question: string): Promise<string> {
  return need(
    ctx,
    given,
    "<slot>",
    async (ui) => {
      const entries = await (await ctx.controller()).entries();
      if (entries.length === 0) throw new Error("no process is tracked");
      return ui.select({
        message: question,
        options: entries.map(({ slot, entry }) => ({
          value: slot,
          label: `slot ${slot}: ${entry.model_id}`,
          hint: `pid ${entry.pid}, port ${entry.port}, ${entry.status}`,
        })),
      });
    },
    "corral ls lists the slots",
  );
}

/**
 * Picks a configured model: the given id, else a choice among the configuration's models.
 * @example
 * const model = await pickModel(ctx, input.args.model)
 */
export async function pickModel(ctx: Context, given: string | undefined, question = "Which model?"): Promise<string> {
  return need(
    ctx,
    given,
    "<model>",
    async (ui) => {
      const models = await (await ctx.controller()).models();
      if (models.length === 0) throw new Error("no models are configured: add some under `models:` in corral.yaml");
      return ui.select({
        message: question,
        options: models.map((m) => ({
          value: m.id,
          label: m.id === m.name ? m.id : `${m.id} (${m.name})`,
          hint: [
            m.gpu === undefined ? "no default gpu" : `gpu ${m.gpu}`,
            m.loaded_in.length ? `loaded in ${m.loaded_in.join(", ")}` : "",
          ]
            .filter(Boolean)
            .join(", "),
        })),
      });
    },
    "corral ls --models lists them",
  );
}

/**
 * Picks the GPU (slot) to load on: the flag, else a choice among nvidia-smi's GPUs, else typed in.
 * Outside a terminal a missing `--gpu` is fine when the model has a default.
 * @example
 * const gpu = await pickGpu(ctx, flags.gpu, model.gpu)
 */
export async function pickGpu(
  ctx: Context,
  given: string | undefined,
  fallback: string | undefined,
): Promise<string | undefined> {
  if (given !== undefined) return given;
  if (!ctx.interactive) {
    if (fallback !== undefined) return undefined;
    throw new UsageError("missing --gpu: the model has no default GPU", ctx.command);
  }
  const ui = await ctx.ui();
  const snapshot: GpuSnapshot | undefined = await (await ctx.controller()).gpuQuery().catch(() => undefined);
  if (snapshot && snapshot.gpus.length > 0) {
    const options = snapshot.gpus.map((g) => ({
      value: String(g.index),
      label: `GPU ${g.index}: ${g.name}`,
      hint: g.memory_total_mib === undefined ? "" : `${g.memory_used_mib ?? "?"} / ${g.memory_total_mib} MiB used`,
    }));
    return answer(ui, await ui.select({ message: "Which GPU?", options, initialValue: fallback ?? options[0]?.value }));
  }
  const typed = answer(
    ui,
    await ui.text({
      message: "Which GPU? (an index, or a list like 0,1)",
      initialValue: fallback ?? "0",
      validate: (v) =>
        /^\s*\d{1,3}(\s*,\s*\d{1,3})*\s*$/.test(v ?? "") ? undefined : "a GPU index such as 0, or a list such as 0,1",
    }),
  );
  return typed.replace(/\s+/g, "");
}

/**
 * Picks the port: the flag, else asked (empty means "let corral choose"), else left to corral.
 * @example
 * const port = await pickPort(ctx, flags.port, model.port)
 */
export async function pickPort(
  ctx: Context,
  given: number | undefined,
  fallback: number | undefined,
): Promise<number | undefined> {
  if (given !== undefined || !ctx.interactive) return given;
  const ui = await ctx.ui();
  const typed = answer(
    ui,
    await ui.text({
      message: "Which port? (empty: corral picks one)",
      placeholder: "auto",
      initialValue: fallback === undefined ? "" : String(fallback),
      validate: (v) => {
        const t = (v ?? "").trim();
        if (t === "") return undefined;
        const n = Number(t);
        return /^\d+$/.test(t) && n >= 1 && n <= 65535 ? undefined : "a port from 1 to 65535, or empty";
      },
    }),
  );
  return typed.trim() === "" ? undefined : Number(typed.trim());
}

/**
 * Runs a slow job under a spinner that shows the elapsed time (in a terminal; silently elsewhere).
 * Ctrl-C during the job exits 130 with a "cancelled" line and `leftBehind` (what keeps going without us).
 * @example
 * const result = await withSpinner(ctx, "Loading qwen on GPU 0", () => controller.load("qwen"), (r) => `ready in ${r.readyMs} ms`)
 */
export async function withSpinner<T>(
  ctx: Context,
  message: string,
  job: () => Promise<T>,
  done: (result: T) => string,
  leftBehind?: string,
): Promise<T> {
  if (!ctx.interactive) return job();
  const ui = await ctx.ui();
  // In raw mode Ctrl-C is a keypress, not SIGINT: clack's spinner exits the process (code 0) on it.
  // This hook runs after clack's own, turning that exit into a clean "cancelled" with code 130.
  const onExit = () => {
    process.exitCode = 130;
    process.stdout.write(`${style.red("■")}  cancelled${leftBehind ? `: ${leftBehind}` : ""}\n`);
  };
  const spin = ui.spinner({ indicator: "timer", cancelMessage: "interrupted", onCancel: () => process.exit(130) });
  spin.start(message);
  process.on("exit", onExit);
  try {
    const result = await job();
    spin.stop(done(result));
    return result;
  } catch (error) {
    spin.error(`${message}: failed`);
    throw error;
  } finally {
    process.off("exit", onExit);
  }
}
