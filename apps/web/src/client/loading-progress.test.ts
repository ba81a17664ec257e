import { describe, expect, it } from "bun:test";
import { modelSummary } from "./view-models.ts";
import { loadingProgress } from "./view-processes.ts";

describe("loadingProgress", () => {
  const at = (checked: string, expected?: number) => ({
    entry: {
      started_at: "2026-12-01T12:00:00.000Z",
      ...(expected === undefined ? {} : { expected_ready_ms: expected }),
    },
    checked_at: checked,
  });

  it("shows elapsed time against the last measured load time", () => {
    expect(loadingProgress(at("2026-12-01T12:00:12.400Z", 40_000))).toBe("loading for 12 s of about 40 s expected");
  });

  it("shows elapsed time alone before any load was measured", () => {
    expect(loadingProgress(at("2026-12-01T12:00:03.000Z"))).toBe("loading for 3 s");
  });
});

describe("modelSummary with the GGUF facts", () => {
  it("names the parameter count and quantization after the state", () => {
    const m = { id: "q", state: "unloaded" as const, in_flight: 0, served: 0, ttl_s: 0, aliases: [], pinned: false };
    expect(modelSummary({ ...m, parameter_count: "7.6B", quantization: "Q4_K_M" })).toBe(
      "unloaded · 7.6B Q4_K_M · 0 served",
    );
    expect(modelSummary({ ...m, parameter_count: "", quantization: "" })).toBe("unloaded · 0 served");
  });
});
