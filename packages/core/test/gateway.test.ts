import { afterEach, describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GatewayError } from "../src/gateway/errors.ts";
import type { Gateway } from "../src/gateway/gateway.ts";
import { forward, openaiStreamComplete } from "../src/gateway/proxy.ts";
import { routeRequest } from "../src/gateway/route.ts";
import { createStore } from "../src/store/store.ts";
import { type GatewayHome, gatewayHome } from "./helpers/gateway-home.ts";
import { alive } from "./helpers/home.ts";

const homes: GatewayHome[] = [];
afterEach(async () => {
  for (const h of homes.splice(0)) await h.cleanup();
});

async function setup(...args: Parameters<typeof gatewayHome>): Promise<GatewayHome> {
  const h = await gatewayHome(...args);
  homes.push(h);
  return h;
}

/** One chat completion through the gateway, as the routes do it. */
async function chat(gateway: Gateway, model: string, extra: Record<string, unknown> = {}): Promise<Response> {
  const lease = await gateway.acquire(model);
  const body = JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], ...extra });
  return forward(
    lease,
    { method: "POST", path: "/v1/chat/completions", body, headers: { "content-type": "application/json" } },
    { complete: extra.stream ? openaiStreamComplete : undefined },
  );
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 5; !(await check()); wait = Math.min(wait * 2, 100)) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(wait);
  }
}

async function pidOf(h: GatewayHome, id: string): Promise<number | undefined> {
  return (await h.controller.registry.list()).find((l) => l.entry.model_id === id)?.entry.pid;
}

describe("on-demand load", () => {
  it("loads a cold model once for 8 concurrent requests and answers all 8", async () => {
    const h = await setup([{ id: "a", gpu: "0", args: ["--fake-load-ms", "300"] }]);
    const answers = await Promise.all(Array.from({ length: 8 }, () => chat(h.gateway, "a")));
    expect(h.spawns()).toBe(1);
    for (const res of answers) {
      expect(res.status).toBe(200);
      expect(((await res.json()) as { object: string }).object).toBe("chat.completion");
    }
    const [view] = await h.gateway.models();
    expect(view).toMatchObject({ id: "a", state: "loaded", in_flight: 0, served: 8 });
  });

  it("routes by alias and by the model's file name, and refuses an unknown model with 404", async () => {
    const h = await setup([{ id: "a", gpu: "0", aliases: ["gpt-4o"] }]);
    expect((await chat(h.gateway, "gpt-4o")).status).toBe(200);
    expect((await chat(h.gateway, "a.gguf")).status).toBe(200);
    expect((await chat(h.gateway, "a:latest")).status).toBe(200);
    expect(h.spawns()).toBe(1);
    const error = await h.gateway.acquire("nope").catch((e) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error.status).toBe(404);
    expect(error.message).toContain("known: a");
  });

  it("refuses the request past max_queue with 503 and a Retry-After while the model loads", async () => {
    const h = await setup([{ id: "a", gpu: "0", args: ["--fake-load-ms", "800"] }], { max_queue: 2 });
    const first = [h.gateway.acquire("a"), h.gateway.acquire("a")];
    const third = await h.gateway.acquire("a").catch((e) => e);
    expect(third).toBeInstanceOf(GatewayError);
    expect(third.kind).toBe("queue_full");
    expect(third.status).toBe(503);
    expect(third.retryAfterS).toBeGreaterThan(0);
    for (const lease of await Promise.all(first)) lease.done();
    expect(h.spawns()).toBe(1);
  });

  it("answers 502 with the load error's reason when the server cannot start", async () => {
    const h = await setup([{ id: "broken", gpu: "0", args: ["--fake-exit-on-start", "3"] }]);
    const error = await h.gateway.acquire("broken").catch((e) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error.status).toBe(502);
    expect(error.message).toContain("exited with code 3");
  });
});

/** The history events that remove an entry from the registry. */
const GONE = new Set(["killed", "unregistered", "load-failed", "pruned"]);

