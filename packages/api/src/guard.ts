import { isInferencePath, isStateChanging } from "@corral/core";
import { Elysia } from "elysia";
import { HttpError } from "./errors.ts";

/**
 * Refuses requests that a web page made the browser send, in every mode, token or not: a token
 * in sessionStorage is out of another page's reach, but `auth: none` is not, and a page on a
 * rebound DNS name is "same origin" to the browser. Plain local callers (curl, scripts, the
 * CLI) send no `Origin` and a loopback `Host`, and pass.
 */

/**
 * Options of {@link browserGuard}.
 * @example
 * browserGuard({ bindHost: "127.0.0.1", hosts: ["gpu-box.lan"], origins: ["https://ops.example"] })
 */
export interface BrowserGuardOptions {
  /** the address the server listens on; its name is an accepted `Host` @default "127.0.0.1" */
  readonly bindHost?: string;
  /** more names accepted in `Host` (`server.hosts`) @default [] */
  readonly hosts?: readonly string[];
  /** CORS origins (`server.cors`): their pages may also change state @default [] */
  readonly origins?: readonly string[];
}

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/** Strips brackets and a trailing dot, lower-cases: `[::1]` → `::1`, `Localhost.` → `localhost`. */
function normalHost(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "");
}

/**
 * Whether a host name is an IP address literal. A rebinding attack needs a DNS name, so an
 * address in `Host` (a user typing the box's address on a `0.0.0.0` server) is always accepted.
 * @example
 * isIpLiteral("10.0.0.5") // true
 */
export function isIpLiteral(name: string): boolean {
  const h = normalHost(name);
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(h) || (h.includes(":") && /^[0-9a-f:.]+$/.test(h));
}

/**
 * Whether a `Host` name may reach this server: a loopback name or address, any IP literal, the
 * bind address, or one of the configured names.
 * @example
 * hostAllowed("rebind.attacker.example", { bindHost: "127.0.0.1" }) // false
 */
export function hostAllowed(name: string, options: BrowserGuardOptions = {}): boolean {
  const h = normalHost(name);
  if (LOOPBACK_NAMES.has(h) || h.endsWith(".localhost") || isIpLiteral(h)) return true;
  if (options.bindHost && normalHost(options.bindHost) === h) return true;
  return (options.hosts ?? []).some((allowed) => normalHost(allowed) === h);
}

/** Whether a content type is JSON (`application/json`, `application/x+json`, with parameters or not). */
function isJson(contentType: string | null): boolean {
  if (!contentType) return false;
  const type = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  return type === "application/json" || (type.startsWith("application/") && type.endsWith("+json"));
}

/**
 * The browser checks, as one Elysia plugin (before auth, so a refusal says which check refused):
 * a foreign `Host` gets 403 `HOST_NOT_ALLOWED`; a state-changing request with a foreign `Origin`
 * gets 403 `ORIGIN_NOT_ALLOWED`, one with `Sec-Fetch-Site: cross-site` 403 `CROSS_SITE`; a body
 * that is not `application/json` gets 415 `UNSUPPORTED_MEDIA_TYPE`.
 * @default options.bindHost = "127.0.0.1", hosts = [], origins = []
 * @example
 * new Elysia().use(browserGuard({ bindHost: "127.0.0.1" }))
 */
export function browserGuard(options: BrowserGuardOptions = {}) {
  const origins = new Set(options.origins ?? []);
  return new Elysia().onRequest(({ request }) => {
    refusal(request, origins, options);
  });
}

function refusal(request: Request, origins: ReadonlySet<string>, options: BrowserGuardOptions): void {
  const url = new URL(request.url);
  if (!hostAllowed(url.hostname, options)) {
    throw new HttpError(
      403,
      "HOST_NOT_ALLOWED",
      `host check: "${url.hostname}" is not a name of this server (loopback, the bind address, an IP address ` +
        "or a name in server.hosts); a page on a rebound DNS name cannot reach corral",
    );
  }
  if (!isStateChanging(request.method)) return;
  const origin = request.headers.get("origin");
  const listed = origin !== null && (origins.has(origin) || origins.has("*"));
  if (origin !== null && origin !== url.origin && !listed) {
    throw new HttpError(
      403,
      "ORIGIN_NOT_ALLOWED",
      `origin check: a page on ${origin} may not change anything here (only ${url.origin} and server.cors origins)`,
    );
  }
  if (request.headers.get("sec-fetch-site")?.toLowerCase() === "cross-site" && !listed) {
    throw new HttpError(
      403,
      "CROSS_SITE",
      "cross-site check: the browser marked this request Sec-Fetch-Site: cross-site; corral refuses it",
    );
  }
  if (request.body !== null && !isJson(request.headers.get("content-type"))) {
    const declared = Number(request.headers.get("content-length") ?? Number.NaN);
    if (declared === 0) return;
    // Ollama's own examples are `curl -d '{…}'` (form-encoded by curl's default). A browser sends
    // Origin on every POST, so a request to a model route without Origin or Sec-Fetch-* is no page's.
    if (isInferencePath(url.pathname) && origin === null && !request.headers.has("sec-fetch-site")) return;
    throw new HttpError(
      415,
      "UNSUPPORTED_MEDIA_TYPE",
      `content-type check: request bodies must be application/json (got ${request.headers.get("content-type") ?? "none"})`,
    );
  }
}
