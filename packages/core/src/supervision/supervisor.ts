import type { Controller } from "../lifecycle/controller.ts";
import { collectStatus } from "../lifecycle/status.ts";
import type { ProcessStatus } from "../lifecycle/types.ts";
import type { MetricsRecorder } from "../metrics/recorder.ts";
import { createUsageSampler } from "../process/usage.ts";
import { pruneSpawnLogs, rotateServerLogs } from "../server/log-rotate.ts";
import { followFile } from "../server/logs.ts";
import type { HistoryEvent } from "../store/schema.ts";
import { type AlertEvent, type Alerter, createAlerter } from "./alerts.ts";
import { CrashWitness } from "./crash-report.ts";
import { Restarts } from "./restarts.ts";
import type { WatcherView } from "./views.ts";
import { nextStatus, WedgeDetector } from "./watch-rules.ts";

/** Options of {@link createSupervisor}. */
export interface SupervisorOptions {
  /** @default controller.config.watch.interval_ms (5000) */
  readonly intervalMs?: number;
  /** @default createAlerter({ urls: controller.config.webhooks }) */
  readonly alerter?: Alerter;
  /** how long a `/slots` request may show no progress before the server counts as wedged @default 120000 */
  readonly wedgedAfterMs?: number;
  /** follow history.jsonl so events written by other processes (the CLI) reach subscribers @default true */
  readonly followHistory?: boolean;
  /**
   * Called with every error the watch loop meets (a corrupt registry, a lock timeout, a failed
   * status write): the loop goes on, so without this nobody would hear of them.
   * @default none (the latest is still kept in `lastError`)
   */
  readonly onError?: (error: unknown, where: string) => void;
  /** writes each tick's samples (CPU, RSS, GPU memory, requests) to metrics.db @default none */
  readonly metrics?: MetricsRecorder;
}

/** The latest error of the watch loop (where, code, message, ISO time), for a page to show. */
export type SupervisorError = NonNullable<WatcherView["last_error"]>;

/** What one tick saw. */
export interface TickReport {
  readonly statuses: ProcessStatus[];
  readonly ms: number;
  readonly at: string;
}

/**
 * Watches every tracked process: one process-table scan per tick, `/health` in parallel, a
 * status event whenever a status changes, auto-restart with capped exponential backoff for
 * models with `restart: on-failure`, give-up after the maximum attempts, webhook alerts.
 * A process that was unloaded on purpose is never restarted (its entry is gone or `stopping`).
 * @example
 * const supervisor = createSupervisor(controller); supervisor.subscribe((e) => console.log(e.event)); supervisor.start()
 */
export class Supervisor {
  readonly controller: Controller;
  readonly #intervalMs: number | undefined;
  /** the alerter passed in, used whatever the configuration says */
  readonly #givenAlerter: Alerter | undefined;
  #alerter: Alerter | undefined;
  #alerterUrls = "";
  readonly #witness = new CrashWitness();
  readonly #restarts: Restarts;
  #prunedAt = Number.NEGATIVE_INFINITY;
  readonly #usage = createUsageSampler();
  readonly #wedge: WedgeDetector;
  readonly #listeners = new Set<(event: HistoryEvent) => void>();
  readonly #followHistory: boolean;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #follow: AbortController | undefined;
  #ticking: Promise<TickReport> | undefined;
  #last: TickReport | undefined;
  #unsubscribe: (() => void) | undefined;
  #lastError: SupervisorError | undefined;
  readonly #onError: ((error: unknown, where: string) => void) | undefined;
  readonly #metrics: MetricsRecorder | undefined;

