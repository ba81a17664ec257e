/**
 * Scenario 2: `registry.findOrphans()` on a host with 1000 extra processes (copies of `sleep`
 * that are not llama-servers), 16 tracked llama-servers and 2 untracked ones (one carrying
 * this home's marker, one without), which it must find. Target: under 20 ms.
 */
import { createRegistry, defaultProbe, MARKER_ENV } from "../../packages/core/src/index.ts";
import { fillRegistry } from "./entries.ts";
import { figure, median, round, timeRuns, type Scenario } from "./harness.ts";
import { spawnSleepers } from "./sleepers.ts";

export const orphansScenario: Scenario = {
  scenario: 2,
  name: "findOrphans with 1000 extra processes",
  async run(ctx) {
    const probe = defaultProbe();
    const home = ctx.tracker.tempDir("orphans");
    const registry = createRegistry({ home, probe });
    const extra = await spawnSleepers(1000, ctx.tracker, { name: "bench-idle" });
    const tracked = await spawnSleepers(16, ctx.tracker, { name: "llama-server" });
    const ours = await spawnSleepers(1, ctx.tracker, {
      name: "llama-server",
      env: { [MARKER_ENV.home]: registry.homeId },
    });
    const stray = await spawnSleepers(1, ctx.tracker, { name: "llama-server" });
    try {
      await fillRegistry(
        registry,
        tracked.procs.map((p) => p.pid),
        probe,
      );
      const processes = (await probe.list()).length;
      const wanted = new Map([
        [ours.procs[0]!.pid, "ours"],
        [stray.procs[0]!.pid, "likely-ours"],
      ]);
      const found = await registry.findOrphans();
      // Other people's llama-servers may run on this host too: ours must be among the finds.
      for (const [pid, verdict] of wanted) {
        const hit = found.find((o) => o.pid === pid);
        if (hit?.verdict !== verdict)
          throw new Error(`findOrphans: pid ${pid} should be "${verdict}", got ${hit?.verdict ?? "nothing"}`);
      }
      const runs = ctx.runs(21, 7);
      const samples = await timeRuns(runs, () => registry.findOrphans());
      ctx.log(`findOrphans: ${median(samples).toFixed(2)} ms`);
      return [
        figure(
          2,
          "findOrphans.1000",
          "findOrphans, 1000 extra processes",
          round(median(samples)),
          "ms",
          { op: "<", value: 20 },
          `median of ${runs}; ${processes} processes on the host, 16 tracked, ${found.length} orphans found`,
        ),
      ];
    } finally {
      await Promise.all([extra.stop(), tracked.stop(), ours.stop(), stray.stop()]);
    }
  },
};