/** Each model's load as the registry recorded it: from "registered" (spawned) to "running" (ready). */
function recordLoads(h: GatewayHome): Map<string, { from: number; to?: number }> {
  const loads = new Map<string, { from: number; to?: number }>();
  h.controller.registry.subscribe((e) => {
    if (!e.model_id) return;
    if (e.event === "registered") loads.set(e.model_id, { from: Date.parse(e.time) });
    if (e.event === "status" && e.to === "running") {
      const load = loads.get(e.model_id);
      if (load) load.to = Date.parse(e.time);
    }
  });
  return loads;
}

describe("concurrent loads", () => {
  it("loads two cold models on GPUs 0 and 1 at the same time, not one after the other", async () => {
    const h = await setup([
      { id: "a", gpu: "0", args: ["--fake-load-ms", "1500"] },
      { id: "b", gpu: "1", args: ["--fake-load-ms", "1500"] },
    ]);
    const loads = recordLoads(h);
    const answers = await Promise.all([chat(h.gateway, "a"), chat(h.gateway, "b")]);
    for (const res of answers) expect(res.status).toBe(200);
    expect(h.spawns()).toBe(2);
    const a = loads.get("a")!;
    const b = loads.get("b")!;
    // The two loads overlap: each was spawned before the other was ready.
    expect(a.from).toBeLessThan(b.to!);
    expect(b.from).toBeLessThan(a.to!);
  });

  it("loads two cold models on overlapping slots one after the other, swapping the first out", async () => {
    const h = await setup([
      { id: "a", gpu: "0", args: ["--fake-load-ms", "500"] },
      { id: "b", gpu: "0,1", args: ["--fake-load-ms", "500"] },
    ]);
    const loads = recordLoads(h);
    const unloaded: string[] = [];
    h.controller.registry.subscribe((e) => {
      if (GONE.has(e.event) && e.model_id) unloaded.push(e.model_id);
    });
    const [ra, rb] = await Promise.all([chat(h.gateway, "a"), chat(h.gateway, "b")]);
    expect(ra.status).toBe(200);
    expect(rb.status).toBe(200);
    expect(h.spawns()).toBe(2);
    const [first, second] = [...loads.entries()].sort((x, y) => x[1].from - y[1].from);
    // The second was spawned only after the first was ready, and after the first was swapped out.
    expect(second![1].from).toBeGreaterThanOrEqual(first![1].to!);
    expect(unloaded).toEqual([first![0]]);
    expect((await h.controller.registry.list()).map((l) => l.entry.model_id)).toEqual([second![0]]);
  });

  it("with max_loaded 1, two concurrent cold requests on different GPUs never have two loaded at once", async () => {
    const h = await setup(
      [
        { id: "a", gpu: "0", args: ["--fake-load-ms", "500"] },
        { id: "b", gpu: "1", args: ["--fake-load-ms", "500"] },
      ],
      { max_loaded: 1 },
    );
    let registered = 0;
    let most = 0;
    h.controller.registry.subscribe((e) => {
      if (e.event === "registered") most = Math.max(most, ++registered);
      if (GONE.has(e.event)) registered--;
    });
    const answers = await Promise.all([chat(h.gateway, "a"), chat(h.gateway, "b")]);
    for (const res of answers) expect(res.status).toBe(200);
    expect(h.spawns()).toBe(2);
    expect(most).toBe(1);
    expect(await h.controller.registry.list()).toHaveLength(1);
  });
  it("never evicts a load in flight, even once every request for it has timed out", async () => {
    const h = await setup(
      [
        { id: "a", gpu: "0", args: ["--fake-load-ms", "3000"] },
        { id: "b", gpu: "1", args: ["--fake-load-ms", "200"] },
      ],
      { max_loaded: 1, queue_timeout_ms: 2000 },
    );
    const steps: string[] = [];
    h.controller.registry.subscribe((e) => {
      if (e.model_id !== "a") return;
      if (e.event === "status") steps.push(`${e.from} → ${e.to}`);
      if (GONE.has(e.event)) steps.push(e.event);
    });
    const timedOut = await h.gateway.acquire("a").catch((e) => e);
    expect(timedOut.kind).toBe("queue_timeout");
    // a is still loading and nobody waits for it: b waits for a's load to end, then evicts it.
    const lease = await h.gateway.acquire("b");
    lease.done();
    // a came up before it was stopped: not killed while loading.
    expect(steps).toEqual(["loading → running", "running → stopping", "killed"]);
    expect((await h.controller.registry.list()).map((l) => l.entry.model_id)).toEqual(["b"]);
  });
});

