import { readFileSync } from "node:fs";
import { type Controller, serverUrl } from "@corral/core";

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
