import { describe, expect, it } from "bun:test";
import { GatewayError } from "./errors.ts";
import { ollamaAnswer, ollamaChatRequest, ollamaEmbedRequest, ollamaGenerateRequest, sseToNdjson } from "./ollama.ts";

async function ndjson(sse: string[], kind: "chat" | "generate" = "chat"): Promise<Record<string, unknown>[]> {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const part of sse) c.enqueue(new TextEncoder().encode(part));
      c.close();
    },
  });
  const text = await new Response(body.pipeThrough(sseToNdjson({ kind, model: "m", startedAt: 0 }))).text();
  return text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("Ollama requests", () => {
  it("become OpenAI bodies: stream by default, options as sampling fields, format as response_format", () => {
    const t = ollamaChatRequest({
      model: "m",
      messages: [{ role: "user", content: "hi", images: [] }],
      options: { num_predict: 5, temperature: 0.1, seed: 7 },
      format: "json",
    });
    expect(t.path).toBe("/v1/chat/completions");
    expect(t.stream).toBe(true);
    expect(JSON.parse(t.body)).toEqual({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      max_tokens: 5,
      temperature: 0.1,
      seed: 7,
      response_format: { type: "json_object" },
      stream_options: { include_usage: true },
    });
    const g = ollamaGenerateRequest({ model: "m", system: "Be brief.", prompt: "Once", stream: false });
    expect(JSON.parse(g.body)).toEqual({ model: "m", prompt: "Be brief.\n\nOnce", stream: false });
    expect(JSON.parse(ollamaEmbedRequest({ model: "m", prompt: "x" }).body)).toEqual({ model: "m", input: "x" });
  });

  it("refuses bodies of the wrong shape as bad requests", () => {
    expect(() => ollamaChatRequest({ messages: "hi" })).toThrow(GatewayError);
    expect(() => ollamaGenerateRequest({ prompt: 3 })).toThrow("`prompt` must be a string");
    expect(() => ollamaEmbedRequest({ input: [1] })).toThrow("`input` must be a string or a list of strings");
  });
});

describe("SSE to NDJSON", () => {
  it("turns each content delta into a line and ends with done: true and the counts", async () => {
    const lines = await ndjson([
      'data: {"choices":[{"delta":{"role":"assistant","content":null}}]}\n\n',
      'data: {"choices":[{"delta":{"content":"He"}}]}\n\ndata: {"choices":[{"delta":{"con',
      'tent":"llo"}}]}\n\n',
      'data: {"choices":[{"delta":{},"finish_reason":"length"}]}\n\n',
      'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2},"timings":{"predicted_ms":4}}\n\n',
      "data: [DONE]\n\n",
    ]);
    expect(lines.map((l) => (l.message as { content: string }).content)).toEqual(["He", "llo", ""]);
    expect(lines.map((l) => l.done)).toEqual([false, false, true]);
    expect(lines[2]).toMatchObject({
      done_reason: "length",
      prompt_eval_count: 3,
      eval_count: 2,
      eval_duration: 4_000_000,
    });
  });

  it("ends with an error line, and nothing after it, when the upstream stream carries an error", async () => {
    const lines = await ndjson(
      ['data: {"choices":[{"text":"a"}]}\n\n', 'data: {"error":{"message":"llama-server died"}}\n\n'],
      "generate",
    );
    expect(lines).toEqual([expect.objectContaining({ response: "a", done: false }), { error: "llama-server died" }]);
  });

  it("still ends with done: true when the upstream stream stops without [DONE]", async () => {
    const lines = await ndjson(['data: {"choices":[{"text":"a"}]}\n\n'], "generate");
    expect(lines.at(-1)).toMatchObject({ done: true, response: "" });
  });
});

describe("whole answers", () => {
  it("translate a chat answer, and an upstream error into {error: string} with its status", async () => {
    const ok = await ollamaAnswer(
      Response.json({ choices: [{ message: { role: "assistant", content: "hi" }, finish_reason: "stop" }] }),
      { kind: "chat", model: "m", startedAt: 0 },
    );
    expect(await ok.json()).toMatchObject({ model: "m", message: { role: "assistant", content: "hi" }, done: true });
    const bad = await ollamaAnswer(Response.json({ error: { message: "context too long" } }, { status: 400 }), {
      kind: "chat",
      model: "m",
      startedAt: 0,
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: "context too long" });
  });
});
