#!/usr/bin/env bun
// corral's executable: `corral <command> [options]`, or the interactive menu in a terminal.
import { runCli } from "./cli.ts";

const code = await runCli(process.argv.slice(2));
// Exit explicitly: a health check's keep-alive socket or a log follower's timer must not hold
// the process open after the command is done (output is already flushed by then).
process.exit(code);
