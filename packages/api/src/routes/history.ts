import { HistoryListSchema, slotKey } from "@corral/core";
import { Elysia, t } from "elysia";
import type { RouteDeps } from "../deps.ts";
import { Limit, Slot } from "../schemas.ts";

/**
 * `GET /api/v1/history?limit=&slot=&event=`: the newest events of `history.jsonl` first.
 * @example
 * app.use(historyRoutes(deps))
 */
export function historyRoutes({ controller }: Pick<RouteDeps, "controller">) {
  return new Elysia({ prefix: "/api/v1", detail: { tags: ["events"] } }).get(
    "/history",
    async ({ query }) => ({
      events: await controller.history({
        limit: query.limit ?? 100,
        ...(query.slot ? { slot: slotKey(query.slot) } : {}),
        ...(query.event ? { event: query.event } : {}),
      }),
    }),
    {
      query: t.Object({
        limit: t.Optional(Limit),
        slot: t.Optional(Slot),
        event: t.Optional(t.String({ maxLength: 64, description: "only events of this kind, e.g. crash-report" })),
      }),
      response: HistoryListSchema,
      detail: { summary: "Recent history events, newest first (limit defaults to 100)" },
    },
  );
}
