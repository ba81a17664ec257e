import { afterAll, describe, expect, it } from "bun:test";
import { type HistoryEvent, HistoryEventSchema } from "@corral/core";
import type { LogLevel } from "../src/deps.ts";
import { authed, call, sseData, type TestHome, testHome } from "./helpers.ts";

const t: TestHome = await testHome([{ id: "tiny" }]);
afterAll(() => t.cleanup());

const TOKEN = "correct-horse-battery-staple";
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("the bearer token", () => {
  const app = t.app({ token: TOKEN });
  const guarded: Array<[string, string]> = [
    ["GET", "/api/v1/process-registry"],
    ["POST", "/api/v1/cleanup-orphaned"],
    ["GET", "/api/v1/models"],
    ["POST", "/api/v1/models/load"],
    ["POST", "/api/v1/models/unload"],
    ["POST", "/api/v1/models/switch"],
    ["GET", "/api/v1/logs"],
    ["GET", "/api/v1/processes"],
    ["GET", "/api/v1/processes/0"],
    ["POST", "/api/v1/processes/0/verify"],
    ["DELETE", "/api/v1/processes/0"],
    ["GET", "/api/v1/orphans"],
    ["POST", "/api/v1/orphans/1234/adopt"],
    ["POST", "/api/v1/orphans/1234/kill"],
    ["POST", "/api/v1/kill"],
    ["GET", "/api/v1/gpus"],
    ["GET", "/api/v1/history"],
    ["GET", "/api/v1/events"],
    ["GET", "/metrics"],
    ["GET", "/api/v1/no-such-route"],
  ];

  it("is required on every route but health, with a challenge header", async () => {
    for (const [method, path] of guarded) {
      const res = await call(app, method, path, method === "GET" ? undefined : { pid: 1234 });
      expect({ method, path, status: res.status, code: res.body.error?.code }).toEqual({
        method,
        path,
        status: 401,
        code: "UNAUTHORIZED",
      });
      expect(res.headers.get("www-authenticate")).toStartWith("Bearer");
    }
  });

  it("refuses a wrong token, including one that only shares a prefix", async () => {
    for (const token of ["wrong", TOKEN.slice(0, -1), `${TOKEN}x`, ""]) {
      const res = await call(app, "GET", "/api/v1/processes", undefined, { authorization: `Bearer ${token}` });
      expect(res.status).toBe(401);
    }
    const basic = await call(app, "GET", "/api/v1/processes", undefined, {
      authorization: `Basic ${btoa(`u:${TOKEN}`)}`,
    });
    expect(basic.status).toBe(401);
  });

  it("lets the right token through", async () => {
    const res = await call(app, "GET", "/api/v1/processes", undefined, bearer(TOKEN));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ processes: [] });
  });

  it("is not needed for GET /api/v1/health", async () => {
    const res = await call(app, "GET", "/api/v1/health");
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ healthy: true, status: "running" });
  });

  it("may come as ?access_token= on the event stream", async () => {
    const res = await app.handle(new Request(`http://localhost/api/v1/events?access_token=${TOKEN}`));
    expect(res.status).toBe(200);
    await res.body?.cancel();
    expect((await call(app, "GET", `/api/v1/processes?access_token=${TOKEN}`)).status).toBe(401);
  });
});

describe("bad input", () => {
  const app = t.app({ bodyLimitBytes: 1024 });

  it("answers 400 for malformed JSON, never 500", async () => {
    for (const body of ["{", '{"model_id": }', "not json at all", "\u0000\u0001"]) {
      const res = await call(app, "POST", "/api/v1/models/load", body);
      expect({ body, status: res.status, code: res.body.error?.code }).toEqual({
        body,
        status: 400,
        code: "INVALID_JSON",
      });
    }
  });

  it("answers 422 for JSON of the wrong shape", async () => {
    for (const body of ["null", "[]", "42", '"text"', '{"model_id": 5}']) {
      const res = await call(app, "POST", "/api/v1/models/load", body);
      expect({ body, status: res.status }).toEqual({ body, status: 422 });
    }
  });

  it("refuses a body that is not application/json with 415, saying which check refused it", async () => {
    // text/plain is what a cross-site "simple" request sends without a preflight.
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const res = await app.handle(
        authed("/api/v1/models/unload", { method: "POST", headers: { "content-type": type }, body: '{"gpu_id": 9}' }),
      );
      expect({ type, status: res.status }).toEqual({ type, status: 415 });
      expect(((await res.json()) as any).error.message).toStartWith("content-type check");
    }
    const json = await app.handle(
      authed("/api/v1/models/unload", {
        method: "POST",
        headers: { "content-type": "application/json; charset=utf-8" },
        body: '{"gpu_id": 9}',
      }),
    );
    expect(json.status).toBe(404); // parsed, validated, and the slot is empty
  });

  it("answers 413 for a body over the limit, declared or streamed", async () => {
    const big = JSON.stringify({ model_id: "x".repeat(2048), gpu_id: 0 });
    const declared = await call(app, "POST", "/api/v1/models/load", big);
    expect(declared.status).toBe(413);
    expect(declared.body.error.code).toBe("PAYLOAD_TOO_LARGE");
    const chunks = new ReadableStream({
      start(c) {
        for (let i = 0; i < 8; i++) c.enqueue(new TextEncoder().encode(" ".repeat(512)));
        c.close();
      },
    });
    const streamed = await app.handle(
      authed("/api/v1/models/load", { method: "POST", body: chunks, headers: { "content-type": "application/json" } }),
    );
    expect(streamed.status).toBe(413);
  });

  it("answers 404 with an error body for an unknown route", async () => {
    const res = await call(app, "GET", "/api/v1/nope");
    expect(res.status).toBe(404);
    expect(res.body.error).toEqual({ code: "NOT_FOUND", message: "no such endpoint: GET /api/v1/nope" });
  });

  it("names the field in every 422", async () => {
    const res = await call(app, "GET", "/api/v1/logs?lines=-3");
    expect(res.body.error.message).toBe("lines: an integer from 1 to 10000");
  });
});

