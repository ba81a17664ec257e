import type { ModelConfig } from "../config/load.ts";
import type { ProcessEntry } from "../store/schema.ts";
import type { ModelState } from "./state.ts";
import type { GatewayModelView, Located } from "./types.ts";

/** Entries that answer requests; "loading" ones are waited for, others are not routed to. */
export function routable(entry: ProcessEntry): boolean {
  return entry.status === "running" || entry.status === "unhealthy";
}

/**
 * One model as `GET /v1/models`, `corral ls --models` and the page show it.
 * @example
 * modelView({ model, state, at, last: Date.now(), ttl: 300, now: Date.now() }).unload_at
 */
export function modelView(input: {
  readonly model: ModelConfig;
  readonly state: ModelState | undefined;
  readonly at: Located | undefined;
  /** epoch ms of the last use known, if any */
  readonly last: number | undefined;
  readonly ttl: number;
  readonly now: number;
}): GatewayModelView {
  const { model, state, at, last, ttl, now } = input;
  const idle = at !== undefined && !state?.busy && routable(at.entry);
  const phase = state?.unloading
    ? "unloading"
    : state?.loading || (at && !routable(at.entry))
      ? "loading"
      : at
        ? "loaded"
        : "unloaded";
  return {
    id: model.id,
    name: model.name,
    aliases: model.aliases ?? [],
    pinned: model.pinned ?? false,
    gpu: model.gpu,
    state: phase,
    slot: at?.slot,
    pid: at?.entry.pid,
    port: at?.entry.port,
    in_flight: state?.inFlight ?? 0,
    waiting: state?.waiting ?? 0,
    served: state?.served ?? 0,
    last_request_at: last === undefined ? undefined : new Date(last).toISOString(),
    ttl_s: ttl,
    unload_at:
      idle && ttl > 0 && last !== undefined ? new Date(Math.max(now, last + ttl * 1000)).toISOString() : undefined,
    tokens_per_second: state?.tokensPerSecond,
  };
}
