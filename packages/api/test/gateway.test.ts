// The gateway's routes over the stand-in llama-server: OpenAI and Ollama shapes, errors in each
// family's shape, streaming through a real listening port, /upstream passthrough and /metrics.
import { afterEach, describe, expect, it } from "bun:test";
import { type GatewayHome, gatewayHome } from "../../core/test/helpers/gateway-home.ts";
import { createApp } from "../src/app.ts";
import { serve } from "../src/serve.ts";

const TOKEN = "gateway-test-token-0123456789abcdef";
const homes: GatewayHome[] = [];
const servers: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
  for (const h of homes.splice(0)) await h.cleanup();
});

async function setup(...args: Parameters<typeof gatewayHome>) {
  const h = await gatewayHome(...args);
  homes.push(h);
  const app = createApp({ controller: h.controller, gateway: h.gateway, token: TOKEN });
  const call = (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${TOKEN}`);
    if (init.json !== undefined) headers.set("content-type", "application/json");
    const body = init.json !== undefined ? JSON.stringify(init.json) : init.body;
    return app.handle(new Request(`http://localhost${path}`, { ...init, headers, body }));
  };
  return { h, app, call };
}

describe("OpenAI routes", () => {
  it("answers a chat completion from the model the body names, loading it on demand", async () => {
    const { call, h } = await setup([{ id: "a", gpu: "0", aliases: ["gpt-4o"] }]);
    const res = await call("/v1/chat/completions", {
      method: "POST",
      json: { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-stand-in-pid")).toBe(String((await h.controller.registry.list())[0]?.entry.pid));
    expect(((await res.json()) as { object: string }).object).toBe("chat.completion");
  });

  it("refuses a body past the gateway's limit with 413 in OpenAI's shape, declared or streamed, loading nothing", async () => {
    const { call, h } = await setup([{ id: "a", gpu: "0" }]);
    const declared = await call("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(17 * 1024 * 1024) },
      body: "{}",
    });
    expect(declared.status).toBe(413);
    const chunk = new Uint8Array(1024 * 1024).fill(0x20);
    let sent = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ > 20) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const streamed = await call("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: endless,
    });
    expect(streamed.status).toBe(413);
    const error = ((await streamed.json()) as { error: { message: string } }).error;
    expect(error.message).toContain("limited to");
    // It stopped reading past the limit: 16 MiB, not all 21.
    expect(sent).toBeLessThanOrEqual(18);
    expect(await h.controller.entries()).toEqual([]);
  });

  it("lists every configured model, loaded or not, with corral's state", async () => {
    const { call } = await setup([
      { id: "a", gpu: "0" },
      { id: "b", gpu: "1", pinned: true, ttl: 30 },
    ]);
    await call("/v1/completions", { method: "POST", json: { model: "a", prompt: "x" } });
    const body = (await (await call("/v1/models")).json()) as {
      object: string;
      data: { id: string; object: string; corral: { state: string; served: number; pinned: boolean; ttl_s: number } }[];
    };
    expect(body.object).toBe("list");
    expect(body.data.map((m) => [m.id, m.object, m.corral.state])).toEqual([
      ["a", "model", "loaded"],
      ["b", "model", "unloaded"],
    ]);
    expect(body.data[0]?.corral.served).toBe(1);
    expect(body.data[1]?.corral).toMatchObject({ pinned: true, ttl_s: 30 });
  });

  it("renders errors in OpenAI's shape: unknown model 404, bad body 400, load failed 502, queue full 503", async () => {
    const { call } = await setup(
      [
        { id: "broken", gpu: "0", args: ["--fake-exit-on-start", "3"] },
        { id: "slow", gpu: "1", args: ["--fake-load-ms", "600"] },
      ],
      { max_queue: 1 },
    );
    const post = (json: unknown) => call("/v1/chat/completions", { method: "POST", json });
    const unknown = await post({ model: "nope", messages: [] });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { type: "invalid_request_error", code: "model_not_found" } });
    const bad = await call("/v1/chat/completions", {
      method: "POST",
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain("not valid JSON");
    const failed = await post({ model: "broken", messages: [] });
    expect(failed.status).toBe(502);
    expect(((await failed.json()) as { error: { message: string } }).error.message).toContain("exited with code 3");
    const waiting = post({ model: "slow", messages: [] });
    const full = await post({ model: "slow", messages: [] });
    expect(full.status).toBe(503);
    expect(full.headers.get("retry-after")).toBe("1");
    expect((await waiting).status).toBe(200);
  });

  it("takes a chat body larger than the management API's 64 KiB limit and forwards it", async () => {
    const { call } = await setup([{ id: "a", gpu: "0" }]);
    const content = "x".repeat(200_000);
    const res = await call("/v1/chat/completions", {
      method: "POST",
      json: { model: "a", messages: [{ role: "user", content }] },
    });
    expect(res.status).toBe(200);
  });
});

