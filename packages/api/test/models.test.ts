import { afterAll, describe, expect, it } from "bun:test";
import { isPortFree, LogBatchSchema, pickFreePort } from "@corral/core";
import { authed, call, sseData, type TestHome, testHome } from "./helpers.ts";

const homes: TestHome[] = [];
afterAll(() => {
  for (const t of homes) t.cleanup();
});

async function home(...args: Parameters<typeof testHome>): Promise<TestHome> {
  const t = await testHome(...args);
  homes.push(t);
  return t;
}

describe("GET /api/v1/models", () => {
  it("lists the configured models in the original controller's shape, with where each is loaded", async () => {
    const t = await home([{ id: "tiny" }, { id: "other", gpu: "1", port: 9999 }]);
    const { status, body } = await call(t.app(), "GET", "/api/v1/models");
    expect(status).toBe(200);
    expect(body.models.map((m: { id: string }) => m.id)).toEqual(["tiny", "other"]);
    expect(body.models[0]).toMatchObject({
      id: "tiny",
      name: "tiny",
      status: "available",
      loaded: false,
      loaded_in: [],
    });
    expect(body.models[1]).toMatchObject({ gpu: "1", port: 9999 });
  });
});

describe("POST /api/v1/models/load, /unload and /switch", () => {
  it("loads a model, answers once it is running, and unloads it freeing the port", async () => {
    const t = await home([{ id: "tiny", args: ["--fake-load-ms", "200"] }]);
    const app = t.app();
    const loaded = await call(app, "POST", "/api/v1/models/load", { model_id: "tiny", gpu_id: 0 });
    expect(loaded.status).toBe(200);
    expect(loaded.body).toMatchObject({
      success: true,
      model_id: "tiny",
      slot: "0",
      status: { status: "running", model_id: "tiny" },
    });
    const { pid, port } = loaded.body.status;
    expect(loaded.body.status.server_url).toBe(`http://127.0.0.1:${port}`);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);

    const models = await call(app, "GET", "/api/v1/models");
    expect(models.body.models[0]).toMatchObject({ status: "loaded", loaded: true, loaded_in: ["0"] });

    const unloaded = await call(app, "POST", "/api/v1/models/unload", { gpu_id: "0" });
    expect(unloaded.status).toBe(200);
    expect(unloaded.body).toMatchObject({ success: true, slot: "0", pid, signalled: true, port_freed: true });
    expect(await isPortFree(port)).toBe(true);
    expect(await t.controller.registry.list()).toEqual([]);
  });

  it('accepts the original controller\'s gpu_id "both" as slot 0,1', async () => {
    const t = await home([{ id: "tiny" }]);
    const app = t.app();
    const loaded = await call(app, "POST", "/api/v1/models/load", { model_id: "tiny", gpu_id: "both" });
    expect(loaded.status).toBe(200);
    expect(loaded.body.slot).toBe("0,1");
    expect((await call(app, "POST", "/api/v1/models/unload", { gpu_id: "1,0" })).status).toBe(200);
  });

  it("loads on GPU 0 when gpu_id is left out and the model names no GPU, as the original did", async () => {
    const t = await home([{ id: "tiny" }]);
    const app = t.app();
    const loaded = await call(app, "POST", "/api/v1/models/load", { model_id: "tiny" });
    expect(loaded.status).toBe(200);
    expect(loaded.body.slot).toBe("0");
    await call(app, "POST", "/api/v1/models/unload", { gpu_id: 0 });
  });

  it("refuses a second model on an overlapping slot with 409 naming the holder, and replaces it when asked", async () => {
    const t = await home([{ id: "tiny" }, { id: "other" }]);
    const app = t.app();
    const first = await call(app, "POST", "/api/v1/models/load", { model_id: "tiny", gpu_id: 1 });
    const clash = await call(app, "POST", "/api/v1/models/load", { model_id: "other", gpu_id: "0,1" });
    expect(clash.status).toBe(409);
    expect(clash.body.error.code).toBe("SLOT_IN_USE");
    expect(clash.body.error.message).toContain(String(first.body.status.pid));
    const replaced = await call(app, "POST", "/api/v1/models/load", {
      model_id: "other",
      gpu_id: "0,1",
      replace: true,
    });
    expect(replaced.status).toBe(200);
    expect((await t.controller.registry.list()).map((e) => e.slot)).toEqual(["0,1"]);
    await call(app, "POST", "/api/v1/models/unload", { gpu_id: "0,1" });
  });

  it("switches a slot to another model and reports the old one", async () => {
    const t = await home([{ id: "tiny" }, { id: "other" }]);
    const app = t.app();
    await call(app, "POST", "/api/v1/models/load", { model_id: "tiny", gpu_id: 2 });
    const switched = await call(app, "POST", "/api/v1/models/switch", { model_id: "other", gpu_id: 2 });
    expect(switched.status).toBe(200);
    expect(switched.body).toMatchObject({ success: true, old_model_id: "tiny", new_model_id: "other", slot: "2" });
    expect((await t.controller.registry.get("2"))?.model_id).toBe("other");
    await call(app, "POST", "/api/v1/models/unload", { gpu_id: 2 });
  });

  it("reports the model each switch replaced, even when two switches of one slot race", async () => {
    const t = await home([{ id: "tiny" }, { id: "other" }]);
    const app = t.app();
    await call(app, "POST", "/api/v1/models/load", { model_id: "tiny", gpu_id: 3 });
    const [a, b] = await Promise.all([
      call(app, "POST", "/api/v1/models/switch", { model_id: "other", gpu_id: 3 }),
      call(app, "POST", "/api/v1/models/switch", { model_id: "tiny", gpu_id: 3 }),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    // Whichever ran second replaced what the first loaded, and says so.
    const [first, second] = a.body.old_model_id === "tiny" ? [a, b] : [b, a];
    expect(first.body.old_model_id).toBe("tiny");
    expect(second.body.old_model_id).toBe(first.body.new_model_id);
    await call(app, "POST", "/api/v1/models/unload", { gpu_id: 3 });
  });

  it("answers 404 for an unknown model, naming the known ones", async () => {
    const t = await home([{ id: "tiny" }]);
    const { status, body } = await call(t.app(), "POST", "/api/v1/models/load", { model_id: "nope", gpu_id: 0 });
    expect(status).toBe(404);
    expect(body.error.code).toBe("UNKNOWN_MODEL");
    expect(body.error.message).toContain("tiny");
  });

  it("answers 503 with the exit code and log when the server dies while loading", async () => {
    const t = await home([{ id: "broken", args: ["--fake-exit-on-start", "3"] }]);
    const { status, body } = await call(t.app(), "POST", "/api/v1/models/load", { model_id: "broken", gpu_id: 0 });
    expect(status).toBe(503);
    expect(body.error.code).toBe("LOAD_FAILED");
    expect(body.error.message).toContain("code 3");
    expect(await t.controller.registry.list()).toEqual([]);
  });

  it("answers 409 when the requested port is taken by someone else", async () => {
    const t = await home([{ id: "tiny" }]);
    const port = await pickFreePort(t.controller.config.ports.range);
    const holder = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
    try {
      const { status, body } = await call(t.app(), "POST", "/api/v1/models/load", {
        model_id: "tiny",
        gpu_id: 0,
        port,
      });
      expect(status).toBe(409);
      expect(body.error.code).toBe("PORT_IN_USE");
    } finally {
      holder.stop(true);
    }
  });

  it("answers 422 for a port outside the configured range and per-GPU ports, and starts nothing", async () => {
    const t = await home([{ id: "tiny" }]);
    for (const path of ["/api/v1/models/load", "/api/v1/models/switch"]) {
      const { status, body } = await call(t.app(), "POST", path, { model_id: "tiny", gpu_id: 0, port: 22 });
      expect(status).toBe(422);
      expect(body.error.code).toBe("PORT_NOT_ALLOWED");
      expect(body.error.message).toContain("ports.range");
    }
    expect(await t.controller.entries()).toEqual([]);
  });

  it("answers 404 when unloading an empty slot", async () => {
    const t = await home([{ id: "tiny" }]);
    const { status, body } = await call(t.app(), "POST", "/api/v1/models/unload", { gpu_id: 5 });
    expect(status).toBe(404);
    expect(body.error.code).toBe("NOT_FOUND");
  });

  it("answers 422 naming the field for a bad model_id, gpu_id, port or missing body", async () => {
    const t = await home([{ id: "tiny" }]);
    const app = t.app();
    const cases: Array<[string, unknown, string]> = [
      ["/api/v1/models/load", { model_id: "", gpu_id: 0 }, "model_id"],
      ["/api/v1/models/load", { model_id: "tiny", gpu_id: "../../etc" }, "gpu_id"],
      ["/api/v1/models/load", { model_id: "tiny", gpu_id: -1 }, "gpu_id"],
      ["/api/v1/models/load", { model_id: "tiny", gpu_id: 0, port: 70_000 }, "port"],
      ["/api/v1/models/load", { gpu_id: 0 }, "model_id"],
      ["/api/v1/models/unload", {}, "gpu_id"],
      ["/api/v1/models/switch", { gpu_id: 0 }, "model_id"],
    ];
    for (const [path, body, field] of cases) {
      const res = await call(app, "POST", path, body);
      expect({ path, body, status: res.status, code: res.body.error?.code }).toEqual({
        path,
        body,
        status: 422,
        code: "VALIDATION",
      });
      expect(res.body.error.message).toContain(field);
    }
    expect(await t.controller.registry.list()).toEqual([]);
  });
});

describe("GET /api/v1/logs", () => {
  it("returns the last lines of a slot's log in the original { logs, total_lines } shape", async () => {
    const t = await home([{ id: "tiny" }]);
    const app = t.app();
    await call(app, "POST", "/api/v1/models/load", { model_id: "tiny", gpu_id: 0 });
    const { status, body } = await call(app, "GET", "/api/v1/logs?gpu_id=0&lines=3");
    expect(status).toBe(200);
    expect(body.logs).toHaveLength(3);
    expect(body.total_lines).toBe(3);
    const all = await call(app, "GET", "/api/v1/logs");
    expect(all.body.logs.join("\n")).toContain("corral");
    await call(app, "POST", "/api/v1/models/unload", { gpu_id: 0 });
  });

  it("streams new lines with follow=true", async () => {
    const t = await home([{ id: "tiny" }]);
    const app = t.app();
    const loaded = await call(app, "POST", "/api/v1/models/load", { model_id: "tiny", gpu_id: 0 });
    const res = await app.handle(authed("/api/v1/logs?gpu_id=0&lines=1&follow=true"));
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = res.body!.getReader();
    let text = "";
    // The stand-in logs each request it serves: asking /health writes a new line to follow.
    await fetch(`http://127.0.0.1:${loaded.body.status.port}/health`);
    const deadline = Date.now() + 10_000;
    while (!text.includes("GET /health") && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
      if (!text.includes("GET /health")) await fetch(`http://127.0.0.1:${loaded.body.status.port}/health`);
    }
    await reader.cancel();
    const frames = sseData(text, LogBatchSchema);
    expect(frames.length).toBeGreaterThan(0);
    expect(frames.flatMap((f) => f.lines).join("\n")).toContain("GET /health");
    await call(app, "POST", "/api/v1/models/unload", { gpu_id: 0 });
  });

  it("answers 422 for lines out of range and for a gpu_id with path tricks", async () => {
    const t = await home([{ id: "tiny" }]);
    const app = t.app();
    for (const query of [
      "lines=0",
      "lines=10001",
      "lines=abc",
      "gpu_id=..%2F..%2Fetc",
      "gpu_id=0%2F..",
      "follow=maybe",
    ]) {
      const { status, body } = await call(app, "GET", `/api/v1/logs?${query}`);
      expect({ query, status }).toEqual({ query, status: 422 });
      expect(body.error.message).toContain(query.split("=")[0]!);
    }
  });

  it("answers an empty log for a slot that never ran", async () => {
    const t = await home([{ id: "tiny" }]);
    const { status, body } = await call(t.app(), "GET", "/api/v1/logs?gpu_id=7");
    expect(status).toBe(200);
    expect(body).toEqual({ logs: [], total_lines: 0 });
  });
});
