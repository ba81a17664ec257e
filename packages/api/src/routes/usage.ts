import {
  GpuUsageSchema,
  gpuUsageSeries,
  type MetricsStore,
  slotKey,
  UsageSeriesSchema,
  usageMarks,
  usageRange,
  usageSeries,
} from "@corral/core";
import { Elysia, t } from "elysia";
import type { RouteDeps } from "../deps.ts";
import { Slot } from "../schemas.ts";

/** What the usage routes read: the controller (history, for the marks) and the metrics store. */
export interface UsageRouteDeps extends Pick<RouteDeps, "controller"> {
  /** `<home>/metrics.db`; without it every series is empty @default none */
  readonly metrics?: Pick<MetricsStore, "usage" | "gpuUsage">;
  /** @default Date.now */
  readonly now?: () => number;
}

const RangeQuery = t.Object({
  since: t.Optional(
    t.String({ maxLength: 40, description: "hour, day, week, a duration back from now (90m, 7d), epoch ms or ISO" }),
  ),
  step: t.Optional(
    t.String({ maxLength: 20, description: "bucket width: ms or a duration (10s, 5m); chosen by default" }),
  ),
});

/** History events read for a chart's marks: enough for a week of a restarting server. */
const MARK_EVENTS = 2000;

/**
 * `GET /api/v1/processes/:slot/usage` and `GET /api/v1/gpus/usage`: the supervisor's samples
 * from metrics.db as chart columns, a slot's loads, restarts and crashes marked from the history.
 * @example
 * app.use(usageRoutes({ controller, metrics }))
 */
export function usageRoutes({ controller, metrics, now = Date.now }: UsageRouteDeps) {
  return new Elysia({ prefix: "/api/v1", detail: { tags: ["usage"] } })
    .get(
      "/processes/:slot/usage",
      async ({ params, query }) => {
        const slot = slotKey(params.slot);
        const range = usageRange(query, now());
        const rows = metrics?.usage(slot, range) ?? [];
        const events = await controller.history({ slot, limit: MARK_EVENTS });
        const marks = usageMarks(events, slot, range.since, range.until);
        return usageSeries({ slot, ...range, rows, marks });
      },
      {
        params: t.Object({ slot: Slot }),
        query: RangeQuery,
        response: UsageSeriesSchema,
        detail: { summary: "A slot's CPU, memory, GPU memory and requests over time, with loads, restarts, crashes" },
      },
    )
    .get(
      "/gpus/usage",
      ({ query }) => {
        const range = usageRange(query, now());
        return gpuUsageSeries({ ...range, rows: metrics?.gpuUsage(range) ?? [] });
      },
      {
        query: RangeQuery,
        response: GpuUsageSchema,
        detail: { summary: "Per GPU, the memory each process held over time" },
      },
    );
}
