import { GatewayError } from "./errors.ts";
import type { Gateway } from "./gateway.ts";
import { type ForwardOptions, type ForwardRequest, forward } from "./proxy.ts";
import type { Lease } from "./types.ts";

/**
 * One request from name to answer: a lease on the model (loading it if needed), then the
 * forward. The gateway trusts its view of the registry for up to a second; a server unloaded
 * meanwhile by another process (`corral unload` beside `corral serve`) refuses the connection,
 * and the request is routed once more from a fresh read, which loads the model again.
 */

/**
 * @throws GatewayError as {@link Gateway.acquire} and {@link forward} do
 * @example
 * const { response, lease } = await routeRequest(gateway, body.model, { method: "POST", path, body: raw, signal })
 */
export async function routeRequest(
  gateway: Gateway,
  name: unknown,
  request: ForwardRequest,
  options: ForwardOptions = {},
): Promise<{ readonly response: Response; readonly lease: Lease }> {
  for (let attempt = 0; ; attempt++) {
    const lease = await gateway.acquire(name, { signal: request.signal });
    try {
      return { lease, response: await forward(lease, request, options) };
    } catch (error) {
      const code = (error as GatewayError).cause as { code?: string } | undefined;
      const refused =
        error instanceof GatewayError && error.kind === "upstream_failed" && code?.code === "ECONNREFUSED";
      if (!refused || attempt > 0) throw error;
      gateway.forget();
    }
  }
}
