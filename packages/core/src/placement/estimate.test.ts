import { describe, expect, it } from "bun:test";
import { parseMemoryArgs } from "./args.ts";
import { estimateMemory } from "./estimate.ts";
import type { ModelFacts } from "./facts.ts";

const MIB = 2 ** 20;
/** A 4-layer llama: each layer 100 MiB, embeddings 50 MiB, head 60 MiB; 8 KV heads of 128. */
const facts: ModelFacts = {
  path: "/m/x.gguf",
  file_bytes: 570 * MIB,
  architecture: "llama",
  parameter_count: 1e9,
  quantization: "Q8_0",
  layers: 4,
  embedding: 4096,
  heads: 32,
  kv_heads: 8,
  head_dim_k: 128,
  head_dim_v: 128,
  feed_forward: 14336,
  experts: 0,
  vocab: 128256,
  context_length: 8192,
  tensor_bytes: 510 * MIB,
  layer_bytes: [100 * MIB, 100 * MIB, 100 * MIB, 100 * MIB],
  input_bytes: 50 * MIB,
  output_bytes: 60 * MIB,
  chat_template: true,
};
const on = (e: ReturnType<typeof estimateMemory>, device: number | "cpu") => e.devices.find((d) => d.device === device);

describe("estimateMemory", () => {
  it("keeps everything in host memory on a CPU load", () => {
    const e = estimateMemory(facts, parseMemoryArgs(["-c", "1024"]), []);
    expect(e.devices.map((d) => d.device)).toEqual(["cpu"]);
    expect(on(e, "cpu")?.weights_bytes).toBe(510 * MIB);
    // 2 × 4 layers × 1024 cells × 8 heads × 128 × 2 bytes
    expect(on(e, "cpu")?.kv_bytes).toBe(2 * 4 * 1024 * 8 * 128 * 2);
  });

  it("puts every layer and the head on a single GPU, the embeddings in host memory", () => {
    const e = estimateMemory(facts, parseMemoryArgs(["-c", "8192"]), [0]);
    expect(on(e, 0)).toMatchObject({ layers: 4, weights_bytes: 460 * MIB, kv_bytes: 2 * 4 * 8192 * 8 * 128 * 2 });
    expect(on(e, "cpu")).toMatchObject({ layers: 0, weights_bytes: 50 * MIB, kv_bytes: 0, compute_bytes: 0 });
  });

  it("splits the layers over a GPU set evenly by default, and by tensor-split when given", () => {
    // -ngl 4: the 4 repeating layers only; llama.cpp's split then falls on layer boundaries.
    const even = estimateMemory(facts, parseMemoryArgs(["-ngl", "4"]), [0, 1]);
    expect([on(even, 0)?.layers, on(even, 1)?.layers]).toEqual([2, 2]);
    expect(on(even, 1)?.weights_bytes).toBe(200 * MIB);
    const split = estimateMemory(facts, parseMemoryArgs(["-ngl", "4", "-ts", "3,1"]), [0, 1]);
    expect([on(split, 0)?.layers, on(split, 1)?.layers]).toEqual([3, 1]);
    expect(on(split, 0)!.kv_bytes).toBe(3 * on(split, 1)!.kv_bytes);
  });

  it("counts the head as one more layer, on the last GPU, when every layer is offloaded", () => {
    // llama.cpp splits n_layer + 1 layers: with 4 layers on 2 GPUs, 3 land on the first.
    const all = estimateMemory(facts, parseMemoryArgs([]), [0, 1]);
    expect([on(all, 0)?.layers, on(all, 1)?.layers]).toEqual([3, 1]);
    expect(on(all, 1)?.weights_bytes).toBe(160 * MIB);
  });

  it("leaves the first layers and the head in host memory with a partial -ngl", () => {
    const e = estimateMemory(facts, parseMemoryArgs(["-ngl", "2"]), [0]);
    expect(on(e, 0)).toMatchObject({ layers: 2, weights_bytes: 200 * MIB });
    expect(on(e, "cpu")).toMatchObject({ layers: 2, weights_bytes: 310 * MIB });
  });

  it("takes the trained context when ctx-size is absent or 0, padded to 256 cells", () => {
    expect(estimateMemory(facts, parseMemoryArgs([]), []).ctx).toBe(8192);
    expect(estimateMemory(facts, parseMemoryArgs(["-c", "0"]), []).ctx).toBe(8192);
    expect(estimateMemory(facts, parseMemoryArgs(["-c", "1000"]), []).ctx).toBe(1024);
  });

  it("sizes the cache by the cache type and keeps it in host memory with --no-kv-offload", () => {
    const f16 = on(estimateMemory(facts, parseMemoryArgs(["-c", "4096"]), [0]), 0)!.kv_bytes;
    const q8 = on(
      estimateMemory(facts, parseMemoryArgs(["-c", "4096", "-ctk", "q8_0", "-ctv", "q8_0"]), [0]),
      0,
    )!.kv_bytes;
    expect(q8 / f16).toBeCloseTo(34 / 64, 5);
    const nkvo = estimateMemory(facts, parseMemoryArgs(["-c", "4096", "-nkvo"]), [0]);
    expect([on(nkvo, 0)?.kv_bytes, on(nkvo, "cpu")?.kv_bytes]).toEqual([0, f16]);
  });

  it("grows the compute buffer with the context much faster without flash attention", () => {
    const compute = (args: string[]) => on(estimateMemory(facts, parseMemoryArgs(args), [0]), 0)!.compute_bytes;
    expect(compute(["-c", "32768", "-fa", "off"])).toBeGreaterThan(10 * compute(["-c", "32768", "-fa", "on"]));
  });
});
