import type { Gateway } from "@corral/core";
import { Elysia } from "elysia";
import type { SupervisorLike } from "../deps.ts";
import { gatewayOllamaRoutes } from "./gateway-ollama.ts";
import { gatewayOpenAIRoutes } from "./gateway-openai.ts";
import type { GatewayCounts } from "./gateway-shared.ts";
import { gatewayUpstreamRoutes } from "./gateway-upstream.ts";

/**
 * Every gateway route: OpenAI's `/v1/*`, Ollama's `/api/*`, and `/upstream/<model>/<path>`,
 * on the same app and port as the management API. The gateway's idle sweep starts here; whoever
 * made the gateway stops it (serve() does, after the app, so pending last-request times are written).
 * @example
 * app.use(gatewayRoutes({ gateway: createGateway({ controller }), counts: new GatewayCounts(), supervisor }))
 */
export function gatewayRoutes(deps: {
  readonly gateway: Gateway;
  readonly counts: GatewayCounts;
  readonly supervisor: SupervisorLike | undefined;
}) {
  deps.gateway.start();
  return new Elysia({ name: "gateway" })
    .use(gatewayOpenAIRoutes(deps))
    .use(gatewayOllamaRoutes(deps))
    .use(gatewayUpstreamRoutes(deps));
}
