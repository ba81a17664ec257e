// The gateway against the real llama.cpp llama-server serving tiny-chat.gguf (random weights, real
// tokenizer: real tokens, real streaming), through clients nobody here wrote: the `openai` and
// `ollama` npm packages. Skipped, with one line, without `bun run llama:build`. Generations use
// temperature 0: a few percent of random samples make llama-server's own output parser fail (500).
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Controller, createController, createGateway, type Gateway } from "@corral/core";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { llamaBuildPaths } from "../../../scripts/llama-paths.ts";
import { OwnProcesses } from "../../core/test/integration/own-processes.ts";
import { createApp } from "../src/app.ts";

const llama = llamaBuildPaths();
const ready = llama.ready && llama.chatReady;
if (!ready) {
  console.log(
    `gateway tests with the real llama-server skipped: ${llama.reason || "no tiny-chat.gguf"}: run \`bun run llama:build\``,
  );
}

const TOKEN = "gateway-real-token-0123456789abcdef";
const SLOW = 60_000;
const ARGS = ["--chat-template", "chatml", "--context-shift", "-c", "2048", "--threads", "1", "--parallel", "1"];

let home: string;
let controller: Controller;
let gateway: Gateway;
let app: ReturnType<typeof createApp>;
let url: string;
const own = new OwnProcesses();

beforeAll(async () => {
  if (!ready) return;
  home = mkdtempSync(join(tmpdir(), "corral-gateway-real-"));
  const low = 24000 + (process.pid % 40) * 100;
  const configFile = join(home, "corral.json");
  const model = (id: string, extra: Record<string, unknown> = {}) => ({
    id,
    path: llama.chatModel,
    gpu: "0",
    env: { GGML_NO_BACKTRACE: "1" },
    ...extra,
  });
  const config = {
    llama_server: llama.server,
    host: "127.0.0.1",
    ports: { range: [low, low + 99], gpu: {} },
    timeouts: { load_ms: 60_000, stop_ms: 10_000, health_ms: 3_000 },
    gpu_release_wait_ms: 0,
    models: [
      model("chat", { aliases: ["gpt-4o-mini"], args: ARGS }),
      model("embed", { gpu: "1", args: [...ARGS, "--embeddings", "--pooling", "mean"] }),
    ],
  };
  writeFileSync(configFile, JSON.stringify(config, null, 2));
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

describe.skipIf(!ready)("the openai client through the gateway", () => {
  const client = () => new OpenAI({ baseURL: `${url}/v1`, apiKey: TOKEN, maxRetries: 0 });

  it(
    "gets a chat completion, loading the model on the first request",
    async () => {
      const res = await client().chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "Say something." }],
        max_tokens: 8,
        temperature: 0,
      });
      expect(res.choices[0]?.message.role).toBe("assistant");
      expect(res.choices[0]?.message.content?.length).toBeGreaterThan(0);
      expect(res.usage?.completion_tokens).toBe(8);
    },
    SLOW,
  );

  it(
    "streams a chat completion chunk by chunk",
    async () => {
      const stream = await client().chat.completions.create({
        model: "chat",
        messages: [{ role: "user", content: "Tell me a story." }],
        max_tokens: 16,
        temperature: 0,
        stream: true,
      });
      let text = "";
      let chunks = 0;
      for await (const chunk of stream) {
        chunks++;
        text += chunk.choices[0]?.delta?.content ?? "";
      }
      expect(chunks).toBeGreaterThanOrEqual(16);
      expect(text.length).toBeGreaterThan(0);
      const [view] = await gateway.models();
      expect(view?.tokens_per_second).toBeGreaterThan(0);
    },
    SLOW,
  );

  it(
    "gets a text completion",
    async () => {
      const res = await client().completions.create({
        model: "chat",
        prompt: "Once upon a time",
        max_tokens: 6,
        temperature: 0,
      });
      expect(res.choices[0]?.text.length).toBeGreaterThan(0);
    },
    SLOW,
  );

  it(
    "gets embeddings from a model started with --embeddings",
    async () => {
      const res = await client().embeddings.create({ model: "embed", input: ["hello", "world"] });
      expect(res.data).toHaveLength(2);
      expect(res.data[0]?.embedding).toHaveLength(64);
    },
    SLOW,
  );

  it(
    "aborts a stream through its AbortController: the llama-server's slot is idle within a second",
    async () => {
      const ac = new AbortController();
      const stream = await client().chat.completions.create(
        { model: "chat", messages: [{ role: "user", content: "Go on forever." }], max_tokens: 100_000, stream: true },
        { signal: ac.signal },
      );
      let seen = 0;
      try {
        for await (const _ of stream) if (++seen === 5) ac.abort();
      } catch (error) {
        expect((error as Error).name).toMatch(/Abort/);
      }
      const aborted = performance.now();
      let busy = true;
      while (busy && performance.now() - aborted < 1000) {
        const slots = (await (
          await fetch(`${url}/upstream/chat/slots`, { headers: { authorization: `Bearer ${TOKEN}` } })
        ).json()) as {
          is_processing: boolean;
        }[];
        busy = slots.some((s) => s.is_processing);
        if (busy) await Bun.sleep(20);
      }
      expect(busy).toBe(false);
    },
    SLOW,
  );
});

describe.skipIf(!ready)("the ollama client through the gateway", () => {
  const client = () => new Ollama({ host: url, headers: { authorization: `Bearer ${TOKEN}` } });

  it(
    "chats, not streaming",
    async () => {
      const res = await client().chat({
        model: "chat",
        messages: [{ role: "user", content: "hi" }],
        options: { num_predict: 6, temperature: 0 },
      });
      expect(res.message.role).toBe("assistant");
      expect(res.message.content.length).toBeGreaterThan(0);
      expect(res.done).toBe(true);
      expect(res.eval_count).toBe(6);
    },
    SLOW,
  );

  it(
    "chats, streaming",
    async () => {
      const stream = await client().chat({
        model: "chat",
        messages: [{ role: "user", content: "hi" }],
        options: { num_predict: 10, temperature: 0 },
        stream: true,
      });
      const parts: { done: boolean; content: string }[] = [];
      for await (const part of stream) parts.push({ done: part.done, content: part.message.content });
      expect(parts.length).toBeGreaterThanOrEqual(2);
      expect(parts.at(-1)?.done).toBe(true);
      expect(parts.slice(0, -1).every((p) => !p.done)).toBe(true);
    },
    SLOW,
  );

  it(
    "generates, streaming and not",
    async () => {
      const whole = await client().generate({
        model: "chat",
        prompt: "Once",
        options: { num_predict: 5, temperature: 0 },
      });
      expect(whole.response?.length).toBeGreaterThan(0);
      expect(whole.done).toBe(true);
      const stream = await client().generate({
        model: "chat",
        prompt: "Once",
        options: { num_predict: 5, temperature: 0 },
        stream: true,
      });
      let text = "";
      let last = false;
      for await (const part of stream) {
        text += part.response;
        last = part.done;
      }
      expect(text.length).toBeGreaterThan(0);
      expect(last).toBe(true);
    },
    SLOW,
  );

  it(
    "lists the configured models (tags) and the loaded ones (ps)",
    async () => {
      const tags = await client().list();
      expect(tags.models.map((m) => m.name).sort()).toEqual(["chat", "embed"]);
      expect(tags.models[0]?.size).toBeGreaterThan(17_000_000);
      const ps = await client().ps();
      expect(ps.models.map((m) => m.name)).toContain("chat");
    },
    SLOW,
  );
});
