import { describe, expect, it } from "bun:test";
import { type GatewayModel, modelSummary, sseDeltas } from "./view-models.ts";

const base: GatewayModel = {
  id: "q",
  state: "loaded",
  slot: "0",
  in_flight: 1,
  served: 4,
  ttl_s: 0,
  aliases: [],
  pinned: false,
};

describe("the model card's figures", () => {
  it("say where it is loaded, what it is doing and when it will be unloaded", () => {
    expect(modelSummary(base)).toBe("loaded in slot 0 · 1 in flight · 4 served · never unloaded when idle");
    const now = Date.parse("2026-12-01T10:00:00Z");
    const idle = { ...base, in_flight: 0, ttl_s: 60, unload_at: "2026-12-01T10:00:42Z", tokens_per_second: 812.4 };
    expect(modelSummary(idle, now)).toBe(
      "loaded in slot 0 · 0 in flight · 4 served · last 812 tokens/s · idle unload in 42 s",
    );
    expect(modelSummary({ ...base, state: "unloaded", served: 0, pinned: true })).toBe("unloaded · 0 served · pinned");
  });
});

describe("the streamed answer", () => {
  it("is the content of each complete SSE line, the partial last line kept for the next chunk", () => {
    const first = sseDeltas(
      'data: {"choices":[{"delta":{"role":"assistant","content":null}}]}\n\ndata: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: {"cho',
    );
    expect(first).toEqual({ text: "Hi", rest: 'data: {"cho', done: false });
    const second = sseDeltas(`${first.rest}ices":[{"delta":{"content":" there"}}]}\n\ndata: [DONE]\n\n`);
    expect(second).toEqual({ text: " there", rest: "", done: true });
  });

  it("reports the error an error event carries", () => {
    expect(sseDeltas('data: {"error":{"message":"llama-server ended the stream"}}\n\n').error).toBe(
      "llama-server ended the stream",
    );
  });
});
