/**
 * What each token scope may do, decided from the method and the path alone so that every
 * front-end (the API's auth plugin, the gateway) applies the same rule.
 */

/**
 * A token's scope. `read` may only GET; `control` may also load, unload, switch, verify, kill and
 * adopt; `admin` may also manage tokens; `inference` may only call the gateway's model routes.
 * @example
 * const scope: TokenScope = "control"
 */
export type TokenScope = "read" | "control" | "admin" | "inference";

/** Every scope, weakest first (`inference` stands apart: it is no subset of the others). */
export const TOKEN_SCOPES: readonly TokenScope[] = ["inference", "read", "control", "admin"];

/** Ollama's routes that the gateway serves: only these of `/api/*` are inference routes. */
const OLLAMA_PATHS = new Set(["chat", "generate", "embed", "embeddings", "tags", "show", "version", "ps"]);

/**
 * Whether a path is one of the gateway's inference routes: OpenAI's `/v1/*`, `/upstream/<model>/*`
 * and Ollama's `/api/{chat,generate,embed,tags,show,version,ps}`.
 * @example
 * isInferencePath("/v1/chat/completions") // true
 * isInferencePath("/api/v1/processes") // false
 */
export function isInferencePath(path: string): boolean {
  if (path === "/v1" || path.startsWith("/v1/") || path.startsWith("/upstream/")) return true;
  const ollama = /^\/api\/([a-z]+)\/?$/.exec(path);
  return ollama?.[1] !== undefined && OLLAMA_PATHS.has(ollama[1]);
}

/**
 * Whether a path manages tokens (only `admin` may touch those, reading included: names and
 * expiries say who has access).
 * @example
 * isTokenPath("/api/v1/tokens/ci") // true
 */
export function isTokenPath(path: string): boolean {
  return path === "/api/v1/tokens" || path.startsWith("/api/v1/tokens/");
}

/**
 * Whether a path is the first-run setup's (scan the disk, add models to corral.yaml): admin only.
 * @example
 * isSetupPath("/api/v1/setup/scan") // true
 */
export function isSetupPath(path: string): boolean {
  return path === "/api/v1/setup" || path.startsWith("/api/v1/setup/");
}

/** Methods that change nothing. */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Whether a method changes state (POST, PUT, PATCH, DELETE and anything unknown).
 * @example
 * isStateChanging("POST") // true
 */
export function isStateChanging(method: string): boolean {
  return !SAFE_METHODS.has(method.toUpperCase());
}

/**
 * Whether a token of `scope` may make this request; `undefined` when it may, else why not.
 * Inference routes take any scope (a model call is a read of the models): `read` may only GET
 * there too, `control` and `admin` may POST.
 * @example
 * scopeRefusal("read", "POST", "/api/v1/models/load") // 'a "read" token may only GET'
 * scopeRefusal("control", "POST", "/api/v1/kill") // undefined
 */
export function scopeRefusal(scope: TokenScope, method: string, path: string): string | undefined {
  const changes = isStateChanging(method);
  if (scope === "inference") {
    return isInferencePath(path)
      ? undefined
      : 'an "inference" token may only call the model routes (/v1/*, /api/chat …)';
  }
  if (isTokenPath(path) && scope !== "admin") return 'only an "admin" token may manage tokens';
  // The scan lists files of the server's user; an added model becomes something corral will run.
  if (isSetupPath(path) && scope !== "admin") return 'only an "admin" token may scan for models and change corral.yaml';
  if (scope === "read" && changes) return 'a "read" token may only GET';
  return undefined;
}
