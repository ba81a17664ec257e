/**
 * Scenario 1: `registry.verifyAll()` over 10, 100 and 1000 entries that point at live
 * processes (llama-server stand-ins), on a host with 1,000 other processes besides. At 1000
 * it is timed in the same rounds as its floor (one `/proc/<pid>/stat` read per tracked PID)
 * and as the original controller's `verify_all_processes` (Python, psutil) over the same
 * registry file. Target: within 1.5× of the floor.
 */
import { createRegistry, defaultProbe } from "@corral/core";
import { crowd } from "./crowd.ts";
import { fillRegistry } from "./entries.ts";
import { statFloorPids } from "./floor.ts";
import { type Figure, figure, interleave, median, round, type Scenario, timeRuns } from "./harness.ts";
import { originalFigures, startOriginal } from "./original.ts";

const SIZES = [10, 100, 1000] as const;

export const verifyScenario: Scenario = {
  scenario: 1,
  name: "verifyAll over live entries, beside the stat floor and the original",
  async run(ctx) {
    const figures: Figure[] = [];
    const probe = defaultProbe();
    const { servers } = await crowd(ctx.tracker);
    const processes = (await probe.list()).length;
    const runs = ctx.runs(21, 7);
    for (const size of SIZES) {
      const home = ctx.tracker.tempDir(`verify-${size}`);
      const registry = createRegistry({ home, probe });
      const pids = servers.procs.slice(0, size).map((p) => p.pid);
      await fillRegistry(registry, pids, probe);
      const verified = await registry.verifyAll();
      const running = verified.filter((v) => v.probe.state === "running").length;
      if (running !== size) throw new Error(`verifyAll saw ${running} of ${size} entries running`);
      const note = `median of ${runs}; ${processes} processes on the host; all ${size} verified running`;
      if (size < 1000) {
        const samples = await timeRuns(runs, () => registry.verifyAll());
        figures.push(
          figure(
            1,
            `verifyAll.${size}`,
            `verifyAll, ${size} live entries`,
            round(median(samples)),
            "ms",
            undefined,
            note,
          ),
        );
        continue;
      }
      const original = await startOriginal(ctx.tracker);
      try {
        const ways = {
          corral: () => registry.verifyAll(),
          floor: () => statFloorPids(pids),
          read: () => registry.store.read(),
          original: typeof original === "string" ? undefined : () => original.ask("verify"),
        };
        if (typeof original !== "string") {
          const loaded = await original.ask(`load ${registry.store.file}`);
          const ok = await original.ask("verify");
          if (loaded.result !== size || ok.result !== size)
            throw new Error(`the original loaded ${loaded.result} entries and verified ${ok.result} of ${size}`);
        }
        // More rounds than the small sizes: the ratio to the floor is the figure, and on a shared host
        // 21 rounds still moved it by a fifth between runs.
        const samples = await interleave(ctx.runs(61, 11), ways);
        const corral = median(samples.corral);
        const floor = median(samples.floor);
        figures.push(
          figure(
            1,
            "verifyAll.1000",
            "verifyAll, 1000 live entries",
            round(corral),
            "ms",
            undefined,
            `median of ${samples.corral.length}, interleaved; ${processes} processes on the host; all ${size} verified running`,
          ),
          figure(
            1,
            "verifyAll.1000.floor",
            "  floor: one stat read per tracked PID",
            round(floor),
            "ms",
            undefined,
            "1000 reads of /proc/<pid>/stat, nothing parsed",
          ),
          figure(1, "verifyAll.1000.read", "  of which: store.read(), 1000 entries", round(median(samples.read)), "ms"),
          figure(1, "verifyAll.1000.vs-floor", "  verifyAll / floor", round(corral / floor), "×", {
            op: "<",
            value: 1.5,
          }),
        );
        if (typeof original === "string") ctx.log(original);
        figures.push(
          ...originalFigures(
            1,
            "verifyAll.1000",
            "verify_all_processes",
            original,
            samples.original,
            corral,
            "same registry file, in memory as the original keeps it",
          ),
        );
        ctx.log(`verifyAll 1000: ${corral.toFixed(2)} ms, floor ${floor.toFixed(2)} ms`);
      } finally {
        if (typeof original !== "string") await original.close();
      }
    }
    return figures;
  },
};
