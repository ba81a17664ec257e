/**
 * Scenario 3: durable `registry.register` / `registry.unregister` (locked read-modify-write
 * of processes.json with fsync, plus the history line) with 10 and 1000 entries in the file.
 * Target: under 10 ms each at 1000. Slots are GPU indices 0..999, so "1000" is 999 entries
 * present plus the one being registered.
 */
import { createRegistry, defaultProbe } from "../../packages/core/src/index.ts";
import { entryFor } from "./entries.ts";
import { figure, median, round, type Figure, type Scenario } from "./harness.ts";

const SIZES = [10, 1000] as const;

export const storeScenario: Scenario = {
  scenario: 3,
  name: "durable register/unregister",
  async run(ctx) {
    const figures: Figure[] = [];
    const probe = defaultProbe();
    const me = await probe.get(process.pid);
    if (!me) throw new Error("cannot probe this process");
    const runs = ctx.runs(41, 11);
    for (const size of SIZES) {
      const present = Math.min(size, 999);
      const home = ctx.tracker.tempDir(`store-${size}`);
      const registry = createRegistry({ home, probe });
      await registry.store.update((entries) => {
        for (let slot = 1; slot <= present; slot++) entries[String(slot)] = entryFor(me, String(slot));
      });
      const entry = entryFor(me, "0");
      const register: number[] = [];
      const unregister: number[] = [];
      for (let i = -2; i < runs; i++) {
        let started = performance.now();
        await registry.register("0", entry);
        const r = performance.now() - started;
        started = performance.now();
        const removed = await registry.unregister("0");
        const u = performance.now() - started;
        if (!removed) throw new Error("unregister found nothing to remove");
        if (i >= 0) {
          register.push(r);
          unregister.push(u);
        }
      }
      const count = Object.keys((await registry.store.read()).entries).length;
      if (count !== present) throw new Error(`expected ${present} entries after the runs, found ${count}`);
      const inFile = size === 1000 ? "1000 in the file (999 + the registered one)" : `${present} present`;
      const target = size === 1000 ? ({ op: "<", value: 10 } as const) : undefined;
      figures.push(
        figure(
          3,
          `register.${size}`,
          `register, ${size} entries`,
          round(median(register)),
          "ms",
          target,
          `median of ${runs}; ${inFile}`,
        ),
        figure(
          3,
          `unregister.${size}`,
          `unregister, ${size} entries`,
          round(median(unregister)),
          "ms",
          target,
          `median of ${runs}`,
        ),
      );
      ctx.log(`register/unregister ${size}: ${median(register).toFixed(2)} / ${median(unregister).toFixed(2)} ms`);
    }
    return figures;
  },
};
