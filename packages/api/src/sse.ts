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
}

const encoder = new TextEncoder();

/**
 * A `text/event-stream` response. `start` subscribes to whatever feeds the stream and returns
 * its cleanup, which runs exactly once when the client goes away (request aborted or stream
 * cancelled) so no listener outlives its connection.
 * @default options.heartbeatMs = 15000
 * @example
 * return sseResponse(request, (send) => registry.subscribe((e) => send({ data: e })))
 */
export function sseResponse(
  request: Request,
  start: (send: SseSend, close: () => void) => () => void,
  options: SseOptions = {},
): Response {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  let cleanup: (() => void) | undefined;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      let closed = false;
      let stop: (() => void) | undefined;
      let beat: ReturnType<typeof setInterval> | undefined;
      const write = (text: string) => {
        if (closed) return;
        try {
          controller.enqueue(encoder.encode(text));
        } catch {
          cleanup?.();
        }
      };
      cleanup = () => {
        if (closed) return;
        closed = true;
        clearInterval(beat);
        request.signal.removeEventListener("abort", onAbort);
        stop?.();
        try {
          controller.close();
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
  });
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    },
  });
}
