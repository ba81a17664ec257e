import { createHash, timingSafeEqual } from "node:crypto";
import { Elysia } from "elysia";
import { HttpError } from "./errors.ts";

/** Routes anyone may call: the controller's own health, so a load balancer needs no secret. */
const PUBLIC = new Set(["GET /api/v1/health", "HEAD /api/v1/health"]);

/**
 * Streams a browser opens with EventSource, which cannot send headers: these also take the
 * token as `?access_token=` (RFC 6750 §2.3). The request log never prints query strings.
 */
const QUERY_TOKEN_PATHS = new Set(["/api/v1/events", "/api/v1/logs"]);

/**
 * Compares two secrets in constant time: hashing first gives equal lengths, so neither the
 * contents nor the length of the token leaks through timing.
 * @example
 * tokensMatch("s3cret", "s3cret") // true
 */
export function tokensMatch(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * The token a request carries: `Authorization: Bearer <token>`, or `?access_token=` on the
 * streaming endpoints.
 * @example
 * tokenOf(new Request("http://x/api/v1/processes", { headers: { authorization: "Bearer abc" } })) // "abc"
 */
export function tokenOf(request: Request): string | undefined {
  const header = request.headers.get("authorization");
  if (header) {
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    return match?.[1]?.trim();
  }
  const url = new URL(request.url);
  if (request.method === "GET" && QUERY_TOKEN_PATHS.has(url.pathname)) {
    return url.searchParams.get("access_token") ?? undefined;
  }
  return undefined;
}

/**
 * Bearer-token guard for every route except `GET /api/v1/health`. Without a token it lets
 * everything through (the server then only listens on loopback; serve() enforces that).
 * CORS preflights pass: browsers never send credentials on them.
 * @default token = undefined (no authentication)
 * @example
 * new Elysia().use(auth({ token: process.env.CORRAL_TOKEN }))
 */
export function auth(options: { readonly token?: string } = {}) {
  const { token } = options;
  const plugin = new Elysia();
  if (!token) return plugin;
  return plugin.onRequest(({ request }) => {
    if (request.method === "OPTIONS") return;
    const path = new URL(request.url).pathname;
    if (PUBLIC.has(`${request.method} ${path}`)) return;
    const given = tokenOf(request);
    const challenge = { "www-authenticate": 'Bearer realm="corral"' };
    if (given === undefined) {
      throw new HttpError(
        401,
        "UNAUTHORIZED",
        "this corral server needs a token: send the header `Authorization: Bearer <token>`",
        challenge,
      );
    }
    if (!tokensMatch(given, token)) {
      throw new HttpError(401, "UNAUTHORIZED", "the token is wrong", {
        "www-authenticate": 'Bearer realm="corral", error="invalid_token"',
      });
    }
  });
}
