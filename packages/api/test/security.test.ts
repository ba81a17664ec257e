import { afterAll, describe, expect, it } from "bun:test";
import { symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTokenStore, type TokenStore } from "@corral/core";
import { authed, call, TEST_TOKEN, type TestHome, testHome, waitFor } from "./helpers.ts";

const t: TestHome = await testHome([{ id: "tiny" }]);
afterAll(() => t.cleanup());

/** Requests a page on evil.example could make the browser send, without a preflight. */
const SIMPLE_CROSS_SITE: Array<[string, RequestInit]> = [
  ["text/plain kill", { method: "POST", headers: { "content-type": "text/plain" }, body: '{"name":"tiny"}' }],
  [
    "form load",
    {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "model_id=tiny&gpu_id=0",
    },
  ],
  ["bodiless cleanup", { method: "POST" }],
];

describe("browser-borne requests", () => {
  const app = t.app();

  it("refuses a foreign Origin on every state-changing request, token or not, saying which check refused", async () => {
    for (const path of ["/api/v1/kill", "/api/v1/models/load", "/api/v1/cleanup-orphaned?force=true"]) {
      for (const [what, init] of SIMPLE_CROSS_SITE) {
        const headers = new Headers(init.headers);
        headers.set("origin", "http://evil.example");
        const res = await app.handle(authed(path, { ...init, headers }));
        const body = (await res.json()) as { error: { code: string; message: string } };
        expect({ path, what, status: res.status, code: body.error.code }).toEqual({
          path,
          what,
          status: 403,
          code: "ORIGIN_NOT_ALLOWED",
        });
        expect(body.error.message).toStartWith("origin check");
      }
    }
    // The same without auth at all (auth: none): the browser checks do not depend on the token.
    const open = t.app({ auth: "none" });
    const res = await call(open, "POST", "/api/v1/orphans/1234/kill", undefined, { origin: "http://evil.example" });
    expect(res.status).toBe(403);
    expect((await t.controller.history({ limit: 5 })).some((e) => e.event === "request")).toBe(false);
  });

  it("refuses Sec-Fetch-Site: cross-site and non-JSON bodies, and lets the page's own origin and curl through", async () => {
    const cross = await call(app, "POST", "/api/v1/models/unload", { gpu_id: 9 }, { "sec-fetch-site": "cross-site" });
    expect([cross.status, cross.body.error.code]).toEqual([403, "CROSS_SITE"]);
    const plain = await app.handle(
      authed("/api/v1/models/unload", { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" }),
    );
    expect(plain.status).toBe(415);
    const same = await call(app, "POST", "/api/v1/models/unload", { gpu_id: 9 }, { origin: "http://localhost" });
    expect(same.status).toBe(404); // passed every check; slot 9 is empty
    const curl = await call(app, "POST", "/api/v1/models/unload", { gpu_id: 9 });
    expect(curl.status).toBe(404);
  });

  it("refuses a Host that is not loopback, an address, the bind address or a configured name (DNS rebinding)", async () => {
    const rebound = await app.handle(new Request("http://rebind.attacker.example/api/v1/processes", authed("/")));
    expect(rebound.status).toBe(403);
    expect(((await rebound.json()) as any).error.code).toBe("HOST_NOT_ALLOWED");
    const health = await app.handle(new Request("http://rebind.attacker.example/api/v1/health"));
    expect(health.status).toBe(403);
    for (const host of ["localhost", "127.0.0.1", "[::1]", "10.1.2.3"]) {
      const res = await app.handle(new Request(`http://${host}/api/v1/processes`, authed("/")));
      expect({ host, status: res.status }).toEqual({ host, status: 200 });
    }
    const named = t.app({ hosts: ["gpu-box.lan"] });
    expect((await named.handle(new Request("http://gpu-box.lan/api/v1/processes", authed("/")))).status).toBe(200);
    expect((await named.handle(new Request("http://gpu-box.lan.evil/api/v1/processes", authed("/")))).status).toBe(403);
  });

  it("takes a model route's form-encoded body from curl (Ollama's examples), never from a page", async () => {
    const init = (headers: Record<string, string>) =>
      authed("/api/generate", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
        body: '{"model":"tiny","prompt":"hi"}',
      });
    const curl = await app.handle(init({}));
    expect(curl.status).not.toBe(415);
    await curl.arrayBuffer();
    const page = await app.handle(init({ origin: "http://localhost", "sec-fetch-site": "same-origin" }));
    expect(page.status).toBe(415);
    const other = await app.handle(
      authed("/api/v1/models/unload", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: '{"gpu_id":9}',
      }),
    );
    expect(other.status).toBe(415);
  });

  it("lets a configured CORS origin change state, and no other", async () => {
    const cors = t.app({ cors: ["https://ops.example"] });
    const ok = await call(cors, "POST", "/api/v1/models/unload", { gpu_id: 9 }, { origin: "https://ops.example" });
    expect(ok.status).toBe(404);
    const other = await call(
      cors,
      "POST",
      "/api/v1/models/unload",
      { gpu_id: 9 },
      { origin: "https://ops.example.evil" },
    );
    expect(other.status).toBe(403);
  });
});

