import { Elysia, t } from "elysia";
import type { RouteDeps } from "../deps.ts";

/**
 * The original controller's health shape, about corral itself (the only route without a token).
 * @example
 * { healthy: true, status: "running", message: "corral is running", uptime_seconds: 12.3 }
 */
export const HealthSchema = t.Object({
  healthy: t.Boolean(),
  status: t.String({ description: '"running" while the server answers' }),
  message: t.String(),
  uptime_seconds: t.Number(),
});

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
    { response: HealthSchema, detail: { tags: ["compat"], summary: "Whether the corral server is up" } },
  );
}