describe("CORS", () => {
  it("sends no CORS headers unless origins are configured", async () => {
    const res = await t
      .app()
      .handle(new Request("http://localhost/api/v1/health", { headers: { origin: "https://evil.example" } }));
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("allows a configured origin, answers its preflight without a token, and ignores others", async () => {
    const app = t.app({ cors: ["https://ops.example"], token: TOKEN });
    const preflight = await app.handle(
      new Request("http://localhost/api/v1/models/load", {
        method: "OPTIONS",
        headers: { origin: "https://ops.example", "access-control-request-method": "POST" },
      }),
    );
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("https://ops.example");
    expect(preflight.headers.get("access-control-allow-headers")).toContain("authorization");
    const real = await app.handle(
      new Request("http://localhost/api/v1/processes", {
        headers: { origin: "https://ops.example", ...bearer(TOKEN) },
      }),
    );
    expect(real.headers.get("access-control-allow-origin")).toBe("https://ops.example");
    // A page on the allowed origin must be able to read why it was refused.
    const refused = await app.handle(
      new Request("http://localhost/api/v1/processes", { headers: { origin: "https://ops.example" } }),
    );
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe("https://ops.example");
    const other = await app.handle(
      new Request("http://localhost/api/v1/processes", {
        headers: { origin: "https://evil.example", ...bearer(TOKEN) },
      }),
    );
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("the OpenAPI document", () => {
  it("describes every endpoint from the TypeBox schemas", async () => {
    const { status, body } = await call(t.app(), "GET", "/openapi/json");
    expect(status).toBe(200);
    for (const path of [
      "/api/v1/process-registry",
      "/api/v1/cleanup-orphaned",
      "/api/v1/models",
      "/api/v1/models/load",
      "/api/v1/models/unload",
      "/api/v1/models/switch",
      "/api/v1/logs",
      "/api/v1/health",
      "/api/v1/processes",
      "/api/v1/processes/{slot}",
      "/api/v1/processes/{slot}/verify",
      "/api/v1/orphans",
      "/api/v1/orphans/{pid}/adopt",
      "/api/v1/orphans/{pid}/kill",
      "/api/v1/kill",
      "/api/v1/gpus",
      "/api/v1/history",
      "/api/v1/events",
      "/metrics",
    ]) {
      expect(Object.keys(body.paths).map((p) => p.replace(/\/$/, ""))).toContain(path);
    }
    const load = body.paths["/api/v1/models/load"].post;
    expect(JSON.stringify(load.requestBody)).toContain("model_id");
    expect((await t.app().handle(authed("/openapi"))).headers.get("content-type")).toContain("text/html");
  });
});

describe("GET /api/v1/events", () => {
  async function readUntil(
    reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> },
    needle: string,
  ): Promise<string> {
    let text = "";
    while (!text.includes(needle)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended before "${needle}"; got: ${text}`);
      text += new TextDecoder().decode(value);
    }
    return text;
  }

  it("streams each registry event as it happens", async () => {
    const res = await t.app().handle(authed("/api/v1/events"));
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = res.body!.getReader();
    await readUntil(reader, ": connected");
    await t.controller.registry.record({ event: "note", reason: "hello from the test" });
    const text = await readUntil(reader, "hello from the test");
    // Earlier tests' requests are audited as "request" events, which may still be arriving.
    const events = sseData(text, HistoryEventSchema);
    expect(events.find((e) => e.reason === "hello from the test")).toMatchObject({ event: "note" });
    await reader.cancel();
  });

  it("sends heartbeat comments and unsubscribes when the client goes away", async () => {
    const listeners = new Set<(e: HistoryEvent) => void>();
    const supervisor = {
      subscribe(listener: (e: HistoryEvent) => void) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      statuses: async () => [],
    };
    const res = await t.app({ supervisor, heartbeatMs: 50 }).handle(authed("/api/v1/events"));
    const reader = res.body!.getReader();
    await readUntil(reader, ": heartbeat");
    expect(listeners.size).toBe(1);
    for (const l of listeners)
      l({ time: "2026-11-26T12:00:00.000Z", event: "status", slot: "0", from: "running", to: "unhealthy" });
    expect(await readUntil(reader, "unhealthy")).toContain('"to":"unhealthy"');
    await reader.cancel();
    expect(listeners.size).toBe(0);
  });
});

describe("the request log", () => {
  it("writes one line per request, with the level following the status and no query string", async () => {
    const lines: Array<[LogLevel, string]> = [];
    const app = t.app({ logger: (level, line) => lines.push([level, line]), token: TOKEN });
    await call(app, "GET", "/api/v1/health");
    await call(app, "GET", "/api/v1/processes?access_token=secret");
    await Bun.sleep(10);
    expect(lines).toHaveLength(2);
    expect(lines[0]![0]).toBe("info");
    expect(lines[0]![1]).toMatch(/^GET \/api\/v1\/health 200 \d+\.\dms$/);
    expect(lines[1]![0]).toBe("warn");
    expect(lines[1]![1]).toStartWith("GET /api/v1/processes 401");
    expect(lines.join("\n")).not.toContain("secret");
  });
});
