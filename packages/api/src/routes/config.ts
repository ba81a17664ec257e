import { ReloadResultSchema, reloadConfig } from "@corral/core";
import { Elysia, t } from "elysia";
import { callerOf } from "../auth.ts";
import { JSON_BODY } from "../body.ts";
import type { RouteDeps } from "../deps.ts";

/**
 * `POST /api/v1/config/reload` with `{ "restart_changed"?: true }`: re-reads corral.yaml into the
 * running server (core's `reloadConfig`). A file that does not parse or validate is 400
 * CONFIG_INVALID naming the key, and the configuration in force stays. Running models are never
 * stopped: the answer lists the slots now `stale`; with `restart_changed` those are restarted.
 * Needs a `control` token (it changes what the server does).
 * @example
 * app.use(configRoutes(deps))
 */
export function configRoutes({ controller }: Pick<RouteDeps, "controller">) {
  return new Elysia({ prefix: "/api/v1", detail: { tags: ["config"] } }).post(
    "/config/reload",
    async ({ body, request, server }) => {
      // A restart of changed models can take as long as their loads.
      if (body?.restart_changed) server?.timeout(request, 0);
      const by = callerOf(request)?.name;
      return reloadConfig(controller, {
        restartChanged: body?.restart_changed ?? false,
        reason: "reload requested through the API",
        ...(by === undefined ? {} : { by }),
      });
    },
    {
      ...JSON_BODY,
      body: t.Optional(
        t.Object({
          restart_changed: t.Optional(t.Boolean({ error: "restart_changed: true or false" })),
        }),
      ),
      response: ReloadResultSchema,
      detail: {
        summary: "Re-read corral.yaml: refused whole when invalid; running models are marked stale, not stopped",
      },
    },
  );
}
