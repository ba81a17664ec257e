/**
 * Why the gateway could not serve a request. Each front-end family renders it in the shape its
 * clients parse (OpenAI `{"error":{"message","type","code"}}`, Ollama `{"error":"…"}`); the
 * status and, for 503, the `Retry-After` are decided here, where the reason is known.
 */

/** The kinds of gateway failure, each with one HTTP status. */
export type GatewayErrorKind =
  | "unknown_model"
  | "bad_request"
  | "queue_full"
  | "queue_timeout"
  | "swap_refused"
  | "load_failed"
  | "upstream_failed";

const STATUS: Readonly<Record<GatewayErrorKind, number>> = {
  unknown_model: 404,
  bad_request: 400,
  queue_full: 503,
  queue_timeout: 503,
  swap_refused: 503,
  load_failed: 502,
  upstream_failed: 502,
};

/**
 * A request the gateway refused or could not complete.
 * @example
 * throw new GatewayError("queue_full", 'model "qwen" has 64 requests waiting', { retryAfterS: 1 })
 */
export class GatewayError extends Error {
  readonly kind: GatewayErrorKind;
  readonly status: number;
  /** seconds a client should wait before trying again (503 only) */
  readonly retryAfterS: number | undefined;
  constructor(kind: GatewayErrorKind, message: string, options: { retryAfterS?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.kind = kind;
    this.status = STATUS[kind];
    this.retryAfterS = this.status === 503 ? (options.retryAfterS ?? 1) : undefined;
  }
}