describe("a model unloaded by another process", () => {
  it("is loaded again for the next request, though the gateway's view still had it", async () => {
    const h = await setup([{ id: "a", gpu: "0" }], {}, { viewMs: 60_000 });
    expect((await chat(h.gateway, "a")).status).toBe(200);
    const first = (await pidOf(h, "a"))!;
    // The CLI beside the server: its own controller on the same home.
    const cli = await h.reopen();
    await cli.controller.unload("0");
    const lease = await routeRequest(h.gateway, "a", { method: "POST", path: "/v1/completions", body: "{}" });
    expect(lease.response.status).toBe(200);
    expect(lease.lease.entry.pid).not.toBe(first);
    lease.lease.done();
  });
});

describe("swap", () => {
  it("unloads the idle model holding the slot and loads the requested one", async () => {
    const h = await setup([
      { id: "a", gpu: "0" },
      { id: "b", gpu: "0,1" },
    ]);
    expect((await chat(h.gateway, "a")).status).toBe(200);
    const a = (await pidOf(h, "a"))!;
    expect((await chat(h.gateway, "b")).status).toBe(200);
    expect(await pidOf(h, "a")).toBeUndefined();
    await until(() => !alive(a));
    expect(await pidOf(h, "b")).toBeNumber();
  });

  it("never swaps out a pinned model: the request is refused with 503", async () => {
    const h = await setup([
      { id: "a", gpu: "0", pinned: true },
      { id: "b", gpu: "0" },
    ]);
    await chat(h.gateway, "a");
    const a = (await pidOf(h, "a"))!;
    const error = await h.gateway.acquire("b").catch((e) => e);
    expect(error.kind).toBe("swap_refused");
    expect(error.message).toContain("pinned");
    expect(alive(a)).toBe(true);
  });

  it("refuses instead of swapping when gateway.swap is false", async () => {
    const h = await setup(
      [
        { id: "a", gpu: "0" },
        { id: "b", gpu: "0" },
      ],
      { swap: false },
    );
    await chat(h.gateway, "a");
    const error = await h.gateway.acquire("b").catch((e) => e);
    expect(error.kind).toBe("swap_refused");
    expect(error.message).toContain("gateway.swap is false");
  });

  it("waits for a streaming model to finish before swapping it out", async () => {
    const h = await setup([
      { id: "a", gpu: "0", args: ["--fake-token-ms", "20"] },
      { id: "b", gpu: "0" },
    ]);
    const stream = await chat(h.gateway, "a", { stream: true, max_tokens: 30 });
    const reader = stream.body!.getReader();
    await reader.read();
    const order: string[] = [];
    const swapped = chat(h.gateway, "b").then((res) => {
      order.push("b answered");
      return res;
    });
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    order.push("a finished");
    expect((await swapped).status).toBe(200);
    expect(order).toEqual(["a finished", "b answered"]);
    expect(text).toContain("tok29");
    expect(text).toContain("[DONE]");
    expect(text).not.toContain("error");
  });
});

