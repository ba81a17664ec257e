import { routeRequest } from "@corral/core";
import { Elysia } from "elysia";
import { type GatewayRouteDeps, openaiError, rawBody, untimed } from "./gateway-shared.ts";

/**
 * `/upstream/<model>/<path>`: any other endpoint of a model's llama-server (`/props`, `/slots`,
 * `/tokenize`, `/metrics` …), loading the model first if needed, passed through as it is.
 */

/**
 * Forwards one request to `<path>` on the model's llama-server.
 * @example
 * return proxyUpstream(deps, request, "qwen", "slots")
 */
export async function proxyUpstream(
  deps: GatewayRouteDeps,
  request: Request,
  model: string,
  rest: string,
): Promise<Response> {
  try {
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    const body = hasBody ? await rawBody(request) : undefined;
    const search = new URL(request.url).search;
    const { response, lease } = await routeRequest(deps.gateway, decodeURIComponent(model), {
      method: request.method,
      path: `/${rest}${search}`,
      headers: request.headers,
      body,
      signal: request.signal,
    });
    deps.counts.add(lease.model.id, request);
    return response;
  } catch (error) {
    return openaiError(error);
  }
}

/**
 * The passthrough plugin.
 * @example
 * app.use(gatewayUpstreamRoutes({ gateway, counts }))
 */
export function gatewayUpstreamRoutes(deps: GatewayRouteDeps) {
  return new Elysia({ detail: { tags: ["gateway"] } }).all(
    "/upstream/:model/*",
    ({ request, params, server }) => proxyUpstream(deps, untimed(request, server), params.model, params["*"]),
    { parse: "none", detail: { summary: "Any other llama-server endpoint of a model, passed through" } },
  );
}
