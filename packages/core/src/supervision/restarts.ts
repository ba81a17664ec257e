import type { ModelConfig } from "../config/load.ts";
import type { Controller } from "../lifecycle/controller.ts";
import { isPortAllowed } from "../lifecycle/port-choice.ts";
import type { ProcessStatus } from "../lifecycle/types.ts";
import type { HistoryEvent } from "../store/schema.ts";
import type { AlertEvent } from "./alerts.ts";
import { buildCrashReport, type CrashWitness, crashSummary } from "./crash-report.ts";
import { restartDecision, restartDelay } from "./watch-rules.ts";

/** What the restart machinery needs from its supervisor. */
export interface RestartContext {
  readonly controller: Controller;
  /** what the last ticks saw of each server, for the crash report */
  readonly witness: CrashWitness;
  readonly alert: (
    event: string,
    status: Pick<ProcessStatus, "slot" | "entry">,
    reason: string,
    extra?: Pick<AlertEvent, "report">,
  ) => void;
  readonly report: (where: string, error: unknown) => void;
}

interface RestartState {
  attempts: number;
  timer?: ReturnType<typeof setTimeout>;
  /** from scheduling until the attempt has finished: a tick in between must not schedule again */
  busy: boolean;
  lastStart: number;
}

/**
 * Crashes and restarts of the supervisor's servers: one crash report per crash, restarts with
 * capped exponential backoff for `restart: on-failure` models, give-up after the maximum attempts,
 * and an unload from anyone cancels a pending restart.
 * @example
 * const restarts = new Restarts({ controller, witness, alert, report }); await restarts.crashed(row, "process 4242 is gone")
 */
export class Restarts {
  readonly #ctx: RestartContext;
  readonly #states = new Map<string, RestartState>();

  constructor(ctx: RestartContext) {
    this.#ctx = ctx;
  }

  /** Cancels every pending restart (the supervisor stops). */
  clear(): void {
    for (const state of this.#states.values()) clearTimeout(state.timer);
    this.#states.clear();
  }

  /**
   * A running server is gone: marks it exited, records one crash report (history and webhook),
   * then unregisters it (restart off) or schedules a restart with capped exponential backoff.
   */
  async crashed(status: ProcessStatus, reason: string): Promise<void> {
    const { registry, config } = this.#ctx.controller;
    const { slot, entry } = status;
    if (this.#states.get(slot)?.busy) return; // a restart is already scheduled or running
    const model = config.models.find((m) => m.id === entry.model_id);
    const policy = model && !entry.adopted ? model.restart : "never";
    if (entry.status !== "exited") {
      await registry
        .update(slot, { status: "exited" }, `crashed: ${reason}`)
        .catch((error) => this.#ctx.report("status update", error));
      await this.#reportCrash(status, reason, model).catch((error) => {
        this.#ctx.report("crash report", error);
        this.#ctx.alert("crash", status, reason);
      });
    }
    if (policy !== "on-failure") {
      this.#states.delete(slot);
      await registry.unregister(slot, { pid: entry.pid, event: "crashed", reason: `${reason}; restart is off` });
      return;
    }
    const state = this.#states.get(slot) ?? { attempts: 0, busy: false, lastStart: 0 };
    this.#states.set(slot, state);
    // The dead entry stays (status "exited") until the restart replaces it, so an unload meanwhile cancels it.
    await this.#schedule(
      slot,
      { model_id: entry.model_id, port: entry.port, pid: entry.pid, restarts: entry.restarts ?? 0 },
      state,
      reason,
    );
  }

