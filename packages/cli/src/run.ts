import { type ParsedInput, UsageError } from "./args.ts";
import { type Command, type Context, type Outcome, type Ui, writeErr } from "./context.ts";
import { helpHint } from "./help.ts";
import { CancelledError } from "./prompts.ts";
import { json, style } from "./render.ts";

/**
 * The one wrapper every command runs in: intro and outro in a terminal, the outcome as a table
 * or JSON, and every error turned into a message and an exit code (0 ok, 1 failure, 2 usage,
 * 130 cancelled).
 * @example
 * process.exitCode = await runCommand(ls, ctx, input)
 */
export async function runCommand(command: Command, ctx: Context, input: ParsedInput): Promise<number> {
  const ui = ctx.interactive ? await ctx.ui() : undefined;
  if (ui && !ctx.nested) ui.intro(style.bold(` corral ${command.name} `));
  try {
    const outcome = await command.run(ctx, input);
    if (outcome) await show(ctx, ui, outcome);
    else if (ui && !ctx.nested) ui.outro("done");
    return outcome?.exitCode ?? 0;
  } catch (error) {
    return report(ctx, ui, error);
  }
}

async function show(ctx: Context, ui: Ui | undefined, outcome: Outcome): Promise<void> {
  if (ctx.json) return ctx.print(json(outcome.data));
  if (!ui) {
    if (outcome.lines.length > 0) await ctx.print(`${outcome.lines.join("\n")}\n`);
    return;
  }
  if (outcome.lines.length > 0) ui.log.message(outcome.lines.join("\n"));
  // Inside the menu the next question follows at once; a closing line there would only repeat the table.
  if (!ctx.nested) ui.outro(outcome.summary ?? "done");
}

/**
 * Prints an error the way the caller can use it and returns the exit code.
 * @example
 * return report(ctx, undefined, new UsageError("missing <slot>", "unload")) // 2
 */
export async function report(ctx: Context, ui: Ui | undefined, error: unknown): Promise<number> {
  if (error instanceof CancelledError) {
    if (ui && !ctx.nested) ui.cancel(error.message);
    else if (ui) ui.log.warn(error.message);
    else await writeErr(`${error.message}\n`);
    return error.exitCode;
  }
  const usage = error instanceof UsageError;
  const code = codeOf(error);
  const message = messageOf(error);
  if (ctx.json) {
    await writeErr(json({ error: { code: usage ? "USAGE" : code, message } }));
  } else if (ui) {
    ui.log.error(message);
    if (!ctx.nested) ui.outro(style.red(usage ? helpHint(ctx.command) : "failed"));
  } else {
    await writeErr(`corral ${ctx.command}: ${message}\n${usage ? `${helpHint(ctx.command)}\n` : ""}`);
  }
  return usage ? 2 : 1;
}

/** Core's typed errors carry a `code`; anything else is reported as INTERNAL. */
function codeOf(error: unknown): string {
  if (error instanceof AggregateError) return "MULTIPLE";
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "INTERNAL";
}

function messageOf(error: unknown): string {
  if (error instanceof AggregateError) {
    return [error.message, ...error.errors.map((e) => `  - ${messageOf(e)}`)].join("\n");
  }
  if (error instanceof Error) {
    const known = error instanceof UsageError || typeof (error as { code?: unknown }).code === "string";
    // An unexpected error keeps its class name: "TypeError: …" says more than the message alone.
    return known || error.name === "Error" ? error.message : `${error.name}: ${error.message}`;
  }
  return String(error);
}