describe("gateway.auth: none", () => {
  it("leaves the inference routes open while the management routes keep their token", async () => {
    const h = await gatewayHome([{ id: "a", gpu: "0" }]);
    homes.push(h);
    const app = createApp({ controller: h.controller, gateway: h.gateway, token: TOKEN, inferenceAuth: "none" });
    const open = await app.handle(
      new Request("http://localhost/v1/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "a", prompt: "x" }),
      }),
    );
    expect(open.status).toBe(200);
    expect((await app.handle(new Request("http://localhost/api/tags"))).status).toBe(200);
    expect((await app.handle(new Request("http://localhost/api/v1/processes"))).status).toBe(401);
    const closed = createApp({ controller: h.controller, gateway: h.gateway, token: TOKEN });
    expect((await closed.handle(new Request("http://localhost/v1/models"))).status).toBe(401);
  });
});

describe("Ollama routes", () => {
  it("translates a chat to OpenAI and back, not streaming", async () => {
    const { call } = await setup([{ id: "a", gpu: "0" }]);
    const res = await call("/api/chat", {
      method: "POST",
      json: { model: "a", messages: [{ role: "user", content: "hi" }], stream: false },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { model: string; message: { role: string; content: string }; done: boolean };
    expect(body).toMatchObject({ model: "a", done: true, message: { role: "assistant" } });
    expect(body.message.content).toContain("stand-in");
  });

  it("streams a generate as NDJSON lines ending with done: true", async () => {
    const { call } = await setup([{ id: "a", gpu: "0", args: ["--fake-token-ms", "1"] }]);
    const res = await call("/api/generate", {
      method: "POST",
      json: { model: "a", prompt: "Once", options: { num_predict: 4 } },
    });
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { response: string; done: boolean; eval_count?: number });
    expect(lines.map((l) => l.done)).toEqual([false, false, false, false, true]);
    expect(lines.map((l) => l.response).join("")).toBe(" tok0 tok1 tok2 tok3");
    expect(lines.at(-1)?.eval_count).toBe(4);
  });

  it("answers tags, show, version and ps, and errors as {error: string}", async () => {
    const { call } = await setup([
      { id: "a", gpu: "0" },
      { id: "b", gpu: "1", ttl: 60 },
    ]);
    await call("/api/generate", { method: "POST", json: { model: "b", prompt: "" } });
    const tags = (await (await call("/api/tags")).json()) as { models: { name: string }[] };
    expect(tags.models.map((m) => m.name)).toEqual(["a", "b"]);
    const ps = (await (await call("/api/ps")).json()) as {
      models: { name: string; expires_at: string; size_vram: number }[];
    };
    expect(ps.models.map((m) => m.name)).toEqual(["b"]);
    expect(Date.parse(ps.models[0]!.expires_at)).toBeGreaterThan(Date.now() + 50_000);
    expect(ps.models[0]?.size_vram).toBe(0);
    const show = await call("/api/show", { method: "POST", json: { model: "a" } });
    expect(((await show.json()) as { modelfile: string }).modelfile).toStartWith("FROM ");
    expect(((await (await call("/api/version")).json()) as { version: string }).version).toMatch(/^\d+\.\d+\.\d+$/);
    const missing = await call("/api/chat", { method: "POST", json: { model: "nope", messages: [] } });
    expect(missing.status).toBe(404);
    expect(typeof ((await missing.json()) as { error: unknown }).error).toBe("string");
  });
});

describe("passthrough and metrics", () => {
  it("passes /upstream/<model>/<path> to the model's llama-server", async () => {
    const { call } = await setup([{ id: "a", gpu: "0" }]);
    const res = await call("/upstream/a/slots");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: number }[])[0]?.id).toBe(0);
  });

  it("does not write one history line per inference request (they are counted in /metrics)", async () => {
    const { call, h } = await setup([{ id: "a", gpu: "0" }]);
    for (let i = 0; i < 3; i++) await call("/v1/completions", { method: "POST", json: { model: "a", prompt: "x" } });
    await call("/api/v1/processes/0/verify", { method: "POST" });
    await Bun.sleep(50);
    const events = (await h.controller.registry.history.read()).map((e) => `${e.event} ${e.reason ?? ""}`);
    expect(events.filter((e) => e.startsWith("request ") && e.includes("/v1/completions"))).toEqual([]);
    expect(events.some((e) => e.startsWith("request ") && e.includes("/verify"))).toBe(true);
  });

  it("counts requests per model and per token in /metrics", async () => {
    const { call } = await setup([{ id: "a", gpu: "0" }]);
    for (let i = 0; i < 3; i++) await call("/v1/completions", { method: "POST", json: { model: "a", prompt: "x" } });
    const text = await (await call("/metrics")).text();
    expect(text).toMatch(/corral_gateway_requests_total\{model="a",token="[^"]+"\} 3/);
    expect(text).toContain('corral_gateway_model_served_total{model="a"} 3');
  });
});

