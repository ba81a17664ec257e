import { describe, expect, it } from "bun:test";
import { isInferencePath, scopeRefusal } from "./scopes.ts";

describe("scopeRefusal", () => {
  it("lets read only GET, control also change state, and only admin manage tokens", () => {
    expect(scopeRefusal("read", "GET", "/api/v1/processes")).toBeUndefined();
    expect(scopeRefusal("read", "POST", "/api/v1/models/load")).toContain("only GET");
    expect(scopeRefusal("read", "DELETE", "/api/v1/processes/0")).toContain("only GET");
    for (const path of [
      "/api/v1/models/load",
      "/api/v1/kill",
      "/api/v1/orphans/12/adopt",
      "/api/v1/processes/0/verify",
    ])
      expect(scopeRefusal("control", "POST", path)).toBeUndefined();
    expect(scopeRefusal("control", "GET", "/api/v1/tokens")).toContain("admin");
    expect(scopeRefusal("control", "POST", "/api/v1/tokens")).toContain("admin");
    expect(scopeRefusal("admin", "DELETE", "/api/v1/tokens/ci")).toBeUndefined();
  });

  it("lets an inference token call only the gateway's model routes", () => {
    for (const path of ["/v1/chat/completions", "/v1/models", "/upstream/qwen/completion", "/api/chat", "/api/tags"])
      expect(scopeRefusal("inference", "POST", path)).toBeUndefined();
    for (const path of ["/api/v1/processes", "/api/v1/kill", "/api/v1/events", "/metrics", "/api/pull"])
      expect(scopeRefusal("inference", "GET", path)).toContain("inference");
  });
});

describe("isInferencePath", () => {
  it("knows OpenAI's, Ollama's and the upstream routes, and nothing of corral's own API", () => {
    expect(isInferencePath("/v1/embeddings")).toBe(true);
    expect(isInferencePath("/api/generate")).toBe(true);
    expect(isInferencePath("/api/version")).toBe(true);
    expect(isInferencePath("/api/v1/models")).toBe(false);
    expect(isInferencePath("/api/delete")).toBe(false);
    expect(isInferencePath("/v10/x")).toBe(false);
  });
});
