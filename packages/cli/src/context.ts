import type { Controller } from "@corral/core";
import { booleanFlag, type CommandSpec, type ParsedInput } from "./args.ts";

/** The clack module, loaded only when a person is at the terminal. */
export type Ui = typeof import("@clack/prompts");

/** What a command hands back for the wrapper to print. */
export interface Outcome {
  /** printed as JSON under `--json` */
  readonly data: unknown;
  /** printed for people */
  readonly lines: readonly string[];
  /** @default 0 */
  readonly exitCode?: number;
  /** the closing line in a terminal @default "done" */
  readonly summary?: string;
}

/** Everything a command needs: how it was called, where, and lazy access to core and clack. */
export interface Context {
  readonly command: string;
  readonly home: string | undefined;
  readonly configFile: string | undefined;
  readonly json: boolean;
  readonly yes: boolean;
  /** prompts are allowed: stdin and stdout are terminals, `CI` is unset and `--json` was not asked */
  readonly interactive: boolean;
  /** running inside the menu: the menu owns intro and outro */
  readonly nested: boolean;
  /** opened on first use and kept for the session */
  controller(): Promise<Controller>;
  /** @clack/prompts, imported on first use */
  ui(): Promise<Ui>;
  /** writes to stdout and waits until it is handed to the OS (so an exit right after loses nothing) */
  print(text: string): Promise<void>;
}

/** A subcommand as corral runs it. */
// biome-ignore lint/suspicious/noConfusingVoidType: a command that has nothing to report just returns
export type Command = CommandSpec<Context, Outcome | void>;

/** State shared by every command of one run (the menu runs several). */
export interface Session {
  readonly home: string | undefined;
  readonly configFile: string | undefined;
  readonly terminal: boolean;
  controller(): Promise<Controller>;
  ui(): Promise<Ui>;
}

/**
 * Whether prompts may be shown: clack waits forever on a stdin that is not a terminal.
 * @default env = process.env; the real stdin and stdout
 * @example
 * canPrompt({ CI: "1" }) // false
 */
export function canPrompt(
  env: Readonly<Record<string, string | undefined>> = process.env,
  stdinIsTTY: boolean = process.stdin.isTTY === true,
  stdoutIsTTY: boolean = process.stdout.isTTY === true,
): boolean {
  return stdinIsTTY && stdoutIsTTY && (env.CI === undefined || env.CI === "");
}

/**
 * Opens a session. Core and clack are imported on first use, so `corral ls --json` never pays for clack.
 * @default terminal = canPrompt()
 * @example
 * const session = createSession({ home: "/tmp/h" })
 */
export function createSession(
  globals: { readonly home?: string; readonly configFile?: string },
  terminal: boolean = canPrompt(),
): Session {
  let controller: Promise<Controller> | undefined;
  let ui: Promise<Ui> | undefined;
  return {
    home: globals.home,
    configFile: globals.configFile,
    terminal,
    controller() {
      controller ??= import("@corral/core").then((core) =>
        core.createController({ home: globals.home, configFile: globals.configFile }),
      );
      return controller;
    },
    ui() {
      ui ??= import("@clack/prompts");
      return ui;
    },
  };
}

/**
 * The context of one command in a session.
 * @default nested = false
 * @example
 * const ctx = contextFor(session, "ls", parseCommand(ls, ["--json"]))
 */
export function contextFor(session: Session, command: string, input: ParsedInput, nested = false): Context {
  const json = booleanFlag(input, "json");
  return {
    command,
    home: session.home,
    configFile: session.configFile,
    json,
    yes: booleanFlag(input, "yes"),
    interactive: session.terminal && !json,
    nested,
    controller: () => session.controller(),
    ui: () => session.ui(),
    print: writeOut,
  };
}

/**
 * Writes to stdout and resolves once the text is handed to the OS.
 * @example
 * await writeOut("hello\n")
 */
export function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (error) => (error ? reject(error) : resolve()));
  });
}

/**
 * Writes to stderr and resolves once the text is handed to the OS.
 * @example
 * await writeErr("corral: something went wrong\n")
 */
export function writeErr(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stderr.write(text, (error) => (error ? reject(error) : resolve()));
  });
}
