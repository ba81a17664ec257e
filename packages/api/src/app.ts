import type { Controller, MetricsStore, TokenStore } from "@corral/core";
import { createGateway, type Gateway } from "@corral/core";
import { openapi } from "@elysiajs/openapi";
import { Elysia } from "elysia";
import { audit } from "./audit.ts";
import { auth } from "./auth.ts";
import { jsonBody } from "./body.ts";
import { cors } from "./cors.ts";
import type { Logger, RouteDeps, SupervisorLike } from "./deps.ts";
import { describeError } from "./errors.ts";
import { browserGuard } from "./guard.ts";
import { openapiAssetRoutes, SWAGGER_ASSETS } from "./openapi-assets.ts";
import { requestLog } from "./request-log.ts";
import { configRoutes } from "./routes/config.ts";
import { eventRoutes } from "./routes/events.ts";
import { gatewayRoutes } from "./routes/gateway-routes.ts";
import { GatewayCounts } from "./routes/gateway-shared.ts";
import { gpuRoutes } from "./routes/gpus.ts";
import { healthRoutes } from "./routes/health.ts";
import { historyRoutes } from "./routes/history.ts";
import { killRoutes } from "./routes/kill.ts";
import { logRoutes } from "./routes/logs.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { modelRoutes } from "./routes/models.ts";
import { orphanRoutes } from "./routes/orphans.ts";
import { processRoutes } from "./routes/processes.ts";
import { registryCompatRoutes } from "./routes/registry-compat.ts";
import { setupRoutes } from "./routes/setup.ts";
import { tokenRoutes } from "./routes/tokens.ts";
import { usageRoutes } from "./routes/usage.ts";
import { watcherRoutes } from "./routes/watcher.ts";
import { createStreamLimiter } from "./streams.ts";

/** What {@link createApp} builds the API from. */
export interface AppDeps {
  readonly controller: Controller;
  /** the watcher: its ticks feed /processes and /metrics, its events feed /events @default none (live status on every request; registry events only) */
  readonly supervisor?: SupervisorLike;
  /** `<home>/metrics.db`, read by the usage routes @default none (their series are empty) */
  readonly metrics?: MetricsStore;
  /** the gateway behind `/v1/*`, Ollama's `/api/*` and `/upstream/*` @default createGateway({ controller }) */
  readonly gateway?: Gateway;
  /** the server's own bearer token (admin scope) @default none */
  readonly token?: string;
  /** named, scoped tokens (`<home>/tokens.json`) @default none */
  readonly tokens?: TokenStore;
  /**
   * `"none"` turns authentication off (serve() allows it on a loopback bind only); `"token"` with
   * neither `token` nor `tokens` refuses every route but the public ones.
   * @default "token"
   */
  readonly auth?: "token" | "none";
  /** `"none"` leaves only the gateway's inference routes open; a function is asked on each request (a reload changes it) @default "token" */
  readonly inferenceAuth?: "token" | "none" | (() => "token" | "none");
  /** the bind address, accepted as a `Host` @default "127.0.0.1" */
  readonly bindHost?: string;
  /** more names accepted as a `Host` (`server.hosts`) @default [] */
  readonly hosts?: readonly string[];
  /** concurrent event and log-follow streams; more get 429 @default 64 */
  readonly maxStreams?: number;
  /** origins allowed by CORS @default [] (no CORS headers at all) */
  readonly cors?: readonly string[];
  /** receives one line per request and unexpected failures @default none */
  readonly logger?: Logger;
  /** largest request body accepted @default 65536 */
  readonly bodyLimitBytes?: number;
  /** SSE heartbeat interval @default 15000 */
  readonly heartbeatMs?: number;
  /**
   * The web page as `Bun.serve` routes (`pageRoutes()` or `webRoutes()` of @corral/web), served
   * through Bun's own routes, so only on a listening server. The composing entry passes it (the CLI's `serve`):
   * the API does not depend on the page.
   * @default {} (no page)
   */
  readonly page?: Readonly<Record<string, Bun.HTMLBundle | Response>>;
}

