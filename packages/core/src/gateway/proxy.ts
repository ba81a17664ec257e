import { GatewayError } from "./errors.ts";
import type { Lease } from "./gateway.ts";

/**
 * Forwarding one request to the llama-server a lease points at. A streamed answer is passed on
 * chunk by chunk as it arrives (pulled: at most one chunk is held, so a slow client slows the
 * upstream read instead of growing a buffer); the client's abort (its signal, or cancelling the
 * body) aborts the upstream fetch, which makes llama-server stop generating. The lease ends
 * when the answer does, however it ends.
 */

type HeadersInit = ConstructorParameters<typeof Headers>[0];
type BodyInit = ConstructorParameters<typeof Response>[0];

/** What to send upstream. */
export interface ForwardRequest {
  readonly method: string;
  /** path and query on the llama-server, e.g. "/v1/chat/completions" */
  readonly path: string;
  readonly headers?: HeadersInit;
  readonly body?: BodyInit | null;
  /** the client's signal: aborting it aborts the upstream request */
  readonly signal?: AbortSignal;
}

/** Options of {@link forward}. */
export interface ForwardOptions {
  /**
   * Bytes to end a stream with when the upstream dies mid-stream (an SSE `error` event, an NDJSON
   * error line) @default an SSE event `data: {"error":{…}}`
   */
  readonly streamError?: (message: string) => Uint8Array;
  /**
   * Whether a stream's last bytes show it finished (OpenAI's `data: [DONE]`); a stream that ends
   * without it lost its llama-server and gets `streamError` @default every end counts as finished
   */
  readonly complete?: (tail: string) => boolean;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

const encoder = new TextEncoder();
const HOP_HEADERS = ["connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"];
/** Headers a client sends that must not reach llama-server: corral's own token above all. */
const DROPPED_REQUEST_HEADERS = ["authorization", "host", "cookie", "origin", "referer", "content-length"];

/**
 * The SSE event that ends a stream whose upstream failed, in OpenAI's error shape.
 * @example
 * sseError("llama-server exited") // data: {"error":{"message":"llama-server exited","type":"upstream_error","code":502}}
 */
export function sseError(message: string): Uint8Array {
  return encoder.encode(`data: ${JSON.stringify({ error: { message, type: "upstream_error", code: 502 } })}\n\n`);
}

/**
 * The headers to send upstream: the client's, less corral's token and hop-by-hop ones.
 * @example
 * upstreamHeaders(request.headers).get("authorization") // null
 */
export function upstreamHeaders(headers: HeadersInit | undefined): Headers {
  const out = new Headers(headers);
  for (const name of DROPPED_REQUEST_HEADERS) out.delete(name);
  return out;
}

/** llama-server's own speed figure, from the tail of a response (`timings.predicted_per_second`). */
export function tokensPerSecondIn(text: string): number | undefined {
  const match = /"predicted_per_second"\s*:\s*([0-9.eE+-]+)/.exec(text);
  const value = match ? Number(match[1]) : Number.NaN;
  return Number.isFinite(value) ? value : undefined;
}

function isStream(response: Response): boolean {
  const type = response.headers.get("content-type") ?? "";
  return type.includes("text/event-stream") || type.includes("ndjson");
}

/**
 * Sends a request to the lease's llama-server and returns its answer, streamed through.
 * The lease is done when the answer has been read, cancelled, or failed.
 * @throws GatewayError upstream_failed (502) when the llama-server cannot be reached
 * @example
 * const res = await forward(lease, { method: "POST", path: "/v1/chat/completions", body, signal: request.signal })
 */
export async function forward(lease: Lease, request: ForwardRequest, options: ForwardOptions = {}): Promise<Response> {
  const upstream = new AbortController();
  const onAbort = () => upstream.abort(request.signal?.reason);
  if (request.signal?.aborted) onAbort();
  request.signal?.addEventListener("abort", onAbort, { once: true });
  let finished = false;
  const finish = (tail?: string) => {
    if (finished) return;
    finished = true;
    request.signal?.removeEventListener("abort", onAbort);
    lease.done({ tokensPerSecond: tail ? tokensPerSecondIn(tail) : undefined });
  };
  let response: Response;
  try {
    response = await send(
      options.fetch ?? fetch,
      `${lease.baseUrl}${request.path}`,
      request,
      upstream.signal,
      lease.entry.api_key,
    );
  } catch (error) {
    finish();
    const why = error instanceof Error ? error.message : String(error);
    throw new GatewayError(
      "upstream_failed",
      `llama-server for ${lease.model.id} (slot ${lease.slot}, pid ${lease.entry.pid}) did not answer: ${why}`,
      { cause: error },
    );
  }
  const headers = new Headers(response.headers);
  for (const name of HOP_HEADERS) headers.delete(name);
  if (!response.body) {
    finish();
    return new Response(null, { status: response.status, headers });
  }
  if (!isStream(response)) {
    // A whole JSON answer: read it (it is not a stream), then the model is free again at once.
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      finish();
      throw new GatewayError(
        "upstream_failed",
        `llama-server for ${lease.model.id} failed mid-answer: ${String(error)}`,
        {
          cause: error,
        },
      );
    }
    finish(new TextDecoder().decode(bytes.subarray(Math.max(0, bytes.length - 2048))));
    return new Response(bytes, { status: response.status, headers });
  }
  const ends = { error: options.streamError ?? sseError, complete: options.complete ?? (() => true) };
  return new Response(passThrough(response.body, upstream, finish, ends, lease), {
    status: response.status,
    headers,
  });
}

