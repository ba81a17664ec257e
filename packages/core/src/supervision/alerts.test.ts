import { describe, expect, it } from "bun:test";
import { InvalidInputError } from "../errors.ts";
import { type AlertFetch, createAlerter, type WebhookStatusError } from "./alerts.ts";

const event = {
  event: "crash",
  slot: "0",
  model: "qwen-7b",
  pid: 4242,
  reason: "exit 139",
  time: "2026-01-01T00:00:00.000Z",
};

/** A fake fetch answering each call with the next status (or throwing for "network"), recording bodies. */
function scripted(answers: Array<number | "network">) {
  const calls: Array<{ url: string; body: string }> = [];
  const fetch: AlertFetch = async (url, init) => {
    calls.push({ url, body: String(init.body) });
    const answer = answers[calls.length - 1] ?? 200;
    if (answer === "network") throw new TypeError("fetch failed");
    return new Response(null, { status: answer });
  };
  return { calls, fetch };
}

describe("createAlerter", () => {
  it("refuses a URL that is not http or https", () => {
    expect(() => createAlerter({ urls: ["ftp://example.test/hook"] })).toThrow(InvalidInputError);
    expect(() => createAlerter({ urls: ["not a url"] })).toThrow(InvalidInputError);
  });

  it("retries network errors and 5xx with backoff and stops at the first success", async () => {
    const fake = scripted(["network", 503, 200]);
    const alerter = createAlerter({ urls: ["http://hook.test/a"], backoffMs: 1, fetch: fake.fetch });
    alerter.notify(event);
    await alerter.flush();
    expect(fake.calls.length).toBe(3);
    expect(JSON.parse(fake.calls[2]!.body)).toEqual(event);
    expect(alerter.failures).toBe(0);
  });

  it("gives up after the retries and hands the last error to onError once", async () => {
    const fake = scripted([500, 500, 500]);
    const errors: unknown[] = [];
    const alerter = createAlerter({
      urls: ["http://hook.test/a"],
      retries: 2,
      backoffMs: 1,
      fetch: fake.fetch,
      onError: (_url, error) => errors.push(error),
    });
    alerter.notify(event);
    await alerter.flush();
    expect(fake.calls.length).toBe(3);
    expect(alerter.failures).toBe(1);
    expect(errors.length).toBe(1);
    expect((errors[0] as WebhookStatusError).status).toBe(500);
  });

  it("does not retry a 4xx answer and survives an onError that throws", async () => {
    const fake = scripted([404, 200]);
    const alerter = createAlerter({
      urls: ["http://hook.test/a"],
      backoffMs: 1,
      fetch: fake.fetch,
      onError: () => {
        throw new Error("handler bug");
      },
    });
    alerter.notify(event);
    alerter.notify({ ...event, event: "restart" });
    await alerter.flush();
    expect(fake.calls.map((c) => JSON.parse(c.body).event)).toEqual(["crash", "restart"]);
    expect(alerter.failures).toBe(1);
  });

  it("drops the oldest events beyond the queue bound and counts them", async () => {
    let release: () => void = () => {};
    const seen: string[] = [];
    const fetch: AlertFetch = async (_url, init) => {
      seen.push(JSON.parse(String(init.body)).reason);
      await new Promise<void>((resolve) => (release = resolve));
      return new Response(null, { status: 204 });
    };
    const alerter = createAlerter({ urls: ["http://hook.test/a"], maxQueue: 3, fetch });
    alerter.notify({ ...event, reason: "r0" });
    await Bun.sleep(0);
    // r0 is in flight; r1..r5 compete for 3 places.
    for (let i = 1; i <= 5; i++) alerter.notify({ ...event, reason: `r${i}` });
    expect(alerter.dropped).toBe(2);
    for (let expected = 2; expected <= 4; expected++) {
      release();
      while (seen.length < expected) await Bun.sleep(1);
    }
    release();
    await alerter.flush(1000);
    expect(seen).toEqual(["r0", "r3", "r4", "r5"]);
  });

  it("sends each event to every URL and keeps a slow URL from holding up the others", async () => {
    const delivered: string[] = [];
    const fetch: AlertFetch = async (url) => {
      if (url.endsWith("/slow")) await new Promise(() => {});
      delivered.push(url);
      return new Response(null, { status: 200 });
    };
    const alerter = createAlerter({ urls: ["http://hook.test/slow", "http://hook.test/fast"], fetch });
    alerter.notify(event);
    alerter.notify(event);
    await alerter.flush(200);
    expect(delivered).toEqual(["http://hook.test/fast", "http://hook.test/fast"]);
  });

  it("flushes at once when nothing was sent or there are no URLs", async () => {
    const alerter = createAlerter({ urls: [] });
    alerter.notify(event);
    await alerter.flush();
    expect(alerter.failures).toBe(0);
    expect(alerter.dropped).toBe(0);
  });
});
