/** The page's HTTP client: bearer token from sessionStorage, a token prompt on 401, typed errors. */

/**
 * Where the token is kept: this browser tab's session only, never localStorage.
 * @example
 * sessionStorage.getItem(TOKEN_KEY)
 */
export const TOKEN_KEY = "corral.token";

/**
 * A failed API call, carrying the API's own `{ error: { code, message } }` where it sent one.
 * @example
 * try { await api.post("/api/v1/models/load", body) } catch (e) { if (e instanceof ApiError) show(e.message) }
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** The bits of `Storage` the client uses; tests pass a plain object. */
export type TokenStore = Pick<Storage, "getItem" | "setItem" | "removeItem">;

/** Options of {@link createApiClient}. */
export interface ApiClientOptions {
  /** prefix of every path @default "" (same origin) */
  readonly base?: string;
  /** @default globalThis.fetch */
  readonly fetch?: (input: string, init?: RequestInit) => Promise<Response>;
  /** @default sessionStorage */
  readonly storage?: TokenStore;
  /**
   * Asks the person for a token after a 401; resolves undefined when they cancel.
   * Concurrent 401s share one prompt.
   * @default () => Promise.resolve(undefined)
   */
  readonly askToken?: (message: string) => Promise<string | undefined>;
}

/** What {@link createApiClient} returns. */
export interface ApiClient {
  get<T = unknown>(path: string): Promise<T>;
  post<T = unknown>(path: string, body?: unknown): Promise<T>;
  del<T = unknown>(path: string): Promise<T>;
  /** a raw request with the token, a prompt on 401 and {@link ApiError} on failure */
  request(path: string, init?: RequestInit): Promise<Response>;
  /** the stored token, if any */
  token(): string | undefined;
  /** the 401 prompt, for callers (the event stream) that see a 401 themselves; true when a token was entered */
  reauthenticate(message: string): Promise<boolean>;
}

/**
 * Creates the client.
 * @example
 * const api = createApiClient({ askToken: (msg) => tokenDialog(msg) })
 * const rows = await api.get("/api/v1/processes")
 */
export function createApiClient(options: ApiClientOptions = {}): ApiClient {
  const { base = "", askToken = () => Promise.resolve(undefined) } = options;
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const storage = options.storage ?? globalThis.sessionStorage;
  let pendingPrompt: Promise<string | undefined> | undefined;

  const token = () => storage.getItem(TOKEN_KEY) || undefined;
  const reauthenticate = async (message: string) => {
    pendingPrompt ??= askToken(message).finally(() => (pendingPrompt = undefined));
    const entered = (await pendingPrompt)?.trim();
    if (!entered) return false;
    storage.setItem(TOKEN_KEY, entered);
    return true;
  };

  const request = async (path: string, init: RequestInit = {}): Promise<Response> => {
    for (;;) {
      const headers = new Headers(init.headers);
      const current = token();
      if (current) headers.set("Authorization", `Bearer ${current}`);
      const response = await doFetch(base + path, { ...init, headers });
      if (response.ok) return response;
      const error = await errorOf(response);
      if (response.status !== 401) throw error;
      // Another call's prompt got a token while this one was in flight: use it, don't ask again.
      if (token() !== current) continue;
      if (current) storage.removeItem(TOKEN_KEY);
      if (!(await reauthenticate(current ? `The token was refused: ${error.message}` : error.message))) throw error;
    }
  };

  const json = async <T>(path: string, init: RequestInit = {}): Promise<T> => {
    const response = await request(path, { ...init, headers: { Accept: "application/json", ...init.headers } });
    const text = await response.text();
    if (!text) return undefined as T;
    return (response.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text) as T;
  };

  return {
    request,
    token,
    reauthenticate,
    get: (path) => json(path),
    post: (path, body) =>
      json(path, {
        method: "POST",
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "Content-Type": "application/json" } }),
      }),
    del: (path) => json(path, { method: "DELETE" }),
  };
}

/**
 * The {@link ApiError} for a failed response: the API's `{ error: { code, message } }`, an
 * Elysia validation body (`{ type: "validation", property, summary }`), plain text, or the status line.
 * @example
 * throw await errorOf(response)
 */
export async function errorOf(response: Response): Promise<ApiError> {
  const fallback = `${response.status} ${response.statusText || "error"}`.trim();
  const text = await response.text().catch(() => "");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return new ApiError(response.status, `HTTP_${response.status}`, text.trim().slice(0, 300) || fallback);
  }
  const b = body as { error?: unknown; message?: unknown; summary?: unknown; property?: unknown; code?: unknown };
  const e = (b.error && typeof b.error === "object" ? b.error : b) as {
    code?: unknown;
    message?: unknown;
    summary?: unknown;
  };
  const code = typeof e.code === "string" ? e.code : `HTTP_${response.status}`;
  const where = typeof b.property === "string" && b.property ? `${b.property.replace(/^\//, "")}: ` : "";
  const message = [e.message, e.summary, b.error].find((m): m is string => typeof m === "string" && m.length > 0);
  return new ApiError(response.status, code, message ? where + message : fallback);
}

/**
 * Takes the token from the link `corral serve` prints (`http://127.0.0.1:7070/#token=…`) into
 * sessionStorage and drops it from the address bar, so it stays out of the history, bookmarks
 * and screenshots. A fragment never reaches a server log or a Referer in the first place.
 * @returns whether a token was found
 * @example
 * takeTokenFromFragment(location, history, sessionStorage)
 */
export function takeTokenFromFragment(
  location: Pick<Location, "hash" | "pathname" | "search">,
  history: Pick<History, "replaceState">,
  storage: Pick<Storage, "setItem">,
): boolean {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = params.get("token")?.trim();
  if (!token) return false;
  storage.setItem(TOKEN_KEY, token);
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
  return true;
}