describe("named, scoped tokens", () => {
  let store: TokenStore;
  const secrets: Record<string, string> = {};
  const bearer = (name: string) => ({ authorization: `Bearer ${secrets[name]}` });

  it("are made, listed and revoked through the API by an admin token only", async () => {
    store = createTokenStore({ file: join(t.home, "tokens.json") });
    const app = t.app({ tokens: store });
    for (const scope of ["read", "control", "admin", "inference"] as const) {
      const made = await call(app, "POST", "/api/v1/tokens", { name: `${scope}-1`, scope });
      expect(made.status).toBe(200);
      expect(made.body).toMatchObject({ name: `${scope}-1`, scope });
      secrets[scope] = made.body.token;
    }
    const listed = await call(app, "GET", "/api/v1/tokens", undefined, bearer("admin"));
    expect(listed.body.tokens.map((x: { name: string }) => x.name)).toEqual([
      "read-1",
      "control-1",
      "admin-1",
      "inference-1",
    ]);
    expect(JSON.stringify(listed.body)).not.toContain(secrets.read);
    for (const scope of ["read", "control", "inference"]) {
      const refused = await call(app, "GET", "/api/v1/tokens", undefined, bearer(scope));
      expect({ scope, status: refused.status }).toEqual({ scope, status: 403 });
    }
  });

  it("let read only GET, control load and kill, and inference nothing of the control API", async () => {
    const app = t.app({ tokens: store });
    expect((await call(app, "GET", "/api/v1/processes", undefined, bearer("read"))).status).toBe(200);
    const write = await call(app, "POST", "/api/v1/models/unload", { gpu_id: 9 }, bearer("read"));
    expect([write.status, write.body.error.code]).toEqual([403, "FORBIDDEN"]);
    expect(write.body.error.message).toStartWith('scope check: token "read-1"');
    expect((await call(app, "POST", "/api/v1/models/unload", { gpu_id: 9 }, bearer("control"))).status).toBe(404);
    expect((await call(app, "GET", "/api/v1/processes", undefined, bearer("inference"))).status).toBe(403);
    expect((await call(app, "POST", "/api/v1/tokens", { name: "x", scope: "admin" }, bearer("control"))).status).toBe(
      403,
    );
  });

  it("record every state-changing request in the history with the token's name, and no refused one", async () => {
    const app = t.app({ tokens: store });
    await call(app, "POST", "/api/v1/models/unload", { gpu_id: 7 }, bearer("control")); // 404: changes nothing
    const cleaned = await call(app, "POST", "/api/v1/cleanup-orphaned", undefined, bearer("control"));
    expect(cleaned.status).toBe(200);
    await waitFor(
      async () =>
        (await t.controller.history({ limit: 20 })).some(
          (e) => e.event === "request" && e.by === "control-1" && e.reason === "POST /api/v1/cleanup-orphaned → 200",
        ),
      5_000,
      "the audit event",
    );
    const events = await t.controller.history({ limit: 50 });
    expect(events.some((e) => e.event === "request" && e.reason?.includes("/models/unload"))).toBe(false);
    await call(app, "POST", "/api/v1/cleanup-orphaned");
    await waitFor(
      async () => (await t.controller.history({ limit: 20 })).some((e) => e.by === "server"),
      5_000,
      "the server token's audit event",
    );
  });

  it("refuse wrong, expired and revoked tokens with 401", async () => {
    let now = Date.now();
    const timed = createTokenStore({ file: join(t.home, "tokens.json"), now: () => now });
    const { secret } = await timed.create("short", "admin", { expiresInMs: 60_000 });
    const app = t.app({ tokens: timed });
    const auth = { authorization: `Bearer ${secret}` };
    expect((await call(app, "GET", "/api/v1/processes", undefined, auth)).status).toBe(200);
    now += 61_000;
    const expired = await call(app, "GET", "/api/v1/processes", undefined, auth);
    expect([expired.status, expired.body.error.message]).toEqual([401, 'the token "short" has expired']);
    const revoke = await call(app, "DELETE", "/api/v1/tokens/read-1");
    expect(revoke.body).toEqual({ revoked: "read-1" });
    expect((await call(app, "GET", "/api/v1/processes", undefined, bearer("read"))).status).toBe(401);
    const wrong = await call(app, "GET", "/api/v1/processes", undefined, { authorization: `Bearer ${TEST_TOKEN}x` });
    expect(wrong.status).toBe(401);
  });
});

