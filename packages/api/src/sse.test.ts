import { describe, expect, it } from "bun:test";
import { connect } from "node:net";
import { sseResponse } from "./sse.ts";
import { createStreamLimiter } from "./streams.ts";

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

describe("sseResponse", () => {
  it("disconnects a client that stops reading instead of buffering everything sent to it", async () => {
    let sent = 0;
    let stopped = false;
    const frame = "x".repeat(16 * 1024);
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      idleTimeout: 0,
      fetch: (request) =>
        sseResponse(
          request,
          (send) => {
            const timer = setInterval(() => {
              for (let i = 0; i < 16; i++, sent++) send({ data: frame });
            }, 5);
            return () => {
              clearInterval(timer);
              stopped = true;
            };
          },
          { maxBufferedBytes: 256 * 1024 },
        ),
    });
    const socket = connect(server.port ?? 0, "127.0.0.1", () => {
      socket.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      socket.pause(); // a reader that never reads
    });
    socket.on("error", () => undefined);
    try {
      await until(() => stopped, "the stalled stream to be closed");
      // What was sent before the cut is bounded by the socket buffers plus the 256 KiB queue.
      expect(sent * frame.length).toBeLessThan(64 * 1024 * 1024);
    } finally {
      socket.destroy();
      server.stop(true);
    }
  });

  it("counts against a stream limit, answers 429 past it, and gives the slot back when the client leaves", async () => {
    const streams = createStreamLimiter(2);
    const open = () => {
      const abort = new AbortController();
      const request = new Request("http://localhost/events", { signal: abort.signal });
      const response = sseResponse(request, () => () => undefined, { streams });
      return { abort, response };
    };
    const a = open();
    open();
    expect(streams.active()).toBe(2);
    expect(() => open()).toThrow(expect.objectContaining({ status: 429, code: "TOO_MANY_STREAMS" }));
    a.abort.abort();
    expect(streams.active()).toBe(1);
    open();
    expect(streams.active()).toBe(2);
  });
});
