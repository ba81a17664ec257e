// server_api_key: auto with the real llama-server (skipped without `bun run llama:build`): a model
// loaded through the API gets its own key; a direct request to its port without the key gets 401
// from llama-server itself; the same request through the gateway succeeds (the client's token is
// not passed on); health, /props, the supervisor's tick and its /slots reading keep working; no
// API response shows the key.
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Controller,
  createController,
  createGateway,
  createSupervisor,
  fetchProps,
  type Gateway,
  WedgeDetector,
} from "@corral/core";
import { llamaBuildPaths } from "../../../scripts/llama-paths.ts";
import { OwnProcesses } from "../../core/test/integration/own-processes.ts";
import { createApp } from "../src/app.ts";

const llama = llamaBuildPaths();
const ready = llama.ready && llama.chatReady;
if (!ready)
  console.log(`server_api_key tests skipped: ${llama.reason || "no tiny-chat.gguf"}: run bun run llama:build`);

const TOKEN = "server-api-key-token-0123456789abcdef";
let home: string;
let controller: Controller;
let gateway: Gateway;
let app: ReturnType<typeof createApp>;
let url: string;
const own = new OwnProcesses();

beforeAll(async () => {
  if (!ready) return;
  home = mkdtempSync(join(tmpdir(), "corral-api-key-"));
  const low = 20000 + (process.pid % 40) * 100;
  const configFile = join(home, "corral.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      llama_server: llama.server,
      host: "127.0.0.1",
      server_api_key: "auto",
      ports: { range: [low, low + 99], gpu: {} },
      timeouts: { load_ms: 60_000, stop_ms: 10_000, health_ms: 3_000 },
      gpu_release_wait_ms: 0,
      models: [
        {
          id: "chat",
          path: llama.chatModel,
          gpu: "0",
          env: { GGML_NO_BACKTRACE: "1" },
          args: ["--chat-template", "chatml", "-c", "2048", "--threads", "1", "--parallel", "1"],
        },
      ],
    }),
  );
  controller = await createController({ home, configFile, gpuQuery: async () => undefined });
  controller.registry.subscribe((e) => {
    if (e.pid && e.event === "registered") own.add(e.pid);
  });
  gateway = createGateway({ controller });
  app = createApp({ controller, gateway, token: TOKEN });
  app.listen({ hostname: "127.0.0.1", port: 0, development: false });
  url = `http://127.0.0.1:${app.server!.port}`;
});

afterAll(async () => {
  if (!ready) return;
  await app.stop(true);
  own.killAll();
  rmSync(home, { recursive: true, force: true });
});

const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };

describe.skipIf(!ready)("server_api_key: auto", () => {
  it("keeps llama-server closed to direct requests and open to corral's", async () => {
    const load = await fetch(`${url}/api/v1/models/load`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ model_id: "chat", gpu_id: 0 }),
    });
    expect(load.status).toBe(200);
    const loadText = await load.text();
    const entry = (await controller.registry.get("0"))!;
    const key = entry.api_key!;
    expect(key.length).toBeGreaterThan(20);
    const direct = `http://127.0.0.1:${entry.port}`;

    // llama-server itself refuses anything but /health without the key.
    expect((await fetch(`${direct}/health`)).status).toBe(200);
    const body = JSON.stringify({ messages: [{ role: "user", content: "hi" }], max_tokens: 2, temperature: 0 });
    const post = { method: "POST", headers: { "content-type": "application/json" }, body };
    expect((await fetch(`${direct}/v1/chat/completions`, post)).status).toBe(401);
    expect((await fetch(`${direct}/v1/chat/completions`, { ...post, headers: auth })).status).toBe(401);
    expect((await fetch(`${direct}/props`)).status).toBe(401);

    // The same request through the gateway, with corral's token, succeeds.
    const viaGateway = await fetch(`${url}/v1/chat/completions`, {
      ...post,
      headers: auth,
      body: body.replace("{", '{"model":"chat",'),
    });
    expect(viaGateway.status).toBe(200);
    expect(((await viaGateway.json()) as { choices: unknown[] }).choices.length).toBe(1);
    const upstream = await fetch(`${url}/upstream/chat/props`, { headers: auth });
    expect(upstream.status).toBe(200);

    // Health, /props, a supervisor tick and its /slots reading.
    expect((await fetchProps({ host: "127.0.0.1", port: entry.port, apiKey: key }))?.model_path).toBe(llama.chatModel);
    const tick = await createSupervisor(controller).tick();
    expect(tick.statuses.map((s) => [s.slot, s.entry.status, s.health?.state])).toEqual([["0", "running", "ok"]]);
    const seen: unknown[] = [];
    await new WedgeDetector(120_000).check(tick.statuses, 3000, "127.0.0.1", (_row, slots) => seen.push(slots));
    expect(Array.isArray(seen[0])).toBe(true);

    // No API response shows the key.
    const responses = [loadText];
    for (const path of [
      "/api/v1/processes",
      "/api/v1/processes/0",
      "/api/v1/process-registry",
      "/api/v1/history",
      "/api/v1/models",
    ]) {
      const r = await fetch(`${url}${path}`, { headers: auth });
      responses.push(`${path} ${r.status} ${await r.text()}`);
    }
    for (const text of responses) {
      expect(text).not.toContain(key);
      expect(text).not.toContain("api_key");
    }
    expect(responses.filter((t) => / 200 /.test(t)).length).toBeGreaterThanOrEqual(3);
  }, 120_000);
});