/**
 * The corral REST API as an Elysia app: a thin adapter that parses, calls @corral/core and
 * renders. Core's typed errors become statuses in one onError, with `{ error: { code, message } }`.
 * Call `.listen()` on it, or `.handle(request)` in tests; `serve()` does the former with recovery,
 * the watcher and signal handling.
 * @example
 * const controller = await createController({ home: "/var/lib/corral" })
 * const app = createApp({ controller, token: process.env.CORRAL_TOKEN })
 * const res = await app.handle(new Request("http://localhost/api/v1/processes"))
 * @example
 * // with the page, composed by whoever depends on both (the CLI's `serve`)
 * createApp({ controller, page: webRoutes() }).listen({ port: 7070, development: false })
 */
export function createApp(deps: AppDeps) {
  const { controller, supervisor, logger } = deps;
  const gateway = deps.gateway ?? createGateway({ controller });
  const counts = new GatewayCounts();
  const routeDeps: RouteDeps = {
    controller,
    supervisor,
    heartbeatMs: deps.heartbeatMs ?? 15_000,
    streams: createStreamLimiter(deps.maxStreams),
    startedAt: Date.now(),
  };
  const app = new Elysia({
    // HTML bundles go through Bun.serve's own routes: Elysia cannot serve them once hooks exist.
    serve: { routes: { ...deps.page, ...openapiAssetRoutes() } },
  });
  if (logger) app.use(requestLog(logger));
  return app
    .onError({ as: "global" }, ({ code, error, set, request }) => {
      const path = `${request.method} ${new URL(request.url).pathname}`;
      const reply = describeError(error, code, path);
      if (reply.unexpected) logger?.("error", `${path}: ${(error as Error)?.stack ?? String(error)}`);
      set.status = reply.status;
      for (const [name, value] of Object.entries(reply.headers ?? {})) set.headers[name] = value;
      return reply.body;
    })
    .use(cors({ origins: deps.cors }))
    .use(browserGuard({ bindHost: deps.bindHost, hosts: deps.hosts, origins: deps.cors }))
    .use(auth({ token: deps.token, tokens: deps.tokens, mode: deps.auth, inferenceAuth: deps.inferenceAuth }))
    .use(audit(controller))
    .use(jsonBody({ limitBytes: deps.bodyLimitBytes }))
    .use(
      openapi({
        path: "/openapi",
        provider: "swagger-ui",
        swagger: { cdn: SWAGGER_ASSETS.script, theme: SWAGGER_ASSETS.style },
        documentation: {
          info: {
            title: "corral",
            version: "0.1.0",
            description:
              "Keeps track of llama.cpp llama-server processes. Errors are `{ error: { code, message } }`: " +
              "401 missing or wrong token, 403 not a process corral may touch, 404 unknown slot, model or pid, " +
              "409 slot or port in use, 413 body too large, 422 invalid field, 503 load failed or registry busy.",
          },
          components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
          security: deps.auth === "none" ? [] : [{ bearer: [] }],
        },
      }),
    )
    .use(healthRoutes(routeDeps))
    .use(registryCompatRoutes(routeDeps))
    .use(modelRoutes(routeDeps))
    .use(logRoutes(routeDeps))
    .use(processRoutes(routeDeps))
    .use(orphanRoutes(routeDeps))
    .use(killRoutes(routeDeps))
    .use(usageRoutes({ controller, metrics: deps.metrics }))
    .use(gpuRoutes(routeDeps))
    .use(historyRoutes(routeDeps))
    .use(watcherRoutes(routeDeps))
    .use(eventRoutes(routeDeps))
    .use(configRoutes(routeDeps))
    .use(tokenRoutes({ tokens: deps.tokens }))
    .use(setupRoutes(routeDeps))
    .use(metricsRoutes({ ...routeDeps, gateway, counts }))
    .use(gatewayRoutes({ gateway, counts, supervisor }));
}

/**
 * The app {@link createApp} returns.
 * @example
 * const app: CorralApp = createApp({ controller }); app.listen({ port: 7070, development: false })
 */
export type CorralApp = ReturnType<typeof createApp>;