/**
 * OpenAI streams end with `data: [DONE]`: one that stops before it lost its llama-server.
 * @example
 * openaiStreamComplete('data: {"choices":[]}\n\ndata: [DONE]\n\n') // true
 */
export function openaiStreamComplete(tail: string): boolean {
  return tail.includes("[DONE]");
}

/**
 * The upstream fetch. llama-server closes a kept-alive connection after a streamed answer, and a
 * pooled connection it closed just before we reuse it fails with ECONNRESET before any byte of
 * the request is read: that one failure is retried once on a fresh connection.
 */
async function send(
  fetcher: typeof fetch,
  url: string,
  request: ForwardRequest,
  signal: AbortSignal,
  apiKey: string | undefined,
): Promise<Response> {
  // The client's Authorization is never passed on (upstreamHeaders drops it): the server's own key is.
  const headers = upstreamHeaders(request.headers);
  if (apiKey !== undefined) headers.set("authorization", `Bearer ${apiKey}`);
  const init = {
    method: request.method,
    headers,
    body: request.body ?? null,
    signal,
    // Bun: never decompress or re-encode what llama-server sends.
    decompress: false,
  } as RequestInit;
  try {
    return await fetcher(url, init);
  } catch (error) {
    const code = (error as { code?: string }).code;
    const replayable =
      request.body === undefined ||
      request.body === null ||
      typeof request.body === "string" ||
      request.body instanceof Uint8Array;
    if (code !== "ECONNRESET" || signal.aborted || !replayable) throw error;
    return fetcher(url, { ...init, keepalive: false } as RequestInit);
  }
}

function passThrough(
  body: ReadableStream<Uint8Array>,
  upstream: AbortController,
  finish: (tail?: string) => void,
  ends: { readonly error: (message: string) => Uint8Array; readonly complete: (tail: string) => boolean },
  lease: Lease,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  // The last two chunks: enough for the final event even when it is split across reads.
  let last: Uint8Array | undefined;
  let before: Uint8Array | undefined;
  const tail = () => new TextDecoder().decode(Buffer.concat([before ?? new Uint8Array(), last ?? new Uint8Array()]));
  const died = (why: string) =>
    ends.error(`llama-server for ${lease.model.id} (pid ${lease.entry.pid}) ended the stream: ${why}`);
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            const text = tail();
            finish(text);
            if (!ends.complete(text)) controller.enqueue(died("it closed before the end of the answer"));
            controller.close();
            return;
          }
          before = last;
          last = value;
          controller.enqueue(value);
        } catch (error) {
          if (upstream.signal.aborted) {
            finish();
            controller.close();
            return;
          }
          finish();
          controller.enqueue(died(error instanceof Error ? error.message : String(error)));
          controller.close();
        }
      },
      cancel(reason) {
        upstream.abort(reason);
        void reader.cancel(reason).catch(() => undefined);
        finish();
      },
    },
    { highWaterMark: 0 },
  );
}