  constructor(controller: Controller, options: SupervisorOptions = {}) {
    this.controller = controller;
    this.#restarts = new Restarts({
      controller,
      witness: this.#witness,
      alert: (event, status, reason, extra) => this.#alert(event, status, reason, extra),
      report: (where, error) => this.#report(where, error),
    });
    this.#intervalMs = options.intervalMs;
    this.#givenAlerter = options.alerter;
    this.#wedge = new WedgeDetector(options.wedgedAfterMs ?? 120_000, controller.now);
    this.#followHistory = options.followHistory ?? true;
    this.#onError = options.onError;
    this.#metrics = options.metrics;
  }

  /** The tick interval: the option, else the configuration in force (a reload changes it from the next tick). */
  get intervalMs(): number {
    return this.#intervalMs ?? this.controller.config.watch.interval_ms;
  }

  /**
   * Where alerts go: the alerter passed in, else one for the configuration's `webhooks`, made anew
   * when a reload changes them (the old one still delivers what it had queued).
   */
  get alerter(): Alerter {
    if (this.#givenAlerter) return this.#givenAlerter;
    const urls = this.controller.config.webhooks;
    if (!this.#alerter || this.#alerterUrls !== urls.join("\n")) {
      void this.#alerter?.flush(5000);
      this.#alerter = createAlerter({ urls });
      this.#alerterUrls = urls.join("\n");
    }
    return this.#alerter;
  }

  /**
   * The latest error the watch loop met (a failed tick is forgotten once a tick succeeds again);
   * undefined when there has been none.
   * @example
   * if (supervisor.lastError) console.warn(supervisor.lastError.message)
   */
  get lastError(): SupervisorError | undefined {
    return this.#lastError;
  }

  /**
   * What the watcher says about itself: running, its interval, the latest error of its loop.
   * @example
   * supervisor.view() // { running: true, interval_ms: 5000 }
   */
  view(): WatcherView {
    const running = this.#timer !== undefined || this.#follow !== undefined || this.#unsubscribe !== undefined;
    return { running, interval_ms: this.intervalMs, ...(this.#lastError ? { last_error: this.#lastError } : {}) };
  }

  #report(where: string, error: unknown): void {
    const code = (error as { code?: unknown } | undefined)?.code;
    this.#lastError = {
      where,
      ...(typeof code === "string" ? { code } : {}),
      message: error instanceof Error ? error.message : String(error),
      at: new Date(this.controller.now()).toISOString(),
    };
    try {
      this.#onError?.(error, where);
    } catch {
      // A failing logger must not stop the loop.
    }
  }

  /**
   * Receives every registry event (from this process and, through history.jsonl, from others).
   * @example
   * const off = supervisor.subscribe((e) => console.log(e.event, e.slot))
   */
  subscribe(listener: (event: HistoryEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Starts the tick loop (and the history follower). Idempotent.
   * @example
   * supervisor.start()
   */
  start(): void {
    if (this.#timer !== undefined || this.#follow) return;
    if (this.#followHistory) {
      this.#follow = new AbortController();
      void followFile(this.controller.paths.history, (lines) => this.#emitLines(lines), {
        signal: this.#follow.signal,
        intervalMs: 100,
        fromEnd: true,
      }).catch((error) => this.#report("history", error));
    } else {
      this.#unsubscribe = this.controller.registry.subscribe((e) => this.#emit(e));
    }
    const loop = async () => {
      await this.tick().then(
        () => {
          if (this.#lastError?.where === "tick") this.#lastError = undefined;
        },
        (error) => this.#report("tick", error),
      );
      if (this.#follow || this.#unsubscribe) this.#timer = setTimeout(loop, this.intervalMs);
    };
    this.#timer = setTimeout(loop, 0);
  }

  /**
   * Stops ticking, cancels pending restarts and flushes alerts. Tracked servers keep running.
   * @example
   * await supervisor.stop()
   */
  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#follow?.abort();
    this.#follow = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#restarts.clear();
    await this.#ticking?.catch(() => undefined);
    await this.alerter.flush(2000);
  }

  /**
   * The latest statuses, no older than `maxAgeMs`; concurrent callers share one tick.
   * `checked_at` in each row says how fresh it is.
   * @default maxAgeMs = 1000
   * @example
   * const rows = await supervisor.statuses(500)
   */
  async statuses(maxAgeMs = 1000): Promise<ProcessStatus[]> {
    const last = this.#last;
    if (last && this.controller.now() - Date.parse(last.at) <= maxAgeMs) return last.statuses;
    return (await this.tick()).statuses;
  }

  /**
   * One supervision pass. Concurrent calls share the pass in flight.
   * @example
   * const { statuses, ms } = await supervisor.tick()
   */
  tick(): Promise<TickReport> {
    this.#ticking ??= this.#tick().finally(() => {
      this.#ticking = undefined;
    });
    return this.#ticking;
  }

  async #tick(): Promise<TickReport> {
    const started = performance.now();
    const { controller } = this;
    const statuses = await collectStatus(controller, { usage: this.#usage });
    await controller.learnPeaks(statuses);
    this.#witness.observe(statuses);
    const wedged = await this.#wedge.check(
      statuses,
      controller.config.timeouts.health_ms,
      controller.config.host,
      (r, s) => this.#witness.sawSlots(r.slot, r.entry.pid, s, r.checked_at),
    );
    for (const status of statuses) await this.#apply(status, wedged.get(status.slot));
    await rotateServerLogs(controller.registry, statuses, controller.config.logs).catch((error) =>
      this.#report("log rotation", error),
    );
    if (controller.now() - this.#prunedAt >= 60_000) {
      // Each load writes a new log: past spawns' logs beyond logs.keep per slot go, once a minute.
      this.#prunedAt = controller.now();
      const inUse = new Set(statuses.map((s) => s.entry.log_file));
      await pruneSpawnLogs(controller.paths.logs, inUse, controller.config.logs.keep).catch((error) =>
        this.#report("log pruning", error),
      );
    }
    if (this.#metrics) {
      // One transaction per tick; a full disk must not stop the supervision itself.
      await this.#metrics
        .record(controller.now(), statuses, await controller.gpuQuery().catch(() => undefined))
        .catch((error) => this.#report("metrics", error));
    }
    const report = { statuses, ms: performance.now() - started, at: new Date(controller.now()).toISOString() };
    this.#last = report;
    return report;
  }

  async #apply(status: ProcessStatus, wedgedReason: string | undefined): Promise<void> {
    const { registry } = this.controller;
    const { slot, entry } = status;
    const verdict = nextStatus(status, wedgedReason, this.controller.now(), this.controller.config.timeouts.load_ms);
    if (verdict.crashed) return this.#restarts.crashed(status, verdict.reason);
    if (verdict.remove) {
      await registry.unregister(slot, {
        pid: entry.pid,
        event: "load-failed",
        reason: `exited while loading: ${verdict.reason}`,
      });
      return;
    }
    this.#restarts.resetIfStable(slot, entry.status === "running");
    if (verdict.status === undefined || verdict.status === entry.status) return;
    if (verdict.status === "unhealthy" && status.health?.state === "unreachable") {
      // A server that died between the process scan and its /health request is a crash, not unhealthy.
      const again = await registry.verify(slot).catch(() => undefined);
      if (again && (again.probe.state === "exited" || again.probe.state === "pid-reused")) {
        return this.#restarts.crashed(
          { ...status, state: again.probe.state, state_reason: again.probe.reason },
          again.probe.reason,
        );
      }
    }
    await registry
      .update(slot, { status: verdict.status }, verdict.reason)
      .catch((error) => this.#report("status update", error));
    if (verdict.status === "unhealthy") this.#alert("unhealthy", status, verdict.reason);
  }

  #alert(
    event: string,
    status: Pick<ProcessStatus, "slot" | "entry">,
    reason: string,
    extra: Pick<AlertEvent, "report"> = {},
  ): void {
    this.alerter.notify({
      ...extra,
      event,
      slot: status.slot,
      model: status.entry.model_id,
      pid: status.entry.pid,
      reason,
      time: new Date(this.controller.now()).toISOString(),
    });
  }

  #emitLines(lines: readonly string[]): void {
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        this.#emit(JSON.parse(line) as HistoryEvent);
      } catch {
        // A torn line from a crashed writer: skip it.
      }
    }
  }

  #emit(event: HistoryEvent): void {
    this.#restarts.cancelOnUnload(event);
    // Something changed: whoever reacts to this event must not be served the rows from before it.
    this.#last = undefined;
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // One bad subscriber must not stop the others.
      }
    }
  }
}

/**
 * Creates a supervisor for a controller (call `start()` to begin watching).
 * @example
 * const supervisor = createSupervisor(controller, { intervalMs: 2000 })
 * supervisor.start()
 */
export function createSupervisor(controller: Controller, options: SupervisorOptions = {}): Supervisor {
  return new Supervisor(controller, options);
}
