import { afterAll, describe, expect, it } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTokenStore, ReloadResultSchema } from "@corral/core";
import { Value } from "@sinclair/typebox/value";
import { serve } from "../src/serve.ts";
import { authed, type TestHome, testHome } from "./helpers.ts";

const homes: TestHome[] = [];
afterAll(() => {
  for (const t of homes) t.cleanup();
});

function edit(t: TestHome, change: (config: Record<string, any>) => void): void {
  const config = JSON.parse(readFileSync(t.configFile, "utf8"));
  change(config);
  writeFileSync(t.configFile, JSON.stringify(config, null, 2));
}

const post = (body?: unknown, token?: string) =>
  authed("/api/v1/config/reload", {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

describe("POST /api/v1/config/reload", () => {
  it("marks the changed model's server stale without stopping it, and needs a control token", async () => {
    const t = await testHome([{ id: "tiny", gpu: "0" }]);
    homes.push(t);
    const tokens = createTokenStore({ file: join(t.home, "tokens.json") });
    const reader = (await tokens.create("reader", "read")).secret;
    const app = t.app({ tokens });
    const { entry } = await t.controller.load("tiny");
    edit(t, (c) => {
      c.models[0].args = ["--ctx-size", "1024"];
    });
    const refused = await app.handle(post({}, reader));
    expect(refused.status).toBe(403);
    expect(t.controller.config.models[0]?.args).toEqual([]);

    const res = await app.handle(post());
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(Value.Check(ReloadResultSchema, body)).toBe(true);
    expect(body.stale).toEqual(["0"]);
    expect(body.changed_models).toEqual(["tiny"]);
    const processes = (await (await app.handle(authed("/api/v1/processes"))).json()) as any;
    expect(processes.processes[0].entry.pid).toBe(entry.pid);
    expect(processes.processes[0].entry.stale).toContain("changed");

    const restarted = (await (await app.handle(post({ restart_changed: true }))).json()) as any;
    expect(restarted.restarted).toMatchObject([{ slot: "0", model_id: "tiny", outcome: "restarted" }]);
    expect((await t.controller.entry("0"))?.stale).toBeUndefined();
    await t.controller.unload("0", { force: true });
  });

  it("refuses a file that does not validate with 400 naming the key; the configuration in force stays", async () => {
    const t = await testHome([{ id: "tiny", gpu: "0" }]);
    homes.push(t);
    const before = t.controller.config;
    edit(t, (c) => {
      c.ports.range = [9000, 10];
    });
    const res = await t.app().handle(post());
    expect(res.status).toBe(400);
    const body = (await res.json()) as any;
    expect(body.error.code).toBe("CONFIG_INVALID");
    expect(body.error.message).toContain("ports.range");
    expect(t.controller.config).toBe(before);
  });
});

describe("corral serve", () => {
  it("re-reads corral.yaml on SIGHUP and loads the autostart models after recovery", async () => {
    const t = await testHome([{ id: "tiny", gpu: "0" }]);
    homes.push(t);
    edit(t, (c) => {
      c.models[0].autostart = true;
    });
    const server = await serve({
      home: t.home,
      configFile: t.configFile,
      port: 0,
      handleSignals: false,
      logger: () => {},
      token: "t",
    });
    try {
      const [outcome] = await server.autostarted;
      expect(outcome).toMatchObject({ model_id: "tiny", outcome: "loaded", slot: "0" });
      if (outcome?.pid) t.pids.add(outcome.pid);
      edit(t, (c) => {
        c.webhooks = ["http://127.0.0.1:9/hook"];
      });
      process.kill(process.pid, "SIGHUP");
      const deadline = Date.now() + 10_000;
      while (server.controller.config.webhooks.length === 0 && Date.now() < deadline) await Bun.sleep(20);
      expect(server.controller.config.webhooks).toEqual(["http://127.0.0.1:9/hook"]);
      const events = await server.controller.history({ limit: 20 });
      expect(events.find((e) => e.event === "config-reloaded")?.reason).toContain("SIGHUP");
    } finally {
      await server.stop();
      await server.controller.unload("0", { force: true }).catch(() => undefined);
    }
  });
});
