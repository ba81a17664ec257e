import { describe, expect, it } from "bun:test";
import { parseMemoryArgs } from "./args.ts";

describe("parseMemoryArgs", () => {
  it("reads long, short and --flag=value spellings, the last one winning", () => {
    const a = parseMemoryArgs([
      "-c",
      "4096",
      "--ctx-size=8192",
      "-ngl",
      "20",
      "-ctk",
      "q8_0",
      "--cache-type-v",
      "q4_0",
    ]);
    expect(a).toMatchObject({ ctxSize: 8192, gpuLayers: 20, cacheTypeK: "q8_0", cacheTypeV: "q4_0" });
  });

  it("defaults to llama-server's: f16 cache, auto flash attention, auto parallel, ubatch 512, batch 2048", () => {
    const a = parseMemoryArgs([]);
    expect(a).toEqual({
      cacheTypeK: "f16",
      cacheTypeV: "f16",
      flashAttn: "auto",
      ubatch: 512,
      batch: 2048,
      noKvOffload: false,
      splitNone: false,
    });
  });

  it("reads -ngl auto, all and -1 as every layer", () => {
    for (const v of ["auto", "all", "-1"])
      expect(parseMemoryArgs(["-ngl", v]).gpuLayers).toBe(Number.POSITIVE_INFINITY);
  });

  it("takes a bare -fa (older llama-server) as on, and on/off/auto words", () => {
    expect(parseMemoryArgs(["-fa", "--jinja"]).flashAttn).toBe("on");
    expect(parseMemoryArgs(["--flash-attn", "off"]).flashAttn).toBe("off");
    expect(parseMemoryArgs(["-fa", "auto"]).flashAttn).toBe("auto");
  });

  it("reads tensor-split proportions, parallel, kv-unified switches and split-mode none", () => {
    const a = parseMemoryArgs(["-ts", "3,1", "-np", "2", "--kv-unified", "-sm", "none", "-nkvo"]);
    expect(a).toMatchObject({ tensorSplit: [3, 1], parallel: 2, kvUnified: true, splitNone: true, noKvOffload: true });
    expect(parseMemoryArgs(["--no-kv-unified"]).kvUnified).toBe(false);
  });
});
