import { isInferencePath, scopeRefusal, secretsMatch, type TokenScope, type TokenStore } from "@corral/core";
import { Elysia } from "elysia";
import { HttpError } from "./errors.ts";

/**
 * Routes anyone may call: the controller's own health, so a load balancer needs no secret, and
 * the OpenAPI document and its page (the API's shape, no data: the same as the source), so the
 * page opens in a browser that has no way to send a header.
 */
const PUBLIC = new Set(["GET /api/v1/health", "HEAD /api/v1/health", "GET /openapi", "GET /openapi/json"]);

/**
 * Streams a browser opens with EventSource, which cannot send headers: these also take the
 * token as `?access_token=` (RFC 6750 §2.3). The request log never prints query strings.
 */
const QUERY_TOKEN_PATHS = new Set(["/api/v1/events", "/api/v1/logs"]);

/**
 * Compares two secrets in constant time.
 * @example
 * tokensMatch("s3cret", "s3cret") // true
 */
export const tokensMatch = secretsMatch;

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
 * Who made a request, once auth let it through: the token's name (`server` for the server's own
 * token, `anonymous` with `auth: none`) and its scope.
 * @example
 * const who: Caller = { name: "ci", scope: "read" }
 */
export interface Caller {
  readonly name: string;
  readonly scope: TokenScope;
}

/**
 * Options of {@link auth}.
 * @example
 * auth({ token: "s3cret", tokens: createTokenStore({ file }) })
 */
export interface AuthOptions {
  /** the server's own token (admin scope) @default none */
  readonly token?: string;
  /** named, scoped tokens @default none */
  readonly tokens?: TokenStore;
  /**
   * `"none"` lets every request through as `anonymous` with admin scope (serve() allows it on a
   * loopback bind only). `"token"` with neither `token` nor `tokens` refuses everything but the
   * public routes.
   * @default "token"
   */
  readonly mode?: "token" | "none";
  /**
   * `"none"` leaves the gateway's inference routes open (gateway.auth: none, loopback only); the
   * rest still needs a token. The browser checks apply either way.
   * A function is asked on each request, so a configuration reload applies at once.
   * @default "token"
   */
  readonly inferenceAuth?: "token" | "none" | (() => "token" | "none");
}

/** The caller of each request that auth let through (read by the audit hook). */
const callers = new WeakMap<Request, Caller>();

/**
 * The caller auth found for a request, or undefined for a public route.
 * @example
 * callerOf(request)?.name // "ci"
 */
export function callerOf(request: Request): Caller | undefined {
  return callers.get(request);
}

/**
 * Bearer-token guard for every route except the public ones. A request carries the server's
 * token or a named one; its scope decides what it may do (`read` only GETs, `control` also
 * loads and kills, `admin` also manages tokens, `inference` only the gateway's model routes).
 * CORS preflights pass: browsers never send credentials on them. Each refusal says why.
 * @default options.mode = "token", options.inferenceAuth = "token"
 * @example
 * new Elysia().use(auth({ token: process.env.CORRAL_TOKEN }))
 */
export function auth(options: AuthOptions = {}) {
  const { token, tokens, mode = "token", inferenceAuth = "token" } = options;
  return new Elysia().onRequest(({ request }) => {
    if (request.method === "OPTIONS") return;
    const path = new URL(request.url).pathname;
    if (PUBLIC.has(`${request.method} ${path}`)) return;
    if (mode === "none") {
      callers.set(request, { name: "anonymous", scope: "admin" });
      return;
    }
    const inference = typeof inferenceAuth === "function" ? inferenceAuth() : inferenceAuth;
    if (inference === "none" && isInferencePath(path)) {
      callers.set(request, { name: "anonymous", scope: "inference" });
      return;
    }
    const caller = identify(tokenOf(request), token, tokens);
    const refused = scopeRefusal(caller.scope, request.method, path);
    if (refused) {
      throw new HttpError(
        403,
        "FORBIDDEN",
        `scope check: token "${caller.name}" may not ${request.method} ${path}: ${refused}`,
      );
    }
    callers.set(request, caller);
  });
}

function identify(given: string | undefined, token: string | undefined, tokens: TokenStore | undefined): Caller {
  if (given === undefined) {
    throw new HttpError(
      401,
      "UNAUTHORIZED",
      "this corral server needs a token: send `Authorization: Bearer <token>` " +
        "(the page takes it from the link `corral serve` prints; `corral token create` makes more)",
      { "www-authenticate": 'Bearer realm="corral"' },
    );
  }
  if (token !== undefined && secretsMatch(given, token)) return { name: "server", scope: "admin" };
  const check = tokens?.verify(given);
  if (check?.ok) return { name: check.name, scope: check.scope };
  const expired = check && !check.ok && check.reason === "expired";
  throw new HttpError(401, "UNAUTHORIZED", expired ? `the token "${check.name}" has expired` : "the token is wrong", {
    "www-authenticate": 'Bearer realm="corral", error="invalid_token"',
  });
}
