import { type ParseArgsOptionsConfig, parseArgs } from "node:util";

/**
 * Command-line parsing on `node:util`'s parseArgs: no dependency, strict about unknown flags.
 * Commands declare their flags once ({@link CommandSpec}); help text is generated from the same
 * declaration so it cannot drift from what is accepted.
 */

/**
 * A mistake in how corral was called: exits 2 and points at `--help`.
 * @example
 * throw new UsageError("missing <model>: name the model to load", "load")
 */
export class UsageError extends Error {
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

/** One flag of a command. */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  /** may be given several times @default false */
  readonly multiple?: boolean;
  /** placeholder shown in help, e.g. "N" @default "VALUE" */
  readonly value?: string;
  readonly description: string;
}

/** One positional argument of a command. */
export interface ArgumentSpec {
  readonly name: string;
  readonly description: string;
}

/** What a command receives once its arguments are parsed. */
export interface ParsedInput {
  readonly flags: Readonly<Record<string, string | boolean | string[] | undefined>>;
  /** positionals by name; absent ones are undefined (a prompt or a usage error decides) */
  readonly args: Readonly<Record<string, string | undefined>>;
}

/** The declaration of one subcommand: its help, its flags and how it runs. */
export interface CommandSpec<Ctx = unknown, Out = unknown> {
  readonly name: string;
  readonly args: readonly ArgumentSpec[];
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** accepts `--json` @default false */
  readonly json?: boolean;
  /** stops processes: needs `--yes` (or a confirmation in a terminal) @default false */
  readonly destructive?: boolean;
  /** extra usage text, e.g. "(--pid N | --name NAME)" in place of the generated flags */
  readonly usage?: string;
  readonly examples?: readonly string[];
  run(ctx: Ctx, input: ParsedInput): Promise<Out>;
}

/**
 * Flags every command accepts.
 * @example
 * Object.keys(GLOBAL_OPTIONS) // ["home", "config", "help"]
 */
export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  home: {
    type: "string",
    value: "DIR",
    description: "corral home (registry, history, logs) [default: $CORRAL_HOME or ~/.local/state/corral]",
  },
  config: { type: "string", value: "FILE", description: "configuration file [default: <home>/corral.yaml]" },
  help: { type: "boolean", short: "h", description: "show this help" },
};

const JSON_OPTION: OptionSpec = { type: "boolean", description: "print machine-readable JSON" };
const YES_OPTION: OptionSpec = {
  type: "boolean",
  short: "y",
  description: "do it without asking (required when not in a terminal)",
};

/**
 * The flags a command accepts in all: its own, the global ones, and `--json`/`--yes` where declared.
 * @default json and yes only where the spec sets `json` / `destructive`
 * @example
 * Object.keys(optionsOf({ options: {}, destructive: true })) // ["yes", "home", "config", "help"]
 */
export function optionsOf(spec: Pick<CommandSpec, "options" | "json" | "destructive">): Record<string, OptionSpec> {
  return {
    ...spec.options,
    ...(spec.json ? { json: JSON_OPTION } : {}),
    ...(spec.destructive ? { yes: YES_OPTION } : {}),
    ...GLOBAL_OPTIONS,
  };
}

/** The top-level split: global flags, the command name, and everything else for that command. */
export interface TopLevel {
  readonly command: string | undefined;
  /** every argument except the command name, in order */
  readonly rest: readonly string[];
  readonly version: boolean;
  readonly help: boolean;
}

/**
 * Finds the command name: the first argument that is neither a flag nor a global flag's value,
 * so `corral --home /x ls` and `corral ls --home /x` mean the same.
 * @example
 * splitCommand(["--home", "/x", "ls", "--json"]) // { command: "ls", rest: ["--home", "/x", "--json"], … }
 */
