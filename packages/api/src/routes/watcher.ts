import { WatcherViewSchema } from "@corral/core";
import { Elysia } from "elysia";
import type { RouteDeps } from "../deps.ts";

/**
 * `GET /api/v1/watcher`: whether the supervisor runs, and the latest error of its loop (a
 * corrupt registry, a lock timeout), which the loop itself outlives and the page shows.
 * @example
 * app.use(watcherRoutes(deps))
 */
export function watcherRoutes({ supervisor }: Pick<RouteDeps, "supervisor">) {
  return new Elysia({ prefix: "/api/v1", detail: { tags: ["events"] } }).get(
    "/watcher",
    () => supervisor?.view?.() ?? { running: supervisor !== undefined },
    { response: WatcherViewSchema, detail: { summary: "The watcher's state and the latest error of its loop" } },
  );
}
