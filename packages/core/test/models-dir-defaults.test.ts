// models_dir: each GGUF found there becomes a model whose name and arguments come from its header's
// facts (read once, then answered from the home's facts.json), at start and at every reload.
import { afterAll, describe, expect, it } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeLlamaGguf } from "../../../scripts/gguf-writer.ts";
import { createController } from "../src/lifecycle/controller.ts";
import { reloadConfig } from "../src/lifecycle/reload.ts";
import { vocabFile } from "./fixtures/first-run-home.ts";

const root = mkdtempSync(join(tmpdir(), "corral-models-dir-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function folderOfModels(): string {
  const dir = join(root, "gguf");
  mkdirSync(dir, { recursive: true });
  const vocab = vocabFile(root);
  const small = { layers: 1, embd: 8, heads: 2, ff: 16 };
  writeLlamaGguf({
    vocabFile: vocab,
    outFile: join(dir, "long-ctx.gguf"),
    shape: { ...small, ctx: 32768 },
    name: "Long One",
  });
  writeLlamaGguf({
    vocabFile: vocab,
    outFile: join(dir, "short-ctx.gguf"),
    shape: { ...small, ctx: 512 },
    name: "Short One",
  });
  writeFileSync(join(dir, "not-a-model.gguf"), "GGUF but nothing else\n");
  return dir;
}

describe("models found in models_dir", () => {
  it("get their name and a context cap from their GGUF facts, at start and after a reload", async () => {
    const dir = folderOfModels();
    const home = join(root, "home");
    mkdirSync(home, { mode: 0o700 });
    writeFileSync(join(home, "corral.json"), JSON.stringify({ models_dir: dir, models: [] }), { mode: 0o600 });
    const controller = await createController({ home, gpuQuery: async () => undefined });
    const byId = () => new Map(controller.config.models.map((m) => [m.id, m]));
    // Trained for 32k: llama-server would size its KV cache for all of it; corral starts it at 8192.
    expect(byId().get("long-ctx")).toMatchObject({ name: "Long One", args: ["--ctx-size", "8192"] });
    expect(byId().get("short-ctx")).toMatchObject({ name: "Short One", args: [] });
    // A file whose header cannot be read is still a model, with the plain defaults.
    expect(byId().get("not-a-model")).toMatchObject({ name: "not-a-model", args: [] });
    await reloadConfig(controller);
    expect(byId().get("long-ctx")).toMatchObject({ name: "Long One", args: ["--ctx-size", "8192"] });
    // Read once: the facts are kept in the home, so a second controller (the CLI beside the server)
    // is answered from facts.json.
    expect(readFileSync(join(home, "facts.json"), "utf8")).toContain("long-ctx.gguf");
    const again = await createController({ home, gpuQuery: async () => undefined });
    expect(again.config.models.find((m) => m.id === "long-ctx")?.name).toBe("Long One");
  });
});
