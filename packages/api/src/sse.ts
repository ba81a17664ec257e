import type { StreamLimiter } from "./streams.ts";

/**
 * Writes one Server-Sent Events frame.
 * @example
 * send({ data: { event: "status", slot: "0" }, id: "7" })
 */
export type SseSend = (frame: { readonly data: unknown; readonly event?: string; readonly id?: string }) => void;

/**
 * Options of {@link sseResponse}.
 * @example
 * sseResponse(request, start, { heartbeatMs: 15_000 })
 */
export interface SseOptions {
  /**
   * A comment line is sent this often, so proxies and idle timers keep the connection open.
   * @default 15000
   */
  readonly heartbeatMs?: number;
  /**
   * Bytes the client may leave unread before it counts as stalled: a frame is only queued while
   * less than this is waiting, and a client that falls further behind is disconnected, so a
   * reader that never reads costs at most this (plus one frame) instead of everything sent since.
   * @default 1048576 (1 MiB)
   */
  readonly maxBufferedBytes?: number;
  /** the cap on concurrent streams this one counts against (429 when full) @default none */
  readonly streams?: StreamLimiter;
}

/** Default of {@link SseOptions.maxBufferedBytes}. */
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;

const encoder = new TextEncoder();

/**
 * A `text/event-stream` response. `start` subscribes to whatever feeds the stream and returns
 * its cleanup, which runs exactly once when the client goes away (request aborted or stream
 * cancelled, or the client stalled past `maxBufferedBytes`) so no listener outlives its connection.
 * @default options.heartbeatMs = 15000, options.maxBufferedBytes = 1 MiB
 * @throws HttpError 429 when `options.streams` is full
 * @example
 * return sseResponse(request, (send) => registry.subscribe((e) => send({ data: e })))
 */
export function sseResponse(
  request: Request,
  start: (send: SseSend, close: () => void) => () => void,
  options: SseOptions = {},
): Response {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxBuffered = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  const release = options.streams?.acquire() ?? (() => undefined);
  let cleanup: ((stalled?: Error) => void) | undefined;
  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        let closed = false;
        let stop: (() => void) | undefined;
        let beat: ReturnType<typeof setInterval> | undefined;
        const write = (text: string) => {
          if (closed) return;
          // desiredSize is the high-water mark less what waits unread: at 0 the client has stalled.
          if ((controller.desiredSize ?? 1) <= 0) {
            // error(), not close(): close would wait for the unread queue to drain, which it never will.
            cleanup?.(new Error("the client stopped reading"));
            return;
          }
          try {
            controller.enqueue(encoder.encode(text));
          } catch {
            cleanup?.();
          }
        };
        cleanup = (stalled?: Error) => {
          if (closed) return;
          closed = true;
          release();
          clearInterval(beat);
          request.signal.removeEventListener("abort", onAbort);
          stop?.();
          try {
            if (stalled) controller.error(stalled);
            else controller.close();
          } catch {
            // already closed by the client
          }
        };
        const onAbort = () => cleanup?.();
        request.signal.addEventListener("abort", onAbort, { once: true });
        // The first bytes flush the headers, so a client knows at once that it is subscribed.
        write(`retry: 3000\n: connected\n\n`);
        beat = setInterval(() => write(`: heartbeat ${new Date().toISOString()}\n\n`), heartbeatMs);
        const send: SseSend = ({ data, event, id }) =>
          write(`${event ? `event: ${event}\n` : ""}${id ? `id: ${id}\n` : ""}data: ${JSON.stringify(data)}\n\n`);
        stop = start(send, () => cleanup?.());
        if (closed) stop();
      },
      cancel() {
        cleanup?.();
      },
    },
    { highWaterMark: maxBuffered, size: (chunk) => chunk?.byteLength ?? 0 },
  );
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    },
  });
}