describe("streaming through a listening server", () => {
  it("passes SSE chunks on as they arrive and frees the model when the client disconnects", async () => {
    const { h, app } = await setup([{ id: "a", gpu: "0", args: ["--fake-token-ms", "25"] }]);
    app.listen({ hostname: "127.0.0.1", port: 0, development: false });
    servers.push({ stop: async () => void (await app.stop(true)) });
    const url = `http://127.0.0.1:${app.server!.port}`;
    const abort = new AbortController();
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "a", messages: [], stream: true, max_tokens: 400 }),
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    const arrivals: number[] = [];
    for (let i = 0; i < 4; i++) {
      await reader.read();
      arrivals.push(performance.now());
    }
    // Chunks come one by one, 25 ms apart, not all at the end.
    expect(arrivals[3]! - arrivals[0]!).toBeGreaterThan(40);
    abort.abort();
    const port = (await h.controller.registry.list())[0]!.entry.port;
    const deadline = Date.now() + 1000;
    let busy = true;
    while (busy && Date.now() < deadline) {
      const slots = (await (await fetch(`http://127.0.0.1:${port}/slots`)).json()) as { is_processing: boolean }[];
      busy = slots[0]!.is_processing;
      if (busy) await Bun.sleep(10);
    }
    expect(busy).toBe(false);
    const [view] = await h.gateway.models();
    expect(view?.in_flight).toBe(0);
  });
});

describe("stopping corral serve", () => {
  it("writes the pending last request times before it returns", async () => {
    const h = await gatewayHome([{ id: "a", gpu: "0" }]);
    homes.push(h);
    const server = await serve({ home: h.home, port: 0, token: TOKEN, handleSignals: false, logger: () => {} });
    const res = await fetch(`${server.url.href}v1/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "a", prompt: "x" }),
    });
    expect(res.status).toBe(200);
    for (const l of await h.controller.registry.list()) h.pids.add(l.entry.pid);
    expect((await h.controller.registry.list())[0]?.entry.last_request_at).toBeUndefined();
    await server.stop();
    expect((await h.controller.registry.list())[0]?.entry.last_request_at).toBeString();
  });
});
