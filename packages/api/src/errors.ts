import { CorralError, type CorralErrorCode, type ErrorBody } from "@corral/core";
import { ValidationError } from "elysia";

// The body of every error response is core's ErrorBody (its schema is ErrorBodySchema).
export type { ErrorBody };

/**
 * An error raised by the HTTP layer itself (a missing token, a body too large, bad JSON):
 * the status is decided where it is thrown.
 * @example
 * throw new HttpError(413, "PAYLOAD_TOO_LARGE", "request bodies are limited to 65536 bytes")
 */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, code: string, message: string, headers: Readonly<Record<string, string>> = {}) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/**
 * HTTP status of each core error code. KILL_FAILED is 503, not 500: a process that survives
 * SIGKILL is usually in uninterruptible sleep, a state of the machine that a retry can outlast,
 * and 500 stays reserved for corral's own bugs.
 * @example
 * STATUS_OF_CODE.SLOT_IN_USE // 409
 */
export const STATUS_OF_CODE: Readonly<Record<CorralErrorCode, number>> = {
  NOT_FOUND: 404,
  NO_SUCH_PROCESS: 404,
  UNKNOWN_MODEL: 404,
  NOT_OUR_PROCESS: 403,
  SLOT_IN_USE: 409,
  PORT_IN_USE: 409,
  INVALID_INPUT: 400,
  INVALID_NAME: 422,
  PORT_NOT_ALLOWED: 422,
  CONFIG_INVALID: 400,
  LOAD_FAILED: 503,
  REGISTRY_CORRUPT: 503,
  LOCK_TIMEOUT: 503,
  STORE_WRITE_FAILED: 503,
  KILL_FAILED: 503,
  UNSAFE_PATH: 403,
};

/**
 * What one onError call sends back.
 * @example
 * const { status, body } = describeError(error, code)
 */
export interface ErrorReply {
  readonly status: number;
  readonly body: ErrorBody;
  readonly headers?: Readonly<Record<string, string>>;
  /** true for failures that are corral's own fault, worth logging with their stack */
  readonly unexpected: boolean;
}

/**
 * Turns anything a handler or Elysia threw into a status and an `{ error: { code, message } }` body.
 * `elysiaCode` is the `code` Elysia passes to onError ("VALIDATION", "PARSE", "NOT_FOUND" …).
 * @example
 * const { status, body } = describeError(new EntryNotFoundError("0"), "UNKNOWN") // 404, NOT_FOUND
 */
export function describeError(error: unknown, elysiaCode: string | number, path = ""): ErrorReply {
  // Elysia wraps whatever a parser throws (our 413 and bad-JSON errors) in a ParseError.
  if (elysiaCode === "PARSE" && (error as { cause?: unknown }).cause instanceof HttpError) {
    return describeError((error as { cause: HttpError }).cause, "UNKNOWN", path);
  }
  if (error instanceof HttpError) {
    return { status: error.status, body: body(error.code, error.message), headers: error.headers, unexpected: false };
  }
  if (error instanceof CorralError) {
    return { status: STATUS_OF_CODE[error.code] ?? 500, body: body(error.code, error.message), unexpected: false };
  }
  if (error instanceof AggregateError) return describeAggregate(error);
  if (error instanceof ValidationError || elysiaCode === "VALIDATION") return describeValidation(error);
  if (elysiaCode === "PARSE") {
    return { status: 400, body: body("INVALID_JSON", "the request body is not valid JSON"), unexpected: false };
  }
  if (elysiaCode === "NOT_FOUND") {
    return { status: 404, body: body("NOT_FOUND", `no such endpoint: ${path}`), unexpected: false };
  }
  const status = statusOf(error);
  if (status !== undefined && status < 500) {
    return { status, body: body(String(elysiaCode), messageOf(error)), unexpected: false };
  }
  return {
    status: 500,
    body: body(
      "INTERNAL",
      `corral failed unexpectedly: ${messageOf(error)} (this is a bug; the server log has the details)`,
    ),
    unexpected: true,
  };
}

/**
 * Several failures at once. When they all map to one status that status is used; when they
 * differ, 207 Multi-Status says "look at each item".
 */
function describeAggregate(error: AggregateError): ErrorReply {
  const items = error.errors.map((e) => {
    const one = describeError(e, "UNKNOWN");
    return { status: one.status, code: one.body.error.code, message: one.body.error.message };
  });
  const statuses = new Set(items.map((i) => i.status));
  const status = statuses.size === 1 ? (items[0]?.status ?? 207) : 207;
  const message = `${error.message}: ${items.map((i) => i.message).join("; ")}`;
  return {
    status,
    body: { error: { code: "PARTIAL_FAILURE", message, errors: items } },
    unexpected: items.some((i) => i.status >= 500 && i.code === "INTERNAL"),
  };
}

/** 422 with the field named: `body.gpu_id: …`, `query.lines: …`, `params.slot: …`. */
function describeValidation(error: unknown): ErrorReply {
  const v = error as ValidationError;
  const custom = typeof v.customError === "string" ? v.customError : undefined;
  const first = v.valueError;
  const field = first?.path ? first.path.replace(/^\//, "").replaceAll("/", ".") : "";
  const where = v.type === "property" || !v.type ? "" : v.type;
  const name = [where, field].filter(Boolean).join(".") || "request";
  let detail = custom ?? first?.message ?? "is invalid";
  if (!custom && first) {
    const summary = v.all[0]?.summary;
    if (summary) detail = summary;
  }
  if (v.type === "response") {
    return {
      status: 500,
      body: body(
        "INTERNAL",
        `corral built a response that does not match its own schema (${name}: ${detail}); this is a bug`,
      ),
      unexpected: true,
    };
  }
  // Custom schema errors name their own field (see schemas.ts): Elysia loses the path for query numbers.
  return { status: 422, body: body("VALIDATION", custom ?? `${name}: ${detail}`), unexpected: false };
}

function body(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | undefined)?.status;
  return typeof status === "number" && status >= 400 && status < 600 ? status : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
