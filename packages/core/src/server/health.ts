/**
 * Talking to a llama-server over HTTP: `/health` (200 ready, 503 still loading the model)
 * and `/props` (which model it actually serves).
 */

import type { HealthReport } from "./views.ts";

export type { HealthReport };

/** Where a server listens, and how to reach it. */
export interface ServerAddress {
  readonly host: string;
  readonly port: number;
  /** @default 2000 */
  readonly timeoutMs?: number;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** cancels the request early */
  readonly signal?: AbortSignal;
  /** the server's API key (server_api_key: auto), sent as `Authorization: Bearer` @default none */
  readonly apiKey?: string;
}

/**
 * The headers corral's own requests to a llama-server carry: its API key where it has one.
 * @example
 * fetch(serverUrl(host, port, "/slots"), { headers: serverHeaders(entry.api_key) })
 */
export function serverHeaders(apiKey: string | undefined): Record<string, string> {
  return apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` };
}

/**
 * The one way to write a server's address as a URL: an IPv6 literal gets brackets.
 * @default path = ""
 * @example
 * serverUrl("::1", 8081, "/health") // "http://[::1]:8081/health"
 * serverUrl("127.0.0.1", 8081) // "http://127.0.0.1:8081"
 */
export function serverUrl(host: string, port: number, path = ""): string {
  const h = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `http://${h}:${port}${path}`;
}

/**
 * Whether an address only reaches this machine (localhost, 127.0.0.0/8, ::1).
 * @example
 * isLoopbackHost("[::1]") // true
 * isLoopbackHost("0.0.0.0") // false
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || h === "::ffff:127.0.0.1";
}

const WILDCARD = new Set(["0.0.0.0", "::", "[::]", ""]);

/**
 * Where corral may send a server's `/health`, `/props` and `/slots` requests: its host when that
 * is the configured host or a loopback address; the configured host (or 127.0.0.1, if that is a
 * wildcard too) when it listens on every address; undefined for anything else. An adopted server
 * started with its own `--host` elsewhere is reported, not probed: its address is someone's word,
 * and corral's requests must not go wherever that word points.
 * @example
 * probeHost(undefined, "127.0.0.1") // "127.0.0.1"
 * probeHost("0.0.0.0", "127.0.0.1") // "127.0.0.1"
 * probeHost("10.1.2.3", "127.0.0.1") // undefined
 */
export function probeHost(host: string | undefined, configHost: string): string | undefined {
  const fallback = WILDCARD.has(configHost.trim()) ? "127.0.0.1" : configHost;
  if (host === undefined || WILDCARD.has(host.trim())) return fallback;
  if (host === configHost || isLoopbackHost(host)) return host;
  return undefined;
}

/**
 * The health report of a server that is not probed (see {@link probeHost}).
 * @example
 * notProbed("10.1.2.3").error // "not probed: it listens on 10.1.2.3, …"
 */
export function notProbed(host: string): HealthReport {
  return {
    ok: false,
    state: "error",
    ms: 0,
    error: `not probed: it listens on ${host}, and corral only sends requests to its configured host or loopback`,
  };
}

function requestSignal(timeoutMs: number, signal: AbortSignal | undefined): AbortSignal {
  const timeout = AbortSignal.timeout(Math.max(1, timeoutMs));
  return signal ? AbortSignal.any([timeout, signal]) : timeout;
}

function messageOf(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const b = body as { status?: unknown; error?: unknown };
  if (
    typeof b.error === "object" &&
    b.error !== null &&
    typeof (b.error as { message?: unknown }).message === "string"
  ) {
    return (b.error as { message: string }).message;
  }
  if (typeof b.error === "string") return b.error;
  return typeof b.status === "string" ? b.status : undefined;
}

async function readJson(response: Response): Promise<unknown> {
  try {
    return JSON.parse(await response.text());
  } catch {
    return undefined;
  }
}

/**
 * One `/health` request. 200 with `{"status":"ok"}` → ok; 503 → loading; any other answer
 * → error; no answer (refused, timed out) → unreachable. Never throws.
 * @default timeoutMs = 2000, fetch = globalThis.fetch
 * @example
 * const health = await checkHealth({ host: "127.0.0.1", port: 8081 })
 * if (health.state === "loading") console.log("still loading the model")
 */
