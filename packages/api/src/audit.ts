import { type HistoryEvent, isInferencePath, isStateChanging } from "@corral/core";
import { Elysia } from "elysia";
import { callerOf } from "./auth.ts";

/**
 * Where audit events go: the registry's `record` (history.jsonl plus the live event stream).
 * @example
 * const sink: AuditSink = { record: (e) => registry.record(e) }
 */
export interface AuditSink {
  record(event: Omit<HistoryEvent, "time">): Promise<unknown>;
}

/**
 * Records every state-changing request that auth let through and that succeeded as one `request`
 * event in the history: `by` (the token's name), the method and path (never the query) and the
 * status. Refused and failed requests (4xx, 5xx) changed nothing and are not recorded, so neither a
 * stranger nor a flood of bad input can fill the history (a failed load records its own events).
 * @example
 * new Elysia().use(audit(controller))
 */
export function audit(sink: AuditSink) {
  return new Elysia().onAfterResponse({ as: "global" }, ({ request, set }) => {
    if (!isStateChanging(request.method)) return;
    // Inference requests are counted per token and model in /metrics, not written one by one to the history.
    if (isInferencePath(new URL(request.url).pathname)) return;
    const caller = callerOf(request);
    if (!caller) return;
    const status = typeof set.status === "number" ? set.status : 200;
    if (status >= 400) return;
    const path = new URL(request.url).pathname;
    void sink
      .record({ event: "request", by: caller.name, reason: `${request.method} ${path} → ${status}` })
      .catch(() => undefined);
  });
}
