import { describe, expect, it } from "bun:test";
import { defaultConfig, parseConfig } from "../config/load.ts";
import { PortNotAllowedError } from "../errors.ts";
import { assertPortAllowed, isPortAllowed } from "./port-choice.ts";
import { reattached } from "./recover.ts";

describe("the ports a load may ask for", () => {
  const config = parseConfig({
    ports: { range: [9000, 9010], gpu: { "0": 7001 } },
    models: [{ id: "own", path: "/m/own.gguf", port: 7500 }],
  });

  it("are the range, the per-GPU ports and a model's own port", () => {
    for (const port of [9000, 9005, 9010, 7001, 7500]) expect(isPortAllowed(config, port)).toBe(true);
    for (const port of [22, 80, 8999, 9011, 7002]) expect(isPortAllowed(config, port)).toBe(false);
  });

  it("refuses anything else with a typed error that says what is allowed", () => {
    const error = (() => {
      try {
        assertPortAllowed(config, 22);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(PortNotAllowedError);
    expect(error).toMatchObject({ code: "PORT_NOT_ALLOWED", port: 22, range: [9000, 9010], allowed: [7001, 7500] });
    expect((error as Error).message).toContain("9000-9010");
    expect(() => assertPortAllowed(defaultConfig(), 8081)).not.toThrow();
  });
});

describe("the reattached count", () => {
  it("counts the servers a recovery left tracked and alive, the same for the CLI and the API", () => {
    const row = (outcome: Parameters<typeof reattached>[0][number]["outcome"]) => ({
      slot: "0",
      pid: 2,
      model_id: "m",
      outcome,
      reason: "",
    });
    const report = ["running", "loading", "unhealthy", "adopted", "removed", "stopped", "killed-duplicate", "kept"].map(
      (o) => row(o as Parameters<typeof row>[0]),
    );
    expect(reattached(report)).toBe(4);
    expect(reattached([])).toBe(0);
  });
});
