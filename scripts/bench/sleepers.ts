/**
 * Many real, idle processes: copies of `sleep` under a chosen name (`llama-server` for
 * registry entries, anything else for background load on the process table).
 */

import { readlinkSync } from "node:fs";
import type { Subprocess } from "bun";
import { namedCopy } from "../../packages/core/test/fixtures/index.ts";
import { type Tracker, within } from "./harness.ts";

/** A batch of sleeping processes, stopped together. */
export interface Sleepers {
  readonly procs: readonly Subprocess[];
  readonly exe: string;
  stop(): Promise<void>;
}

/** Options of {@link spawnSleepers}. */
export interface SleepersOptions {
  /** executable name the OS shows @default "llama-server" */
  readonly name?: string;
  /** extra environment (the corral markers, for orphans) @default none */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * How long each sleeps if nobody stops it: a bound, so even a SIGKILLed suite leaves
   * nothing behind for long.
   * @default 300
   */
  readonly seconds?: number;
}

/**
 * Starts `count` sleeping processes, all tracked by `tracker`.
 * @example
 * const servers = await spawnSleepers(1000, tracker, { name: "llama-server" })
 * try { ... } finally { await servers.stop() }
 */
export async function spawnSleepers(count: number, tracker: Tracker, options: SleepersOptions = {}): Promise<Sleepers> {
  const exe = namedCopy(Bun.which("sleep") ?? "/usr/bin/sleep", options.name ?? "llama-server");
  const env = options.env ? { ...process.env, ...options.env } : undefined;
  const argv = [exe, String(options.seconds ?? 300)];
  const procs: Subprocess[] = [];
  for (let i = 0; i < count; i++) {
    procs.push(tracker.process(Bun.spawn(argv, { stdio: ["ignore", "ignore", "ignore"], env })));
  }
  // Bun.spawn returns once fork+exec is under way; wait until each is the named executable,
  // so a scan right after sees `exe`, not bun.
  await within(
    (async () => {
      for (const p of procs) {
        while (!execDone(p.pid, exe)) await Bun.sleep(2);
      }
    })(),
    30_000,
    `${count} ${options.name ?? "llama-server"} sleepers starting`,
  );
  return {
    procs,
    exe,
    async stop() {
      for (const p of procs) p.kill("SIGKILL");
      await within(Promise.all(procs.map((p) => p.exited)), 30_000, "sleepers exiting");
    },
  };
}

function execDone(pid: number, exe: string): boolean {
  try {
    return readlinkSync(`/proc/${pid}/exe`) === exe;
  } catch {
    return false;
  }
}
