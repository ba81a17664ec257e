// The programmatic surface of @corral/cli: run corral in-process, or reuse its parsing and rendering.
export { runCli, VERSION } from "./cli.ts";
export { parseCommand, splitCommand, UsageError, type CommandSpec, type OptionSpec, type ParsedInput } from "./args.ts";
export { canPrompt, type Context, type Outcome } from "./context.ts";
export { colorEnabled, table, duration, bytes } from "./render.ts";
