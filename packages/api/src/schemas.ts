// SLOT_PATTERN is core's parseSlot grammar: digits and commas only, no leading zeros, so no path tricks reach the log folder.
import { ErrorBodySchema, SLOT_PATTERN, slotKey, type UnloadResult, type UnloadView } from "@corral/core";
import { t } from "elysia";

/**
 * TypeBox schemas of the requests, shared by several routes. Each input schema carries an
 * `error` that names its field, because Elysia reports coerced query numbers without their path.
 * Response schemas are core's (`@corral/core/views`): defined once there, declared by every
 * route here, and imported as types by the page.
 * @example
 * app.get("/x/:slot", handler, { params: t.Object({ slot: Slot }), query: t.Object({ lines: t.Optional(Lines) }) })
 */

/** A slot key in a URL: `/processes/0,1`. */
export const Slot = t.String({
  pattern: SLOT_PATTERN,
  description: 'GPU index or comma list, e.g. "0" or "0,1"',
  error: 'slot: a GPU index or a comma list such as "0,1"',
});

/** The original controller's `gpu_id`: 0, 1, "0,1" or "both" (= "0,1"). */
export const GpuId = t.Union(
  [t.Integer({ minimum: 0, maximum: 999 }), t.String({ pattern: `^(both|${SLOT_PATTERN.slice(1, -1)})$` })],
  {
    description: 'GPU index (0), list ("0,1") or the original controller\'s "both"',
    error: 'gpu_id: a GPU index such as 0, a list such as "0,1", or "both"',
  },
);

/** `gpu_id` as a query string. */
export const GpuIdQuery = t.String({
  pattern: `^(both|${SLOT_PATTERN.slice(1, -1)})$`,
  description: 'GPU index (0), list ("0,1") or "both"',
  error: 'gpu_id: a GPU index such as 0, a list such as "0,1", or "both"',
});

/** A PID: never 0 or 1 (init), which no request may target. */
export const Pid = t.Integer({
  minimum: 2,
  maximum: 2 ** 31 - 1,
  description: "process id",
  error: "pid: an integer of at least 2",
});

/** Log lines to return. */
export const Lines = t.Integer({
  minimum: 1,
  maximum: 10_000,
  description: "how many lines, 1 to 10000",
  error: "lines: an integer from 1 to 10000",
});

/** History events to return. */
export const Limit = t.Integer({
  minimum: 1,
  maximum: 10_000,
  description: "at most this many events, 1 to 10000",
  error: "limit: an integer from 1 to 10000",
});

/** A model id or process name. */
export const Name = t.String({ minLength: 1, maxLength: 128, error: "name: 1 to 128 characters" });

/** A configured model's id. */
export const ModelId = t.String({
  minLength: 1,
  maxLength: 128,
  description: "model id from corral.yaml",
  error: "model_id: 1 to 128 characters",
});

/** A port for a llama-server. */
export const Port = t.Integer({ minimum: 1, maximum: 65_535, error: "port: an integer from 1 to 65535" });

/** `?force=true|false`. */
export const Force = t.Boolean({ default: false, description: "SIGKILL at once", error: "force: true or false" });

/** The body of every error response (core's `ErrorBodySchema`). */
export const ErrorSchema = ErrorBodySchema;

/**
 * The slot key for a `gpu_id` as the original controller's clients send it.
 * @example
 * toSlot("both") // "0,1"
 * toSlot(1) // "1"
 */
export function toSlot(gpuId: number | string): string {
  return slotKey(gpuId === "both" ? "0,1" : gpuId);
}

/**
 * An unload's outcome in the API's snake_case, shared by the original's and corral's routes.
 * @example
 * return unloadBody(await controller.unload("0"))
 */
export function unloadBody(r: UnloadResult): UnloadView {
  return {
    slot: r.slot,
    pid: r.pid,
    model_id: r.model_id,
    signalled: r.signalled,
    escalated: r.escalated,
    ms: r.ms,
    port_freed: r.portFreed,
    ...(r.gpuReleased !== undefined ? { gpu_released: r.gpuReleased } : {}),
    reason: r.reason,
  };
}
