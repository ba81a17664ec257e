import { type Gateway, GatewayError } from "@corral/core";
import { callerOf } from "../auth.ts";
import { readLimited } from "../read-limited.ts";

/**
 * What the gateway's route plugins share: the raw body reader (the request is forwarded byte
 * for byte, never re-encoded), the error shapes of each client family, and the request counts
 * `/metrics` reports per model and per token.
 */

const OLLAMA_ROUTES = /^\/api\/(chat|generate|embed|embeddings|tags|show|version|ps)\/?$/;

/**
 * Whether a path is one of the gateway's routes, which read their own bodies (bigger than the
 * management API's, and forwarded unparsed).
 * @example
 * isGatewayPath("/v1/chat/completions") // true
 * isGatewayPath("/api/v1/processes") // false
 */
export function isGatewayPath(path: string): boolean {
  return path.startsWith("/v1/") || path.startsWith("/upstream/") || OLLAMA_ROUTES.test(path);
}

/** Largest inference request body: prompts are far bigger than management requests. @default 16 MiB */
export const GATEWAY_BODY_LIMIT_BYTES = 16 * 1024 * 1024;

/** Requests the gateway routes took, by model id and by caller (token name, or "anonymous"). */
export class GatewayCounts {
  readonly byModelAndToken = new Map<string, { model: string; token: string; count: number }>();

  /**
   * @example
   * counts.add("qwen", request)
   */
  add(model: string, request: Request): void {
    const token = callerOf(request)?.name ?? "anonymous";
    const key = `${model}\u0000${token}`;
    const row = this.byModelAndToken.get(key);
    if (row) row.count++;
    else this.byModelAndToken.set(key, { model, token, count: 1 });
  }
}

/** What every gateway route plugin gets. */
export interface GatewayRouteDeps {
  readonly gateway: Gateway;
  readonly counts: GatewayCounts;
}

/**
 * Lifts the server's idle timeout (60 s) off one request: a request may wait minutes for its
 * model to load, a long answer may take minutes, and a stream may pause between tokens.
 * @example
 * app.post("/v1/completions", ({ request, server }) => proxyOpenAI(deps, untimed(request, server), path))
 */
export function untimed(
  request: Request,
  server: { timeout(request: Request, seconds: number): void } | null,
): Request {
  server?.timeout(request, 0);
  return request;
}

/** A request body the gateway cannot use: rendered as 400 (or 413) in the family's shape. */
export class BodyError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/**
 * The raw body, at most `limit` bytes (a larger one stops being read at once).
 * @throws BodyError 413 past the limit
 * @example
 * const bytes = await rawBody(request)
 */
export async function rawBody(request: Request, limit = GATEWAY_BODY_LIMIT_BYTES): Promise<Uint8Array<ArrayBuffer>> {
  const chunks = await readLimited(
    request,
    limit,
    () => new BodyError(413, `request bodies are limited to ${limit} bytes`),
  );
  return chunks.length === 1 ? (chunks[0] as Uint8Array<ArrayBuffer>) : new Uint8Array(Buffer.concat(chunks));
}

/**
 * The body as a JSON object.
 * @throws BodyError 400 when it is not JSON or not an object
 * @example
 * const body = jsonObject(await rawBody(request)) // { model: "qwen", messages: […] }
 */
export function jsonObject(bytes: Uint8Array): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new BodyError(400, `the request body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new BodyError(400, "the request body must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

interface Failure {
  readonly status: number;
  readonly message: string;
  readonly kind: string;
  readonly headers: Record<string, string>;
}

function failureOf(error: unknown): Failure {
  if (error instanceof GatewayError) {
    const headers: Record<string, string> =
      error.retryAfterS === undefined ? {} : { "retry-after": String(error.retryAfterS) };
    return { status: error.status, message: error.message, kind: error.kind, headers };
  }
  if (error instanceof BodyError) {
    return { status: error.status, message: error.message, kind: "bad_request", headers: {} };
  }
  if ((error as Error)?.name === "AbortError") {
    // The client left; nobody reads this answer.
    return { status: 499, message: "the client closed the request", kind: "aborted", headers: {} };
  }
  const why = error instanceof Error ? error.message : String(error);
  return { status: 500, message: `corral failed: ${why}`, kind: "internal", headers: {} };
}

const OPENAI_TYPE: Readonly<Record<string, string>> = {
  unknown_model: "invalid_request_error",
  bad_request: "invalid_request_error",
};

/**
 * An error in OpenAI's shape: `{"error":{"message","type","code"}}`.
 * @example
 * openaiError(new GatewayError("unknown_model", "model \"x\" is not configured")) // 404 …
 */
export function openaiError(error: unknown): Response {
  const f = failureOf(error);
  const code = f.kind === "unknown_model" ? "model_not_found" : f.kind;
  const body = { error: { message: f.message, type: OPENAI_TYPE[f.kind] ?? "server_error", code } };
  return Response.json(body, { status: f.status, headers: f.headers });
}

/**
 * An error in Ollama's shape: `{"error":"…"}`.
 * @example
 * ollamaError(new GatewayError("queue_full", "…")) // 503 with Retry-After
 */
export function ollamaError(error: unknown): Response {
  const f = failureOf(error);
  return Response.json({ error: f.message }, { status: f.status, headers: f.headers });
}
