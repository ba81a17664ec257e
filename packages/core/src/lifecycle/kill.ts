import { NotOurProcessError } from "../errors.ts";
import type { Registry } from "../registry/registry.ts";
import type { KillOptions, KillOutcome, KillTarget } from "../registry/types.ts";
import type { UnloadOptions } from "./types.ts";

/** What {@link killTargets} needs: the registry (untracked targets) and the controller's queued unload (tracked ones). */
export interface KillTargetsContext {
  readonly registry: Pick<Registry, "killOrphan">;
  /** the controller's unload of a slot, refusing when the slot no longer holds `pid` */
  unloadPid(slot: string, pid: number, options: UnloadOptions): Promise<KillOutcome>;
}

/**
 * Kills exactly the targets a kill plan resolved (`resolveKillTargets`), all at once: a tracked
 * one through its slot's unload (one operation per slot, then the port and GPU waits), an
 * untracked one under the kill rule, each refused if its PID now names another process.
 * Failures are gathered into an AggregateError.
 * @example
 * const { targets } = await registry.resolveKillTargets({ name: "qwen" }); await killTargets(ctx, targets)
 */
export async function killTargets(
  ctx: KillTargetsContext,
  targets: readonly KillTarget[],
  options: KillOptions = {},
): Promise<KillOutcome[]> {
  const jobs = targets.map((target) => {
    if (target.slot === undefined) {
      return ctx.registry.killOrphan(target.pid, {
        ...options,
        ...(target.startTimeMs !== undefined ? { startTimeMs: target.startTimeMs } : {}),
      });
    }
    return ctx.unloadPid(target.slot, target.pid, {
      force: options.force,
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      reason: options.reason ?? "kill requested",
    });
  });
  const settled = await Promise.allSettled(jobs);
  const failures = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected").map((s) => s.reason);
  if (failures.length > 0) throw new AggregateError(failures, `${failures.length} of ${jobs.length} kills failed`);
  return settled.map((s) => (s as PromiseFulfilledResult<KillOutcome>).value);
}

/**
 * The refusal when a slot no longer holds the PID a kill was decided for.
 * @example
 * throw slotMoved("0", 4242, 4300)
 */
export function slotMoved(slot: string, pid: number, now: number | undefined): NotOurProcessError {
  return new NotOurProcessError(
    pid,
    now === undefined ? `slot ${slot} is empty now` : `slot ${slot} holds pid ${now} now, not the one chosen`,
  );
}
