import { afterAll, describe, expect, it } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { llamaBuildPaths } from "../../../../scripts/llama-paths.ts";
import { FactsCache, formatParameterCount, modelLabels, readModelFacts } from "./facts.ts";

const llama = llamaBuildPaths();
if (!llama.chatReady) console.log(`GGUF facts tests skipped: no tiny-chat.gguf: run \`bun run llama:build\``);
const dir = mkdtempSync(join(tmpdir(), "corral-facts-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!llama.chatReady)("readModelFacts", () => {
  it("reads the shape, size, quantization and parameter count from the GGUF header", async () => {
    const facts = await readModelFacts(llama.chatModel, { cache: new FactsCache() });
    expect(facts).toMatchObject({
      architecture: "llama",
      name: "tiny-chat",
      quantization: "F32",
      layers: 2,
      embedding: 64,
      heads: 4,
      kv_heads: 4,
      head_dim_k: 16,
      feed_forward: 128,
      vocab: 32000,
      context_length: 2048,
      chat_template: false,
    });
    // token_embd and output are 64 × 32000 each; each layer 4 × 64² + 3 × 64 × 128 + 2 × 64.
    const layer = 4 * 64 * 64 + 3 * 64 * 128 + 2 * 64;
    expect(facts.parameter_count).toBe(2 * 64 * 32000 + 64 + 2 * layer);
    expect(facts.layer_bytes).toEqual([layer * 4, layer * 4]);
    expect(facts.tensor_bytes).toBe(facts.parameter_count * 4);
    expect(facts.input_bytes + facts.output_bytes + 2 * layer * 4).toBe(facts.tensor_bytes);
  });

  it("answers from the cache until the file's mtime changes", async () => {
    const file = join(dir, "m.gguf");
    copyFileSync(llama.chatModel, file);
    const cache = new FactsCache();
    const first = await readModelFacts(file, { cache });
    expect(await readModelFacts(file, { cache })).toBe(first);
    expect(cache.reads).toBe(1);
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    expect(await readModelFacts(file, { cache })).not.toBe(first);
    expect(cache.reads).toBe(2);
  });

  it("keeps the facts in a file, so a new process (a new cache) parses no header until the model changes", async () => {
    const file = join(dir, "kept.gguf");
    copyFileSync(llama.chatModel, file);
    const store = join(dir, "facts.json");
    const first = await readModelFacts(file, { cache: new FactsCache({ file: store }) });
    const later = new FactsCache({ file: store });
    expect(await readModelFacts(file, { cache: later })).toEqual(first);
    expect(later.reads).toBe(0);
    utimesSync(file, new Date(), new Date(Date.now() + 9000));
    await readModelFacts(file, { cache: new FactsCache({ file: store }) });
    const again = new FactsCache({ file: store });
    await readModelFacts(file, { cache: again });
    expect(again.reads).toBe(0);
  });

  it("rejects a file that is not a GGUF, and does not cache the failure", async () => {
    const file = join(dir, "not.gguf");
    await Bun.write(file, "definitely not a gguf file, just some text that is long enough");
    const cache = new FactsCache();
    await expect(readModelFacts(file, { cache })).rejects.toThrow();
    await expect(readModelFacts(file, { cache })).rejects.toThrow();
    expect(cache.reads).toBe(2);
  });
});

describe("formatParameterCount and modelLabels", () => {
  it("says parameter counts the way model names do", () => {
    expect([7_615_616_512, 70_553_706_496, 494_032_768, 4_178_240, 12_345, 123].map(formatParameterCount)).toEqual([
      "7.6B",
      "70.6B",
      "494M",
      "4.2M",
      "12.3K",
      "123",
    ]);
  });

  it("gives empty labels for a file that is not a GGUF", async () => {
    expect(await modelLabels(import.meta.path)).toEqual({ parameter_count: "", quantization: "" });
  });
});