export async function checkHealth(options: ServerAddress): Promise<HealthReport> {
  const { host, port, timeoutMs = 2000, fetch: fetchFn = globalThis.fetch, signal } = options;
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  let response: Response;
  try {
    response = await fetchFn(serverUrl(host, port, "/health"), { signal: requestSignal(timeoutMs, signal) });
  } catch (error) {
    const why =
      error instanceof Error && error.name === "TimeoutError"
        ? `no answer within ${timeoutMs} ms`
        : error instanceof Error
          ? error.message
          : String(error);
    return { ok: false, state: "unreachable", ms: ms(), error: why };
  }
  const httpStatus = response.status;
  const body = await readJson(response);
  const message = messageOf(body);
  if (httpStatus === 200 && message === "ok") return { ok: true, state: "ok", httpStatus, ms: ms() };
  if (httpStatus === 503) return { ok: false, state: "loading", httpStatus, ms: ms(), error: message ?? "loading" };
  const error =
    httpStatus === 200
      ? 'answered 200 without {"status":"ok"}: not a llama-server?'
      : (message ?? `HTTP ${httpStatus}`);
  return { ok: false, state: "error", httpStatus, ms: ms(), error };
}

/**
 * llama-server's `/props`: which model file it serves. Undefined when the server does not
 * answer it (older builds, not a llama-server, not reachable).
 * @default timeoutMs = 2000, fetch = globalThis.fetch
 * @example
 * (await fetchProps({ host: "127.0.0.1", port: 8081 }))?.model_path // "/models/qwen.gguf"
 */
export async function fetchProps(options: ServerAddress): Promise<{ model_path?: string } | undefined> {
  const { host, port, timeoutMs = 2000, fetch: fetchFn = globalThis.fetch, signal } = options;
  try {
    const response = await fetchFn(serverUrl(host, port, "/props"), {
      signal: requestSignal(timeoutMs, signal),
      headers: serverHeaders(options.apiKey),
    });
    const body = await readJson(response);
    if (!response.ok || typeof body !== "object" || body === null) return undefined;
    const modelPath = (body as { model_path?: unknown }).model_path;
    return typeof modelPath === "string" ? { model_path: modelPath } : {};
  } catch {
    return undefined;
  }
}

/** Options of {@link waitReady}. */
export interface WaitReadyOptions {
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
  /** pause between polls; readiness must be noticed within ~100 ms @default 20 */
  readonly intervalMs?: number;
  /** resolves with the exit code when the server process exits: stop waiting at once */
  readonly exited?: Promise<number | null>;
  readonly signal?: AbortSignal;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

/** What {@link waitReady} saw. `ms` counts from the call. */
export type WaitReadyResult =
  | { ready: true; ms: number }
  | { ready: false; reason: "exited"; exitCode: number | null; ms: number }
  | { ready: false; reason: "timeout" | "aborted"; ms: number };

type Stop = { reason: "exited"; exitCode: number | null } | { reason: "timeout" | "aborted" };

/**
 * Polls `/health` until it answers 200, the process exits, the time runs out or the signal aborts,
 * whichever comes first. Never throws.
 * @default intervalMs = 20, fetch = globalThis.fetch
 * @example
 * const ready = await waitReady({ host: "127.0.0.1", port: 8081, timeoutMs: 300_000, exited: child.exited })
 * if (!ready.ready && ready.reason === "exited") console.error(`exited with ${ready.exitCode}`)
 */
export async function waitReady(options: WaitReadyOptions): Promise<WaitReadyResult> {
  const { host, port, timeoutMs, intervalMs = 20, exited, signal, fetch: fetchFn } = options;
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  const done = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<Stop>((resolve) => {
    timer = setTimeout(() => resolve({ reason: "timeout" }), Math.max(0, timeoutMs));
    onAbort = () => resolve({ reason: "aborted" });
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    exited?.then(
      (exitCode) => resolve({ reason: "exited", exitCode }),
      () => resolve({ reason: "exited", exitCode: null }),
    );
  });
  const poll = async (): Promise<true> => {
    while (!done.signal.aborted) {
      const left = timeoutMs - (performance.now() - started);
      const health = await checkHealth({
        host,
        port,
        timeoutMs: Math.min(2000, Math.max(1, left)),
        signal: done.signal,
        ...(fetchFn ? { fetch: fetchFn } : {}),
      });
      if (health.ok) return true;
      await Bun.sleep(intervalMs);
    }
    return new Promise<true>(() => {}); // the race is already decided; stay quiet
  };
  try {
    const outcome = await Promise.race([poll(), stop]);
    if (outcome === true) return { ready: true, ms: ms() };
    return outcome.reason === "exited"
      ? { ready: false, reason: "exited", exitCode: outcome.exitCode, ms: ms() }
      : { ready: false, reason: outcome.reason, ms: ms() };
  } finally {
    done.abort();
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * The registry status a `/health` answer means: 200 → running, 503 → loading, anything else → unhealthy.
 * @example
 * statusOfHealth(await checkHealth({ host, port })) // "running"
 */
export function statusOfHealth(health: Pick<HealthReport, "state">): "running" | "loading" | "unhealthy" {
  return health.state === "ok" ? "running" : health.state === "loading" ? "loading" : "unhealthy";
}
