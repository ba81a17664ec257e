import type { Controller, HistoryEvent, ProcessStatus, WatcherView } from "@corral/core";
import type { StreamLimiter } from "./streams.ts";

/**
 * Where live events come from: core's Supervisor, or a plain object in tests.
 * @example
 * const feed: EventFeed = { subscribe: (fn) => registry.subscribe(fn) }
 */
export interface EventFeed {
  /** Calls `listener` with every registry and supervisor event; returns the unsubscribe function. */
  subscribe(listener: (event: HistoryEvent) => void): () => void;
}

/**
 * The part of core's Supervisor the API uses.
 * @example
 * const fake: SupervisorLike = { subscribe: () => () => {}, statuses: () => controller.status() }
 */
export interface SupervisorLike extends EventFeed {
  /** Recent statuses (shared with the watcher's own tick), no older than `maxAgeMs`. */
  statuses(maxAgeMs?: number): Promise<ProcessStatus[]>;
  /** Whether the watcher runs and the latest error of its loop (`GET /api/v1/watcher`). */
  view?(): WatcherView;
}

/** Severity of a log line. */
export type LogLevel = "info" | "warn" | "error";

/**
 * Where the server writes its log lines (one per request, plus start-up and failures).
 * @example
 * const logger: Logger = (level, line) => console.log(`${level} ${line}`)
 */
export type Logger = (level: LogLevel, line: string) => void;

/**
 * What every route plugin gets.
 * @example
 * processRoutes({ controller, supervisor: undefined })
 */
export interface RouteDeps {
  readonly controller: Controller;
  readonly supervisor: SupervisorLike | undefined;
  /** milliseconds between SSE heartbeat comments */
  readonly heartbeatMs: number;
  /** when this app was created, epoch ms */
  readonly startedAt: number;
  /** the cap on concurrent event and log-follow streams @default none */
  readonly streams?: StreamLimiter;
}