describe("idle policy", () => {
  it("unloads a model idle past its ttl, but not while a stream is running", async () => {
    const h = await setup([{ id: "a", gpu: "0", ttl: 1, args: ["--fake-token-ms", "30"] }]);
    const stream = await chat(h.gateway, "a", { stream: true, max_tokens: 50 });
    const reader = stream.body!.getReader();
    await Bun.sleep(1100);
    expect(await h.gateway.sweep()).toEqual([]);
    const [streaming] = await h.gateway.models();
    expect(streaming).toMatchObject({ state: "loaded", in_flight: 1, unload_at: undefined });
    while (!(await reader.read()).done) {
      // drain
    }
    const [idle] = await h.gateway.models();
    expect(idle?.unload_at).toBeString();
    expect(await h.gateway.sweep()).toEqual([]);
    await Bun.sleep(1050);
    expect(await h.gateway.sweep()).toEqual(["a"]);
    expect(await pidOf(h, "a")).toBeUndefined();
  });

  it("evicts the least recently used idle model beyond max_loaded", async () => {
    const h = await setup(
      [
        { id: "a", gpu: "0" },
        { id: "b", gpu: "1" },
        { id: "c", gpu: "2" },
      ],
      { max_loaded: 2 },
    );
    await chat(h.gateway, "a");
    await chat(h.gateway, "b");
    await chat(h.gateway, "a");
    await chat(h.gateway, "c");
    const loaded = (await h.controller.registry.list()).map((l) => l.entry.model_id).sort();
    expect(loaded).toEqual(["a", "c"]);
  });

  it("records the last request in the registry, so a reopened gateway keeps the idle clock", async () => {
    const h = await setup([{ id: "a", gpu: "0", ttl: 3600 }]);
    await chat(h.gateway, "a");
    await until(async () => (await h.controller.registry.list())[0]?.entry.last_request_at !== undefined);
    const recorded = (await h.controller.registry.list())[0]!.entry.last_request_at!;
    const reopened = await h.reopen();
    const [view] = await reopened.gateway.models();
    expect(view?.last_request_at).toBe(recorded);
    expect(Date.parse(view!.unload_at!)).toBe(Date.parse(recorded) + 3600_000);
  });
});

describe("streams", () => {
  it("ends the client's stream with an error event when the llama-server dies mid-stream", async () => {
    const h = await setup([{ id: "a", gpu: "0", args: ["--fake-token-ms", "30"] }]);
    const stream = await chat(h.gateway, "a", { stream: true, max_tokens: 100 });
    const reader = stream.body!.getReader();
    await reader.read();
    process.kill((await pidOf(h, "a"))!, "SIGKILL");
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text).toContain('"error"');
    expect(text).not.toContain("[DONE]");
    const [view] = await h.gateway.models();
    expect(view?.in_flight).toBe(0);
  });

  it("aborts the upstream request when the client cancels: the server's slot is idle again", async () => {
    const h = await setup([{ id: "a", gpu: "0", args: ["--fake-token-ms", "20"] }]);
    const stream = await chat(h.gateway, "a", { stream: true, max_tokens: 1000 });
    const reader = stream.body!.getReader();
    await reader.read();
    const port = (await h.controller.registry.list())[0]!.entry.port;
    const busy = async () =>
      ((await (await fetch(`http://127.0.0.1:${port}/slots`)).json()) as [{ is_processing: boolean }])[0].is_processing;
    expect(await busy()).toBe(true);
    await reader.cancel();
    await until(async () => !(await busy()), 1000);
    const [view] = await h.gateway.models();
    expect(view?.in_flight).toBe(0);
  });
});

describe("last_request_at in processes.json", () => {
  it("reads the original's entries unchanged and round-trips the added field", async () => {
    const dir = mkdtempSync(join(tmpdir(), "corral-last-request-"));
    try {
      const file = join(dir, "processes.json");
      const original = {
        pid: 4242,
        model_id: "qwen",
        model_name: "Qwen",
        model_path: "/m/q.gguf",
        gpu_id: 0,
        port: 8081,
        started_at: "2026-11-26T12:00:00",
        command_line: ["llama-server"],
        status: "running",
      };
      writeFileSync(file, JSON.stringify({ version: "1.0", last_updated: "x", processes: { "0": original } }));
      const store = createStore({ file });
      expect((await store.read()).entries["0"]).toEqual(original);
      await store.update((entries) => {
        entries["0"]!.last_request_at = "2026-12-01T10:00:00.000Z";
      });
      const written = JSON.parse(readFileSync(file, "utf8")).processes["0"];
      expect(written).toEqual({ ...original, last_request_at: "2026-12-01T10:00:00.000Z" });
      expect((await createStore({ file }).read()).entries["0"]?.last_request_at).toBe("2026-12-01T10:00:00.000Z");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
