// The programmatic surface of @corral/cli: run corral in-process, or reuse its parsing and rendering.

export { type CommandSpec, type OptionSpec, type ParsedInput, parseCommand, splitCommand, UsageError } from "./args.ts";
export { runCli, VERSION } from "./cli.ts";
export { type Context, canPrompt, type Outcome } from "./context.ts";
export { bytes, colorEnabled, duration, table } from "./render.ts";
