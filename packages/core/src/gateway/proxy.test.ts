import { describe, expect, it } from "bun:test";
import type { Lease } from "./gateway.ts";
import { forward, openaiStreamComplete, tokensPerSecondIn, upstreamHeaders } from "./proxy.ts";

function lease(): Lease & { results: unknown[] } {
  const results: unknown[] = [];
  return {
    model: { id: "m", name: "m", path: "/m.gguf", args: [], restart: "never", max_restart_attempts: 0, env: {} },
    slot: "0",
    entry: {
      pid: 1234,
      model_id: "m",
      model_name: "m",
      model_path: "/m.gguf",
      gpu_id: "0",
      port: 1,
      started_at: "",
      command_line: [],
      status: "running",
    },
    baseUrl: "http://127.0.0.1:1",
    waitedMs: undefined,
    readyMs: undefined,
    results,
    done: (r) => results.push(r ?? {}),
  };
}

describe("forward", () => {
  it("retries once on a fresh connection when a pooled one was reset before the request was read", async () => {
    const calls: RequestInit[] = [];
    const fetcher = (async (_url: string, init: RequestInit) => {
      calls.push(init);
      if (calls.length === 1) throw Object.assign(new Error("socket closed"), { code: "ECONNRESET" });
      return Response.json({ ok: true, timings: { predicted_per_second: 321.5 } });
    }) as unknown as typeof fetch;
    const l = lease();
    const res = await forward(l, { method: "POST", path: "/v1/completions", body: "{}" }, { fetch: fetcher });
    expect(await res.json()).toMatchObject({ ok: true });
    expect(calls).toHaveLength(2);
    expect(calls[1]?.keepalive).toBe(false);
    expect(l.results).toEqual([{ tokensPerSecond: 321.5 }]);
  });

  it("does not retry a refused connection, and answers 502 naming the server", async () => {
    let calls = 0;
    const fetcher = (async () => {
      calls++;
      throw Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
    }) as unknown as typeof fetch;
    const error = await forward(lease(), { method: "POST", path: "/x", body: "{}" }, { fetch: fetcher }).catch(
      (e) => e,
    );
    expect(calls).toBe(1);
    expect(error.status).toBe(502);
    expect(error.message).toContain("pid 1234");
  });

  it("ends a stream that stops before [DONE] with an error event, and the lease with it", async () => {
    const fetcher = (async () =>
      new Response('data: {"choices":[{"text":"a"}]}\n\n', {
        headers: { "content-type": "text/event-stream" },
      })) as unknown as typeof fetch;
    const l = lease();
    const res = await forward(
      l,
      { method: "POST", path: "/x", body: "{}" },
      { fetch: fetcher, complete: openaiStreamComplete },
    );
    const text = await res.text();
    expect(text).toStartWith('data: {"choices":[{"text":"a"}]}');
    expect(text).toContain('"type":"upstream_error"');
    expect(l.results).toHaveLength(1);
  });
});

describe("helpers", () => {
  it("drop the client's token and hop headers, and read llama-server's speed figure", () => {
    const h = upstreamHeaders({ authorization: "Bearer corral", "content-type": "application/json", host: "x" });
    expect([...h.keys()]).toEqual(["content-type"]);
    expect(tokensPerSecondIn('"timings":{"predicted_per_second":12.5}}')).toBe(12.5);
    expect(tokensPerSecondIn("{}")).toBeUndefined();
  });
});
