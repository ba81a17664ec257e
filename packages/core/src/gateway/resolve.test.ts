import { describe, expect, it } from "bun:test";
import type { ModelConfig } from "../config/load.ts";
import type { GatewayError } from "./errors.ts";
import { createResolver } from "./resolve.ts";

const model = (id: string, path: string, aliases?: string[]): ModelConfig => ({
  id,
  name: id,
  path,
  args: [],
  restart: "never",
  max_restart_attempts: 0,
  env: {},
  ...(aliases ? { aliases } : {}),
});

describe("model resolution", () => {
  const resolver = createResolver([
    model("qwen", "/m/qwen2.5-7b-q4_k_m.gguf", ["gpt-4o-mini"]),
    model("llama", "/m/llama.gguf", ["qwen2.5-7b-q4_k_m"]),
  ]);

  it("finds a model by id, alias, file name with or without .gguf, full path, and an Ollama :latest tag", () => {
    expect(resolver.resolve("qwen").id).toBe("qwen");
    expect(resolver.resolve("gpt-4o-mini").id).toBe("qwen");
    expect(resolver.resolve("qwen2.5-7b-q4_k_m.gguf").id).toBe("qwen");
    expect(resolver.resolve("/m/llama.gguf").id).toBe("llama");
    expect(resolver.resolve("llama:latest").id).toBe("llama");
  });

  it("prefers an alias over another model's file name", () => {
    expect(resolver.resolve("qwen2.5-7b-q4_k_m").id).toBe("llama");
  });

  it("refuses an unknown name with 404 listing the ids, and a missing one with 400", () => {
    const unknown = (() => {
      try {
        resolver.resolve("mistral");
      } catch (e) {
        return e as GatewayError;
      }
    })();
    expect(unknown?.status).toBe(404);
    expect(unknown?.message).toContain("known: qwen, llama");
    expect(() => resolver.resolve(undefined)).toThrow("needs a `model`");
  });
});
