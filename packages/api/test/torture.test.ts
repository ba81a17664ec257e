// The short form of the torture suite (scripts/torture/, issue 10) inside the normal test
// command: every scenario breaks corral on purpose with real processes, files, ports and
// signals, and must find no failure and lose nothing. `bun run torture` runs the long form.
import { describe, expect, it } from "bun:test";
import { formatResult, SCENARIOS } from "../../../scripts/torture/index.ts";

// A fresh seed each run widens what the suite covers over time; a failure names it for replay.
const seed = Math.floor(Math.random() * 2 ** 31);

describe("the torture suite, short form", () => {
  for (const scenario of SCENARIOS) {
    it(`${scenario.id}. ${scenario.name}: finds no failure and loses nothing`, async () => {
      const result = await scenario.run({ form: "short", seed: seed + scenario.id, log: () => {} });
      if (result.skipped !== undefined || result.failures > 0 || result.lost > 0) {
        console.log(`${formatResult(result)}\n  replay: bun run torture --short --only ${scenario.id} --seed ${seed}`);
      }
      if (result.skipped === undefined) expect(result.trials).toBeGreaterThan(0);
      expect(result.problems).toEqual([]);
      expect({ failures: result.failures, lost: result.lost }).toEqual({ failures: 0, lost: 0 });
    }, 240_000);
  }
});