export function splitCommand(argv: readonly string[]): TopLevel {
  const valued = new Set(["--home", "--config"]);
  let index = -1;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") break;
    if (valued.has(arg)) {
      i++;
      continue;
    }
    if (!arg.startsWith("-")) {
      index = i;
      break;
    }
  }
  const before = index === -1 ? argv : argv.slice(0, index);
  return {
    command: index === -1 ? undefined : argv[index],
    rest: index === -1 ? [...argv] : [...argv.slice(0, index), ...argv.slice(index + 1)],
    version: before.includes("--version") || before.includes("-V"),
    help: before.includes("--help") || before.includes("-h"),
  };
}

/**
 * Parses a command's arguments strictly: unknown flags, missing flag values and extra
 * positionals are usage errors that name the culprit.
 * @example
 * parseCommand(loadSpec, ["qwen", "--gpu", "0"]) // { flags: { gpu: "0" }, args: { model: "qwen" } }
 */
export function parseCommand(
  spec: Pick<CommandSpec, "name" | "args" | "options" | "json" | "destructive">,
  argv: readonly string[],
): ParsedInput {
  const config: ParseArgsOptionsConfig = {};
  for (const [name, option] of Object.entries(optionsOf(spec))) {
    config[name] = {
      type: option.type,
      ...(option.short ? { short: option.short } : {}),
      ...(option.multiple ? { multiple: true } : {}),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options: config, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(cleanParseMessage((error as Error).message), spec.name);
  }
  if (parsed.positionals.length > spec.args.length) {
    const extra = parsed.positionals
      .slice(spec.args.length)
      .map((p) => `"${p}"`)
      .join(", ");
    throw new UsageError(`unexpected argument ${extra}`, spec.name);
  }
  const args: Record<string, string | undefined> = {};
  spec.args.forEach((arg, i) => {
    args[arg.name] = parsed.positionals[i];
  });
  return { flags: parsed.values as ParsedInput["flags"], args };
}

/** parseArgs explains how to pass "-x" as a positional, which is noise for almost everyone. */
function cleanParseMessage(message: string): string {
  return message.replace(/\. To specify a positional argument.*$/s, "").replace(/^Unknown option/, "unknown option");
}

/**
 * A string flag's value, or undefined.
 * @example
 * stringFlag(input, "gpu") // "0,1"
 */
export function stringFlag(input: ParsedInput, name: string): string | undefined {
  const value = input.flags[name];
  if (Array.isArray(value)) return value.at(-1);
  return typeof value === "string" ? value : undefined;
}

/**
 * A boolean flag: true only when given.
 * @example
 * booleanFlag(input, "force") // false
 */
export function booleanFlag(input: ParsedInput, name: string): boolean {
  return input.flags[name] === true;
}

/**
 * Reads a whole number, refusing anything else with a usage error that names where it came from.
 * @default bounds = { min: 0 }
 * @example
 * integerValue("8081", "--port", { min: 1, max: 65535 }) // 8081
 */
export function integerValue(
  text: string,
  what: string,
  bounds: { readonly min?: number; readonly max?: number } = {},
  command?: string,
): number {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = bounds;
  const value = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`${what} must be a whole number ${range}, got "${text}"`, command);
  }
  return value;
}

/**
 * A whole-number flag, or undefined when not given.
 * @example
 * integerFlag(input, "lines", { min: 1 }) // 100
 */
export function integerFlag(
  input: ParsedInput,
  name: string,
  bounds: { readonly min?: number; readonly max?: number } = {},
  command?: string,
): number | undefined {
  const text = stringFlag(input, name);
  return text === undefined ? undefined : integerValue(text, `--${name}`, bounds, command);
}

/**
 * Every value of a repeatable whole-number flag (`--pid 1 --pid 2`, or `--pid 1,2`).
 * @example
 * integerList(input, "pid") // [4242, 4343]
 */
export function integerList(input: ParsedInput, name: string, command?: string): number[] | undefined {
  const raw = input.flags[name];
  if (raw === undefined) return undefined;
  const texts = (Array.isArray(raw) ? raw : [String(raw)]).flatMap((t) => t.split(",")).filter((t) => t !== "");
  return texts.map((t) => integerValue(t, `--${name}`, { min: 1 }, command));
}
