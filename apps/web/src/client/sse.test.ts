import { afterEach, describe, expect, it } from "bun:test";
import { createCoalescer, openEventStream, type SseMessage, SseParser, type StreamState } from "./sse.ts";

describe("SseParser", () => {
  it("completes an event at the blank line and names it by its event field", () => {
    const parser = new SseParser();
    expect(parser.push('event: status\ndata: {"slot":"0"}\nid: 7\n')).toEqual([]);
    expect(parser.push("\n")).toEqual([{ event: "status", data: '{"slot":"0"}', id: "7" }]);
  });

  it("joins data lines, skips comments and defaults the name to message", () => {
    const parser = new SseParser();
    expect(parser.push(": keep-alive\n\ndata: a\ndata:b\n\n")).toEqual([
      { event: "message", data: "a\nb", id: undefined },
    ]);
  });

  it("handles CRLF split between chunks without inventing a blank line", () => {
    const parser = new SseParser();
    expect(parser.push("data: x\r")).toEqual([]);
    expect(parser.push("\ndata: y\r\n\r")).toEqual([{ event: "message", data: "x\ny", id: undefined }]);
    expect(parser.push("\n")).toEqual([]);
  });

  it("reassembles a line split across chunks", () => {
    const parser = new SseParser();
    expect(parser.push("da")).toEqual([]);
    expect(parser.push("ta: hel")).toEqual([]);
    expect(parser.push("lo\n\n")).toEqual([{ event: "message", data: "hello", id: undefined }]);
  });
});

/** A real SSE endpoint: each connection gets the next script of events, then the stream ends. */
function sseServer(scripts: Array<{ status?: number; events: string[] }>) {
  let connections = 0;
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch() {
      const script = scripts[Math.min(connections++, scripts.length - 1)] ?? { events: [] };
      if (script.status) return new Response("no", { status: script.status });
      return new Response(script.events.join(""), { headers: { "Content-Type": "text/event-stream" } });
    },
  });
  return { server, connections: () => connections, url: `http://127.0.0.1:${server.port}/api/v1/events` };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 1000 && !check(); i++) await Bun.sleep(10);
  expect(check()).toBe(true);
};

describe("openEventStream", () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    for (const f of cleanups.splice(0)) f();
  });

  it("delivers events and reconnects after the stream ends, resetting the back-off once open", async () => {
    const sse = sseServer([{ events: ["data: one\n\n"] }, { events: ["event: status\ndata: two\n\n"] }]);
    const events: SseMessage[] = [];
    const states: StreamState[] = [];
    const stream = openEventStream({
      url: sse.url,
      request: fetch,
      onEvent: (e) => events.push(e),
      onState: (s) => states.push(s),
      initialDelayMs: 20,
    });
    cleanups.push(
      () => stream.close(),
      () => sse.server.stop(true),
    );
    await until(() => events.length >= 2);
    expect(events.slice(0, 2).map((e) => [e.event, e.data])).toEqual([
      ["message", "one"],
      ["status", "two"],
    ]);
    const waits = states.filter((s) => s.kind === "waiting").map((s) => (s as { retryInMs: number }).retryInMs);
    expect(waits.slice(0, 2)).toEqual([20, 20]);
  });

  it("doubles the delay while connections fail", async () => {
    const sse = sseServer([{ status: 503, events: [] }]);
    const waits: number[] = [];
    const stream = openEventStream({
      url: sse.url,
      request: fetch,
      onEvent: () => {},
      onState: (s) => s.kind === "waiting" && waits.push(s.retryInMs),
      initialDelayMs: 5,
      maxDelayMs: 20,
    });
    cleanups.push(
      () => stream.close(),
      () => sse.server.stop(true),
    );
    await until(() => waits.length >= 4);
    expect(waits.slice(0, 4)).toEqual([5, 10, 20, 20]);
  });

  it("stops retrying on 401 until reconnect is called", async () => {
    const sse = sseServer([{ status: 401, events: [] }, { events: ["data: in\n\n"] }]);
    const states: string[] = [];
    const events: string[] = [];
    const stream = openEventStream({
      url: sse.url,
      request: fetch,
      onEvent: (e) => events.push(e.data),
      onState: (s) => states.push(s.kind),
      initialDelayMs: 5,
    });
    cleanups.push(
      () => stream.close(),
      () => sse.server.stop(true),
    );
    await until(() => states.includes("unauthorized"));
    // A retry is always announced ("waiting") in the same step that schedules it: none was.
    expect(states).toEqual(["connecting", "unauthorized"]);
    expect(sse.connections()).toBe(1);
    stream.reconnect();
    await until(() => events.includes("in"));
  });

  it("reports closed and stops reconnecting once closed", async () => {
    const sse = sseServer([{ events: [] }]);
    const states: string[] = [];
    const stream = openEventStream({
      url: sse.url,
      request: fetch,
      onEvent: () => {},
      onState: (s) => states.push(s.kind),
      initialDelayMs: 5,
      maxDelayMs: 5,
    });
    cleanups.push(() => sse.server.stop(true));
    await until(() => states.includes("waiting"));
    stream.close();
    const after = states.length;
    // A witness with the same 5 ms retry, scheduled after the closed stream's: once the witness has
    // retried, the closed stream's timer would have fired before it, had close() not cleared it.
    let witnessed = 0;
    const witness = openEventStream({
      url: sse.url,
      request: fetch,
      onEvent: () => {},
      onState: (s) => {
        if (s.kind === "connecting") witnessed++;
      },
      initialDelayMs: 5,
      maxDelayMs: 5,
    });
    cleanups.push(() => witness.close());
    await until(() => witnessed >= 2);
    expect(states.length).toBe(after);
  });
});

describe("createCoalescer", () => {
  it("runs a burst of schedules once", async () => {
    let runs = 0;
    const c = createCoalescer(async () => void runs++, 10);
    for (let i = 0; i < 10; i++) c.schedule();
    await c.idle();
    expect(runs).toBe(1);
  });

  it("runs once more after a run when scheduled during it", async () => {
    let runs = 0;
    let release: () => void = () => {};
    const c = createCoalescer(async () => {
      runs++;
      if (runs === 1) await new Promise<void>((r) => (release = r));
    }, 5);
    c.schedule();
    await until(() => runs === 1);
    c.schedule();
    c.schedule();
    release();
    await c.idle();
    expect(runs).toBe(2);
  });

  it("keeps working after a run fails", async () => {
    let runs = 0;
    const c = createCoalescer(async () => {
      runs++;
      throw new Error("down");
    }, 5);
    c.schedule();
    await c.idle();
    c.schedule();
    await c.idle();
    expect(runs).toBe(2);
  });
});
