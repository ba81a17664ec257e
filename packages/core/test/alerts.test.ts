import { afterEach, describe, expect, it } from "bun:test";
import type { Server } from "bun";
import { type AlertEvent, createAlerter } from "../src/supervision/alerts.ts";

const servers: Server<undefined>[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.stop(true);
});

function receiver(handle: (request: Request) => Response | Promise<Response>): Server<undefined> {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: handle });
  servers.push(server);
  return server;
}

const event: AlertEvent = {
  event: "give-up",
  slot: "0,1",
  model: "qwen-7b",
  pid: 4242,
  reason: "3 crashes",
  time: new Date().toISOString(),
};

describe("webhook alerts to real receivers", () => {
  it("POSTs the event as a JSON body", async () => {
    const received: Array<{ method: string; type: string | null; body: unknown }> = [];
    const server = receiver(async (request) => {
      received.push({ method: request.method, type: request.headers.get("content-type"), body: await request.json() });
      return new Response(null, { status: 204 });
    });
    const alerter = createAlerter({ urls: [`http://127.0.0.1:${server.port}/hook`] });
    alerter.notify(event);
    await alerter.flush(10_000);
    expect(received).toEqual([{ method: "POST", type: "application/json", body: event }]);
    expect(alerter.failures).toBe(0);
  });

  it("delivers on the third try to a receiver that answers 500 twice", async () => {
    let hits = 0;
    const bodies: unknown[] = [];
    const server = receiver(async (request) => {
      hits++;
      if (hits <= 2) return new Response("down", { status: 500 });
      bodies.push(await request.json());
      return new Response("ok");
    });
    const alerter = createAlerter({ urls: [`http://127.0.0.1:${server.port}/hook`], backoffMs: 20 });
    alerter.notify(event);
    await alerter.flush(10_000);
    expect(hits).toBe(3);
    expect(bodies).toEqual([event]);
    expect(alerter.failures).toBe(0);
  });

  it("returns from notify while the receiver still holds the request", async () => {
    let entered: () => void = () => {};
    const handlerEntered = new Promise<void>((resolve) => (entered = resolve));
    let answer: () => void = () => {};
    const server = receiver(async () => {
      entered();
      await new Promise<void>((resolve) => (answer = resolve));
      return new Response("ok");
    });
    const alerter = createAlerter({ urls: [`http://127.0.0.1:${server.port}/hook`] });
    alerter.notify(event);
    await handlerEntered;
    // The request is open on the receiver and this test goes on: notify did not wait for it.
    expect(alerter.failures).toBe(0);
    answer();
    await alerter.flush(10_000);
    expect(alerter.failures).toBe(0);
  });

  it("counts a failure for an unreachable URL once its retries are spent, notify having returned at once", async () => {
    // A port that was just listening and is closed now: connections are refused.
    const gone = receiver(() => new Response("ok"));
    const url = `http://127.0.0.1:${gone.port}/hook`;
    gone.stop(true);
    const errors: string[] = [];
    const alerter = createAlerter({ urls: [url], retries: 2, backoffMs: 10, onError: (u) => errors.push(u) });
    alerter.notify(event);
    // Nothing has been attempted yet when notify returns.
    expect(alerter.failures).toBe(0);
    await alerter.flush(10_000);
    expect(alerter.failures).toBe(1);
    expect(errors).toEqual([url]);
  });
});
