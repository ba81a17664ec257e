import pkg from "../package.json" with { type: "json" };
import { booleanFlag, type ParsedInput, parseCommand, splitCommand, stringFlag, UsageError } from "./args.ts";
import { COMMANDS, isCommandName } from "./commands/index.ts";
import { contextFor, createSession, writeErr, writeOut } from "./context.ts";
import { commandHelp, globalHelp, helpHint } from "./help.ts";
import { runCommand } from "./run.ts";

/**
 * corral's version, from the package.
 * @example
 * VERSION // "0.1.0"
 */
export const VERSION: string = pkg.version;

/**
 * Runs corral with these arguments (without the `bun main.ts` part) and returns the exit code.
 * @example
 * process.exitCode = await runCli(["ls", "--json"])
 */
export async function runCli(argv: readonly string[]): Promise<number> {
  const top = splitCommand(argv);
  if (top.command === undefined) return noCommand(top.rest, top);
  if (!isCommandName(top.command)) {
    await writeErr(`corral: unknown command "${top.command}"${suggest(top.command)}\n${helpHint("")}\n`);
    return 2;
  }
  const { command } = await COMMANDS[top.command].load();
  let input: ParsedInput;
  try {
    input = parseCommand(command, top.rest);
  } catch (error) {
    return usageFailure(command.name, error);
  }
  if (booleanFlag(input, "help")) {
    await writeOut(commandHelp(command));
    return 0;
  }
  const session = createSession({ home: stringFlag(input, "home"), configFile: stringFlag(input, "config") });
  return runCommand(command, contextFor(session, command.name, input), input);
}

async function noCommand(rest: readonly string[], top: { version: boolean; help: boolean }): Promise<number> {
  if (top.version) {
    await writeOut(`corral ${VERSION}\n`);
    return 0;
  }
  if (top.help) {
    await writeOut(globalHelp(VERSION));
    return 0;
  }
  let input: ParsedInput;
  try {
    input = parseCommand({ name: "", args: [], options: {} }, rest);
  } catch (error) {
    return usageFailure("", error);
  }
  const session = createSession({ home: stringFlag(input, "home"), configFile: stringFlag(input, "config") });
  if (!session.terminal) {
    await writeErr(`${globalHelp(VERSION)}\ncorral: no command given (the menu needs a terminal)\n`);
    return 2;
  }
  const { runMenu } = await import("./interactive.ts");
  return runMenu(session);
}

async function usageFailure(command: string, error: unknown): Promise<number> {
  if (!(error instanceof UsageError)) throw error;
  await writeErr(`corral${command ? ` ${command}` : ""}: ${error.message}\n${helpHint(command)}\n`);
  return 2;
}

function suggest(word: string): string {
  const close = Object.keys(COMMANDS).find((name) => name.startsWith(word.slice(0, 2)) || word.startsWith(name));
  return close ? ` (did you mean "${close}"?)` : "";
}
