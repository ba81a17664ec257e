import { summarizeCleanup } from "@corral/core";
import type { ParsedInput } from "./args.ts";
import { adoptAsking, adoptOutcome } from "./commands/adopt.ts";
import { cleanupOutcome } from "./commands/cleanup.ts";
import { COMMANDS, type CommandName } from "./commands/index.ts";
import { evidenceOf, orphansOutcome, pickOrphans } from "./commands/orphans.ts";
import { type Command, type Context, contextFor, type Outcome, type Session } from "./context.ts";
import { answer, CancelledError, withSpinner } from "./prompts.ts";
import { style } from "./render.ts";
import { runCommand } from "./run.ts";

/**
 * The menu `corral` shows in a terminal when given no command. Each entry runs the same command
 * as its subcommand (through the same wrapper), with every value asked for instead of passed.
 */

interface MenuEntry {
  readonly value: CommandName | "manage-orphans" | "quit";
  readonly label: string;
  readonly hint: string;
  /** flags the menu passes, so screens stay short */
  readonly flags?: Readonly<Record<string, string>>;
}

const MENU: readonly MenuEntry[] = [
  { value: "ls", label: "list", hint: "tracked servers with live status" },
  { value: "load", label: "load", hint: "start a model on a GPU" },
  { value: "unload", label: "unload", hint: "stop the server in a slot" },
  { value: "verify", label: "verify", hint: "check entries against the process table" },
  { value: "manage-orphans", label: "orphans", hint: "untracked llama-servers: kill or adopt" },
  { value: "logs", label: "logs", hint: "the end of a slot's log", flags: { lines: "40" } },
  { value: "history", label: "history", hint: "what happened lately", flags: { limit: "20" } },
  { value: "serve", label: "serve", hint: "run the REST API and web page until Ctrl-C" },
  { value: "quit", label: "quit", hint: "" },
];

/**
 * Shows the menu until the person quits. Ctrl-C at the menu exits 130; inside an action it
 * cancels that action and comes back.
 * @example
 * process.exitCode = await runMenu(createSession({}))
 */
export async function runMenu(session: Session): Promise<number> {
  const ui = await session.ui();
  ui.intro(style.bold(" corral "));
  for (;;) {
    const choice = await ui.select({
      message: "What would you like to do?",
      options: MENU.map(({ value, label, hint }) => ({ value, label, hint })),
    });
    if (ui.isCancel(choice)) {
      ui.cancel("cancelled");
      return 130;
    }
    if (choice === "quit") {
      ui.outro("bye");
      return 0;
    }
    const entry = MENU.find((m) => m.value === choice);
    const input: ParsedInput = { flags: { ...entry?.flags }, args: {} };
    const command = choice === "manage-orphans" ? manageCommand : (await COMMANDS[choice].load()).command;
    await runCommand(command, contextFor(session, command.name, input, true), input);
  }
}

const manageCommand: Command = {
  name: "orphans",
  args: [],
  options: {},
  run: (ctx) => manageOrphans(ctx),
};

/**
 * The menu's orphan screen: list, tick, then kill or adopt after a confirmation showing the evidence.
 * @example
 * await manageOrphans(ctx)
 */
export async function manageOrphans(ctx: Context): Promise<Outcome> {
  const controller = await ctx.controller();
  const orphans = await controller.findOrphans();
  const listed = orphansOutcome(orphans);
  if (orphans.length === 0) return listed;
  const ui = await ctx.ui();
  ui.log.message(listed.lines.join("\n"));
  if (orphans.every((o) => o.verdict === "foreign")) {
    return {
      data: orphans,
      lines: ['every orphan is foreign: "corral cleanup --include-foreign" can kill them'],
      summary: listed.summary,
    };
  }
  const pids = await pickOrphans(ctx, orphans, "Which orphans?", false);
  const action = await pickAction(ctx, pids.length);
  ui.note(
    orphans
      .filter((o) => pids.includes(o.pid))
      .flatMap(evidenceOf)
      .join("\n"),
    "evidence",
  );
  const verb = action === "kill" ? "Kill" : "Adopt";
  const ok = answer(ui, await ui.confirm({ message: `${verb} pid ${pids.join(", ")}?`, initialValue: false }));
  if (!ok) throw new CancelledError(1, "cancelled: nothing was done");
  if (action === "kill") {
    const results = await withSpinner(
      ctx,
      `Killing ${pids.length} orphan${pids.length === 1 ? "" : "s"}`,
      () => controller.cleanupOrphans({ pids }),
      (r) => summarizeCleanup(r).message,
    );
    return cleanupOutcome(results);
  }
  const adopted = [];
  for (const pid of pids) adopted.push(await adoptAsking(ctx, controller, pid));
  return adoptOutcome(adopted);
}

async function pickAction(ctx: Context, count: number): Promise<"kill" | "adopt"> {
  const ui = await ctx.ui();
  const action = answer(
    ui,
    await ui.select({
      message: `What should happen to ${count === 1 ? "it" : `these ${count}`}?`,
      options: [
        { value: "kill" as const, label: "kill", hint: "SIGTERM to the process tree, SIGKILL after the timeout" },
        { value: "adopt" as const, label: "adopt", hint: "track it in the registry as it runs" },
        { value: "nothing" as const, label: "nothing" },
      ],
    }),
  );
  if (action === "nothing") throw new CancelledError(1, "cancelled: nothing was done");
  return action;
}
