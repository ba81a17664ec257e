import type { Command } from "../context.ts";

/** One entry of the command table: what `corral --help` says, and how to load the command. */
export interface CommandEntry {
  readonly summary: string;
  /** imported only when run, so one command's dependencies never slow another's start */
  readonly load: () => Promise<{ readonly command: Command }>;
}

/**
 * Every subcommand, in the order `corral --help` lists them.
 * @example
 * const { command } = await COMMANDS.ls.load()
 */
export const COMMANDS = {
  init: {
    summary: "write a corral.yaml from the llama-server and GGUF models found on this machine",
    load: () => import("./init.ts"),
  },
  ls: {
    summary: "list tracked llama-servers with live status (--models: configured models)",
    load: () => import("./ls.ts"),
  },
  load: { summary: "start a model on a GPU and wait until it is ready", load: () => import("./load.ts") },
  unload: { summary: "stop the server in a slot", load: () => import("./unload.ts") },
  switch: { summary: "replace the model in a slot with another", load: () => import("./switch.ts") },
  verify: { summary: "check every tracked entry against the process table", load: () => import("./verify.ts") },
  orphans: {
    summary: "list llama-servers that corral does not track, with evidence",
    load: () => import("./orphans.ts"),
  },
  cleanup: { summary: "kill orphaned llama-servers", load: () => import("./cleanup.ts") },
  kill: { summary: "kill a llama-server by pid or by name", load: () => import("./kill.ts") },
  adopt: { summary: "track a running llama-server that corral did not start", load: () => import("./adopt.ts") },
  logs: { summary: "show (or follow) the log of a slot", load: () => import("./logs.ts") },
  history: { summary: "show what happened: loads, stops, kills, recoveries", load: () => import("./history.ts") },
  gpus: { summary: "show the GPUs and the processes holding their memory", load: () => import("./gpus.ts") },
  top: {
    summary: "a live view: health, CPU, memory, GPU memory and requests per server (q quits)",
    load: () => import("./top.ts"),
  },
  serve: { summary: "run the REST API and web page", load: () => import("./serve.ts") },
  reload: {
    summary: "make the running corral serve re-read corral.yaml (changed models marked stale, none stopped)",
    load: () => import("./reload.ts"),
  },
  service: {
    summary: "install, remove or check the systemd unit (launchd plist) that runs corral serve at boot",
    load: () => import("./service.ts"),
  },
  token: { summary: "make, list and revoke named API tokens (read, control, admin)", load: () => import("./token.ts") },
} as const satisfies Record<string, CommandEntry>;

/** A subcommand's name. */
export type CommandName = keyof typeof COMMANDS;

/**
 * Whether a word names a subcommand.
 * @example
 * isCommandName("ls") // true
 */
export function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}
