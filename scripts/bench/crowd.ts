/**
 * The host both scan scenarios run on: 1,000 tracked llama-server stand-ins and 1,000 other
 * processes (copies of `sleep`), started once and shared, stopped by `closeCrowd()` at the end.
 */

import type { Tracker } from "./harness.ts";
import { type Sleepers, spawnSleepers } from "./sleepers.ts";

export const CROWD_SERVERS = 1000;
export const CROWD_OTHERS = 1000;

/** The shared sleepers. */
export interface Crowd {
  /** llama-server stand-ins, for registry entries */
  readonly servers: Sleepers;
  /** processes that are no llama-server */
  readonly others: Sleepers;
}

let current: Promise<Crowd> | undefined;

/**
 * The crowd, starting it on first call.
 * @example
 * const { servers } = await crowd(ctx.tracker)
 */
export function crowd(tracker: Tracker): Promise<Crowd> {
  current ??= (async () => ({
    servers: await spawnSleepers(CROWD_SERVERS, tracker, { name: "llama-server" }),
    others: await spawnSleepers(CROWD_OTHERS, tracker, { name: "bench-idle" }),
  }))();
  return current;
}

/**
 * Stops the crowd, if it was started.
 * @example
 * await closeCrowd()
 */
export async function closeCrowd(): Promise<void> {
  const started = current;
  current = undefined;
  if (!started) return;
  const { servers, others } = await started;
  await Promise.all([servers.stop(), others.stop()]);
}
