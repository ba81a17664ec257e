/**
 * Scenario 1: `registry.verifyAll()` over 10, 100 and 1000 entries that point at live
 * processes (1000 copies of `sleep` named llama-server). Target: 1000 entries under 10 ms.
 * Its two parts are timed alone in the same run, to say where the time goes: one scan of
 * the process table (`probe.list()`) and reading the registry file (`store.read()`).
 */
import { createRegistry, defaultProbe } from "../../packages/core/src/index.ts";
import { fillRegistry } from "./entries.ts";
import { figure, median, round, timeRuns, type Figure, type Scenario } from "./harness.ts";
import { spawnSleepers } from "./sleepers.ts";

const SIZES = [10, 100, 1000] as const;

export const verifyScenario: Scenario = {
  scenario: 1,
  name: "verifyAll over live entries",
  async run(ctx) {
    const figures: Figure[] = [];
    const probe = defaultProbe();
    const servers = await spawnSleepers(1000, ctx.tracker, { name: "llama-server" });
    try {
      const processes = (await probe.list()).length;
      const runs = ctx.runs(21, 7);
      for (const size of SIZES) {
        const home = ctx.tracker.tempDir(`verify-${size}`);
        const registry = createRegistry({ home, probe });
        await fillRegistry(
          registry,
          servers.procs.slice(0, size).map((p) => p.pid),
          probe,
        );
        const verified = await registry.verifyAll();
        const running = verified.filter((v) => v.probe.state === "running").length;
        if (running !== size) throw new Error(`verifyAll saw ${running} of ${size} entries running`);
        const samples = await timeRuns(runs, () => registry.verifyAll());
        const target = size === 1000 ? ({ op: "<", value: 10 } as const) : undefined;
        figures.push(
          figure(
            1,
            `verifyAll.${size}`,
            `verifyAll, ${size} live entries`,
            round(median(samples)),
            "ms",
            target,
            `median of ${runs}; ${processes} processes on the host; all ${size} verified running`,
          ),
        );
        ctx.log(`verifyAll ${size}: ${median(samples).toFixed(2)} ms`);
        if (size === 1000) {
          const scan = await timeRuns(runs, () => probe.list());
          const read = await timeRuns(runs, () => registry.store.read());
          const scanned = await probe.list();
          const judged = await timeRuns(runs, () => registry.verifyAll({ processes: scanned }));
          figures.push(
            figure(
              1,
              "verifyAll.1000.scan",
              "  of which: one /proc scan (probe.list)",
              round(median(scan)),
              "ms",
              undefined,
              `${processes} processes`,
            ),
            figure(1, "verifyAll.1000.read", "  of which: store.read(), 1000 entries", round(median(read)), "ms"),
            figure(1, "verifyAll.1000.noscan", "  verifyAll given a scan (read + judge)", round(median(judged)), "ms"),
          );
        }
      }
    } finally {
      await servers.stop();
    }
    return figures;
  },
};
