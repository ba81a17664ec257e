import { readFileSync } from "node:fs";
import { type Controller, createGateway, type GatewayModelView, serverUrl } from "@corral/core";

/**
 * Calls this home's running `corral serve` (the configuration's `server.host` and `server.port`)
 * with the token a user of this home has: CORRAL_TOKEN, `server.token`, else `<home>/token`.
 * @returns the response, or undefined when no server answers
 * @example
 * const res = await callServer(controller, "/api/v1/config/reload", { method: "POST" })
 */
export async function callServer(
  controller: Controller,
  path: string,
  init: RequestInit & { readonly timeoutMs?: number } = {},
): Promise<Response | undefined> {
  const { host, port } = controller.config.server;
  let token = process.env.CORRAL_TOKEN || controller.config.server.token;
  try {
    token ??= readFileSync(controller.paths.token, "utf8").trim();
  } catch {
    // no token file: the server runs without one, or not at all
  }
  const headers = new Headers(init.headers);
  if (token) headers.set("authorization", `Bearer ${token}`);
  try {
    return await fetch(serverUrl(host, port, path), {
      ...init,
      headers,
      signal: AbortSignal.timeout(init.timeoutMs ?? 5000),
    });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ConnectionRefused" || code === "ECONNREFUSED" || (error as Error).name === "TimeoutError") {
      return undefined;
    }
    throw error;
  }
}

/**
 * The gateway's view of the models: the running `corral serve`'s (requests in flight, served and speed
 * live in its memory) when it answers within half a second and agrees with the registry on every PID,
 * else what the registry alone tells (state, last request, unload time).
 * @example
 * for (const m of await gatewayViews(controller)) console.log(m.id, m.state, m.in_flight)
 */
export async function gatewayViews(controller: Controller): Promise<GatewayModelView[]> {
  const local = await createGateway({ controller }).models();
  try {
    const res = await callServer(controller, "/v1/models", { timeoutMs: 500 });
    if (!res?.ok) return local;
    const body = (await res.json()) as { data?: { corral?: GatewayModelView }[] };
    const live = body.data?.flatMap((d) => (d.corral ? [d.corral] : [])) ?? [];
    const agrees = local.every((l) => live.some((v) => v.id === l.id && v.pid === l.pid));
    return agrees ? live : local;
  } catch {
    return local;
  }
}
