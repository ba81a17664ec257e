import { ServiceHealthSchema } from "@corral/core";
import { Elysia } from "elysia";
import type { RouteDeps } from "../deps.ts";

/**
 * `GET /api/v1/health`: answers whenever the server does. It reads nothing from the registry,
 * so it stays cheap and reveals nothing to callers without a token.
 * @example
 * app.use(healthRoutes(deps))
 */
export function healthRoutes({ startedAt }: Pick<RouteDeps, "startedAt">) {
  return new Elysia({ prefix: "/api/v1" }).get(
    "/health",
    () => ({
      healthy: true,
      status: "running",
      message: "corral is running",
      uptime_seconds: Math.round((Date.now() - startedAt) / 100) / 10,
    }),
    { response: ServiceHealthSchema, detail: { tags: ["compat"], summary: "Whether the corral server is up" } },
  );
}
