/**
 * Scenario 3: durable `registry.register` / `registry.unregister` (locked read-modify-write
 * of processes.json with fsync, plus the history line) with 10 and 1000 entries in the file.
 * Targets: under 10 ms each at 1000, and register no slower than the original controller's
 * non-durable `register_process` (Python: JSON with indent=2 to a temp file, renamed, no
 * fsync, no lock) over a copy of the same file, timed in the same rounds. Slots are GPU
 * indices 0..999, so "1000" is 999 entries present plus the one being registered.
 */
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { createRegistry, defaultProbe } from "@corral/core";
import { entryFor } from "./entries.ts";
import { type Figure, figure, median, round, type Scenario } from "./harness.ts";
import { type Original, startOriginal } from "./original.ts";

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
      const theirs: number[] = [];
      let original: Original | string | undefined;
      if (size === 1000) {
        original = await startOriginal(ctx.tracker);
        if (typeof original === "string") ctx.log(original);
        else {
          const copy = join(ctx.tracker.tempDir("store-original"), "processes.json");
          copyFileSync(registry.store.file, copy);
          await original.ask(`load ${copy}`);
        }
      }
      try {
        for (let i = -2; i < runs; i++) {
          let started = performance.now();
          await registry.register("0", entry);
          const r = performance.now() - started;
          started = performance.now();
          const removed = await registry.unregister("0");
          const u = performance.now() - started;
          if (!removed) throw new Error("unregister found nothing to remove");
          const o = typeof original === "object" ? await original.ask(`register 0 ${me.pid}`) : undefined;
          if (o && o.result !== 1000) throw new Error(`the original holds ${o.result} entries, expected 1000`);
          if (typeof original === "object") await original.ask("unregister 0");
          if (i >= 0) {
            register.push(r);
            unregister.push(u);
            if (o) theirs.push(o.ms);
          }
        }
      } finally {
        if (typeof original === "object") await original.close();
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
      if (typeof original === "string") {
        figures.push(
          figure(
            3,
            "register.1000.original",
            "  original register_process (no fsync)",
            null,
            "ms",
            undefined,
            original,
          ),
        );
      } else if (original) {
        figures.push(
          figure(
            3,
            "register.1000.original",
            "  original register_process (no fsync)",
            round(median(theirs)),
            "ms",
            undefined,
            `median of ${runs}, interleaved; ${original.python}; a copy of the same 999 entries`,
          ),
          figure(
            3,
            "register.1000.vs-original",
            "  durable register / original's",
            round(median(register) / median(theirs)),
            "×",
            { op: "<=", value: 1 },
          ),
        );
      }
      ctx.log(`register/unregister ${size}: ${median(register).toFixed(2)} / ${median(unregister).toFixed(2)} ms`);
    }
    return figures;
  },
};
