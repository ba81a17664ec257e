import { Elysia } from "elysia";

/**
 * CORS for the configured origins only (`server.cors` in corral.yaml); with none configured no
 * CORS header is ever sent, so browsers keep other sites' pages away from the API.
 * `"*"` allows any origin (the token still guards every route; serve() refuses `"*"` without one).
 * @default origins = [] (no CORS)
 * @example
 * new Elysia().use(cors({ origins: ["https://ops.example.com"] }))
 */
export function cors(options: { readonly origins?: readonly string[] } = {}) {
  const origins = new Set(options.origins ?? []);
  const plugin = new Elysia();
  if (origins.size === 0) return plugin;
  return plugin.onRequest(({ request, set }) => {
    const origin = request.headers.get("origin");
    if (!origin || !(origins.has(origin) || origins.has("*"))) return;
    set.headers["access-control-allow-origin"] = origin;
    set.headers.vary = "Origin";
    if (request.method === "OPTIONS" && request.headers.has("access-control-request-method")) {
      return new Response(null, {
        status: 204,
        headers: {
          "access-control-allow-origin": origin,
          "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
          "access-control-allow-headers": "authorization, content-type",
          "access-control-max-age": "600",
          vary: "Origin",
        },
      });
    }
  });
}
