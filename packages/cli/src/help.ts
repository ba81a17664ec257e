import { type CommandSpec, type OptionSpec, optionsOf } from "./args.ts";
import { COMMANDS } from "./commands/index.ts";

/**
 * Help text, generated from the same declarations the parser uses.
 */

/**
 * The line that points at a command's help after a usage error.
 * @example
 * helpHint("load") // 'run "corral load --help" for usage'
 */
export function helpHint(command: string): string {
  return command === "" ? 'run "corral --help" for usage' : `run "corral ${command} --help" for usage`;
}

function flagLabel(name: string, option: OptionSpec): string {
  const long = `--${name}${option.type === "string" ? ` ${option.value ?? "VALUE"}` : ""}`;
  return option.short ? `-${option.short}, ${long}` : `    ${long}`;
}

function columns(rows: ReadonlyArray<readonly [string, string]>): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`);
}

/**
 * The usage line of a command.
 * @example
 * usageLine(loadSpec) // "corral load <model> [options]"
 */
export function usageLine(spec: Pick<CommandSpec, "name" | "args" | "usage">): string {
  const args = spec.args.map((a) => `<${a.name}>`).join(" ");
  return ["corral", spec.name, args, spec.usage ?? "", "[options]"].filter(Boolean).join(" ");
}

/**
 * `corral <command> --help`.
 * @example
 * console.log(commandHelp(loadSpec))
 */
export function commandHelp(
  spec: Pick<CommandSpec, "name" | "args" | "options" | "json" | "destructive" | "usage" | "examples">,
): string {
  const summary = (COMMANDS as Record<string, { summary: string }>)[spec.name]?.summary ?? "";
  const out = [`Usage: ${usageLine(spec)}`, "", `  ${summary}`];
  if (spec.args.length > 0) {
    out.push("", "Arguments:", ...columns(spec.args.map((a) => [`<${a.name}>`, a.description] as const)));
  }
  const options = Object.entries(optionsOf(spec)).map(([name, o]) => [flagLabel(name, o), o.description] as const);
  out.push("", "Options:", ...columns(options));
  if (spec.examples?.length) out.push("", "Examples:", ...spec.examples.map((e) => `  ${e}`));
  return `${out.join("\n")}\n`;
}

/**
 * `corral --help`.
 * @example
 * console.log(globalHelp("0.1.0"))
 */
export function globalHelp(version: string): string {
  const commands = columns(Object.entries(COMMANDS).map(([name, c]) => [name, c.summary] as const));
  return [
    `corral ${version}: keeps track of llama.cpp llama-server processes`,
    "",
    "Usage: corral [command] [options]",
    "",
    "  With no command in a terminal, corral shows an interactive menu.",
    "",
    "Commands:",
    ...commands,
    "",
    "Global options:",
    "      --home DIR     corral home (registry, history, logs) [default: $CORRAL_HOME or ~/.local/state/corral]",
    "      --config FILE  configuration file [default: <home>/corral.yaml]",
    "  -h, --help         help (corral <command> --help for a command's options)",
    "  -V, --version      print the version",
    "",
    "Exit codes: 0 success, 1 failure, 2 usage error, 130 cancelled.",
    "Read commands take --json; unload, cleanup and kill need --yes when not in a terminal.",
    "",
  ].join("\n");
}