  /** One crash report: in the history (`crash-report`) and in the webhook's body. */
  async #reportCrash(status: ProcessStatus, reason: string, model: ModelConfig | undefined): Promise<void> {
    const { config, registry } = this.#ctx.controller;
    const { slot, entry } = status;
    const restart = restartDecision({
      policy: model?.restart ?? "never",
      adopted: entry.adopted,
      configured: model !== undefined,
      attempts: this.#states.get(slot)?.attempts ?? 0,
      maxAttempts: model?.max_restart_attempts ?? config.restart.max_attempts,
      backoffMs: config.restart.backoff_ms,
      backoffMaxMs: config.restart.backoff_max_ms,
    });
    const report = await buildCrashReport({
      status,
      reason,
      detectedAt: this.#ctx.controller.now(),
      seen: this.#ctx.witness.take(slot, entry.pid),
      restart,
    });
    await registry.record({
      event: "crash-report",
      slot,
      pid: entry.pid,
      model_id: entry.model_id,
      reason: crashSummary(report),
      report,
    });
    this.#ctx.alert("crash", status, reason, { report });
  }

  async #schedule(
    slot: string,
    last: { model_id: string; port: number; pid?: number; restarts: number },
    state: RestartState,
    reason: string,
  ): Promise<void> {
    const { registry, config } = this.#ctx.controller;
    const model = config.models.find((m) => m.id === last.model_id);
    const maxAttempts = model?.max_restart_attempts ?? config.restart.max_attempts;
    if (state.attempts >= maxAttempts) {
      this.#states.delete(slot);
      const why = `gave up after ${state.attempts} restart attempts: ${reason}`;
      const removed = await registry.unregister(slot, { pid: last.pid, event: "give-up", reason: why });
      if (!removed) await registry.record({ event: "give-up", slot, model_id: last.model_id, reason: why });
      this.#ctx.alert(
        "give-up",
        { slot, entry: { model_id: last.model_id, pid: last.pid ?? 0 } } as ProcessStatus,
        why,
      );
      return;
    }
    const delay = restartDelay(state.attempts, config.restart.backoff_ms, config.restart.backoff_max_ms);
    state.attempts += 1;
    state.busy = true;
    state.timer = setTimeout(
      () => void this.#attempt(slot, last, state).catch((e) => this.#ctx.report("restart", e)),
      delay,
    );
    await registry.record({
      event: "restart-scheduled",
      slot,
      pid: last.pid,
      model_id: last.model_id,
      reason: `attempt ${state.attempts} in ${delay} ms`,
    });
  }

  async #attempt(
    slot: string,
    last: { model_id: string; port: number; pid?: number; restarts: number },
    state: RestartState,
  ) {
    state.timer = undefined;
    if (this.#states.get(slot) !== state) return; // cancelled by an unload
    const { registry } = this.#ctx.controller;
    const current = await registry.get(slot).catch(() => undefined);
    if (current && current.status !== "exited") {
      this.#states.delete(slot); // something else was loaded there meanwhile
      return;
    }
    try {
      // The crashed server's port, unless the configuration no longer allows it (then a free one is picked).
      const { entry } = await this.#ctx.controller.load(last.model_id, {
        gpu: slot,
        ...(isPortAllowed(this.#ctx.controller.config, last.port) ? { port: last.port } : {}),
        reason: `restart attempt ${state.attempts} after a crash`,
        restarts: last.restarts + 1,
      });
      state.lastStart = this.#ctx.controller.now();
      await registry.record({
        event: "restarted",
        slot,
        pid: entry.pid,
        model_id: last.model_id,
        reason: `attempt ${state.attempts}`,
      });
      this.#ctx.alert("restart", { slot, entry } as ProcessStatus, `attempt ${state.attempts}`);
      state.busy = false;
    } catch (error) {
      const why = (error as Error).message.split("\n")[0] ?? "load failed";
      await registry.record({ event: "restart-failed", slot, model_id: last.model_id, reason: why });
      state.busy = false;
      if (this.#states.get(slot) === state)
        await this.#schedule(slot, { ...last, pid: undefined, restarts: last.restarts + 1 }, state, why);
    }
  }

  /** An unload asked for by anyone (this process or the CLI, through the history) cancels a pending restart. */
  cancelOnUnload(event: HistoryEvent): void {
    if (!event.slot || (event.event !== "unload-requested" && event.event !== "killed")) return;
    const state = this.#states.get(event.slot);
    if (!state) return;
    clearTimeout(state.timer);
    this.#states.delete(event.slot);
  }

  /** A server that has run `restart.stable_ms` since its last restart starts again from attempt 1. */
  resetIfStable(slot: string, running: boolean): void {
    const state = this.#states.get(slot);
    if (!state || state.busy || !running) return;
    if (this.#ctx.controller.now() - state.lastStart >= this.#ctx.controller.config.restart.stable_ms)
      this.#states.delete(slot);
  }
}
