// The placement estimate against llama.cpp itself: the CPU llama-server built by `bun run llama:build`
// prints its own buffer sizes at load (`model buffer size`, `KV buffer size`, `compute buffer size`);
// each part of the estimate must be within 10% of them, for the tiny models of the build and for
// models generated with scripts/gguf-writer.ts (more layers, larger context, grouped KV heads).
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type LlamaShape, writeLlamaGguf } from "../../../../scripts/gguf-writer.ts";
import { llamaBuildPaths } from "../../../../scripts/llama-paths.ts";
import { parseMemoryArgs } from "../../src/placement/args.ts";
import { estimateMemory } from "../../src/placement/estimate.ts";
import { readModelFacts } from "../../src/placement/facts.ts";
import { OwnProcesses } from "./own-processes.ts";

const llama = llamaBuildPaths();
const vocab = join(llama.cacheDir, "src", "models", "ggml-vocab-llama-spm.gguf");
const ready = llama.ready && llama.chatReady && (await Bun.file(vocab).exists());
if (!ready)
  console.log(
    `placement estimate vs llama-server skipped: ${llama.reason || "no tiny-chat.gguf or vocab"}: run \`bun run llama:build\``,
  );

const own = new OwnProcesses();
let dir = "";

/** Shapes written for the test: deeper than the build's models, a longer trained context, grouped KV heads, a wide feed-forward. */
const GENERATED: Record<string, Partial<LlamaShape>> = {
  "deep-gqa": { layers: 8, embd: 128, heads: 8, headsKv: 2, ff: 256, ctx: 8192 },
  wide: { layers: 3, embd: 256, heads: 4, headsKv: 4, ff: 768, ctx: 4096 },
};

beforeAll(() => {
  if (!ready) return;
  dir = mkdtempSync(join(tmpdir(), "corral-placement-"));
  for (const [name, shape] of Object.entries(GENERATED)) {
    writeLlamaGguf({ vocabFile: vocab, outFile: join(dir, `${name}.gguf`), shape, name });
  }
});

afterAll(() => {
  own.killAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Printed {
  readonly model: number;
  readonly kv: number;
  readonly compute: number;
}

const MIB = 2 ** 20;

/** Starts llama-server on the model (port 0: the kernel picks), reads its buffer lines, stops it. */
async function printedSizes(model: string, args: readonly string[]): Promise<Printed> {
  const child = Bun.spawn(
    [llama.server, "-m", model, "--host", "127.0.0.1", "--port", "0", "-lv", "4", "--no-warmup", ...args],
    {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, GGML_NO_BACKTRACE: "1" },
    },
  );
  own.add(child.pid);
  let log = "";
  const decoder = new TextDecoder();
  const read = async (stream: ReadableStream<Uint8Array>) => {
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      log += decoder.decode(value, { stream: true });
      // The compute buffer is the last of the three to be printed; then nothing more is needed.
      if (/compute buffer size/.test(log)) child.kill("SIGKILL");
    }
  };
  await Promise.all([read(child.stdout), read(child.stderr), child.exited]);
  const mib = (re: RegExp) => {
    const figures = [...log.matchAll(re)].map((m) => Number(m[1]));
    if (figures.length === 0) throw new Error(`llama-server printed no ${re.source}:\n${log.slice(-2000)}`);
    return figures.reduce((a, b) => a + b, 0) * MIB;
  };
  return {
    model: mib(/model buffer size =\s+([\d.]+) MiB/g),
    kv: mib(/KV buffer size =\s+([\d.]+) MiB/g),
    compute: mib(/compute buffer size =\s+([\d.]+) MiB/g),
  };
}

const within = (estimate: number, printed: number) => Math.abs(estimate - printed) / printed;

const CASES: ReadonlyArray<{ name: string; file: () => string; args: string[] }> = [
  { name: "llama-dense (the build's test model), ctx 1024", file: () => llama.model, args: ["-c", "1024"] },
  {
    name: "tiny-chat, ctx 4096 without flash attention",
    file: () => llama.chatModel,
    args: ["-c", "4096", "-fa", "off"],
  },
  { name: "8 layers with grouped KV heads, its trained ctx 8192", file: () => join(dir, "deep-gqa.gguf"), args: [] },
  {
    name: "8 layers, 2 parallel slots (split cache)",
    file: () => join(dir, "deep-gqa.gguf"),
    args: ["-c", "2048", "-np", "2"],
  },
  {
    name: "wide feed-forward, q8_0 KV cache",
    file: () => join(dir, "wide.gguf"),
    args: ["-c", "2048", "-ctk", "q8_0", "-ctv", "q8_0"],
  },
];

describe.skipIf(!ready)("the estimate against llama-server's printed buffer sizes (CPU build)", () => {
  for (const c of CASES) {
    it(`is within 10% for weights, KV and compute: ${c.name}`, async () => {
      const facts = await readModelFacts(c.file());
      const [host] = estimateMemory(facts, parseMemoryArgs(c.args), []).devices;
      if (!host) throw new Error("no host figures");
      const printed = await printedSizes(c.file(), c.args);
      const parts = {
        weights: within(host.weights_bytes, printed.model),
        kv: within(host.kv_bytes, printed.kv),
        compute: within(host.compute_bytes, printed.compute),
      };
      expect({ case: c.name, ...parts, ok: Object.values(parts).every((d) => d <= 0.1) }).toMatchObject({ ok: true });
    }, 60_000);
  }
});