describe("gateway.auth: none (inferenceAuth)", () => {
  it("opens only the model routes, and the browser checks still hold there", async () => {
    const app = t.app({ inferenceAuth: "none" });
    const none = { authorization: "" };
    const models = await app.handle(new Request("http://localhost/v1/models"));
    expect(models.status).toBe(200);
    await models.arrayBuffer();
    expect((await call(app, "GET", "/api/v1/processes", undefined, none)).status).toBe(401);
    const page = await call(
      app,
      "POST",
      "/v1/chat/completions",
      { model: "tiny", messages: [] },
      { ...none, origin: "http://evil.example" },
    );
    expect([page.status, page.body.error.code]).toEqual([403, "ORIGIN_NOT_ALLOWED"]);
    const rebound = await app.handle(new Request("http://rebind.attacker.example/v1/models"));
    expect(rebound.status).toBe(403);
    expect((await call(t.app(), "GET", "/v1/models", undefined, none)).status).toBe(401);
  });
});

describe("bounded streams", () => {
  it("answers 429 past max_streams and takes a new stream once one closes", async () => {
    const app = t.app({ maxStreams: 2 });
    const opened: Response[] = [];
    const aborts: AbortController[] = [];
    for (let i = 0; i < 2; i++) {
      const abort = new AbortController();
      aborts.push(abort);
      opened.push(await app.handle(authed("/api/v1/events", { signal: abort.signal })));
    }
    expect(opened.map((r) => r.status)).toEqual([200, 200]);
    const third = await call(app, "GET", "/api/v1/events");
    expect([third.status, third.body.error.code]).toEqual([429, "TOO_MANY_STREAMS"]);
    aborts[0]?.abort();
    const again = await app.handle(authed("/api/v1/events"));
    expect(again.status).toBe(200);
    await again.body?.cancel();
    aborts[1]?.abort();
  });
});

describe("logs that never widen access", () => {
  it("refuses a registered log_file that is a symlink, saying why, instead of serving its target", async () => {
    const secret = join(t.home, "shadow");
    writeFileSync(secret, "root:$6$secret-hash:19000:0:99999:7:::\n");
    const link = join(t.home, "adopted-stdout.log");
    symlinkSync(secret, link);
    // A process of this test's (the cleanup kills every PID the registry recorded), never the test itself.
    const sleeper = Bun.spawn(["sleep", "60"], { stdio: ["ignore", "ignore", "ignore"] });
    await t.controller.registry.register("5", {
      pid: sleeper.pid,
      model_id: "tiny",
      model_name: "tiny",
      model_path: join(t.home, "tiny.gguf"),
      gpu_id: 5,
      port: 1,
      started_at: new Date().toISOString(),
      command_line: ["llama-server"],
      status: "running",
      log_file: link,
    });
    try {
      const res = await call(t.app(), "GET", "/api/v1/logs?gpu_id=5");
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe("UNSAFE_PATH");
      expect(res.body.error.message).toContain("symbolic link");
      expect(JSON.stringify(res.body)).not.toContain("secret-hash");
    } finally {
      await t.controller.registry.unregister("5");
      sleeper.kill("SIGKILL");
    }
  });
});
