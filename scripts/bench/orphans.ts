/**
 * Scenario 2: `registry.findOrphans()` on a host with 1,000 tracked llama-server stand-ins,
 * 1,000 other processes and 2 untracked stand-ins (one carrying this home's marker, one
 * without), which it must find. Timed in the same rounds as its floor (one `/proc/<pid>/stat`
 * read per process on the host) and as the original's `find_orphaned_processes` (Python,
 * psutil) over the same registry. Target: within 1.5× of the floor.
 */
import { createRegistry, defaultProbe, MARKER_ENV } from "@corral/core";
import { crowd } from "./crowd.ts";
import { fillRegistry } from "./entries.ts";
import { statFloorAll } from "./floor.ts";
import { type Figure, figure, interleave, median, round, type Scenario } from "./harness.ts";
import { originalFigures, startOriginal } from "./original.ts";
import { spawnSleepers } from "./sleepers.ts";

export const orphansScenario: Scenario = {
  scenario: 2,
  name: "findOrphans among 2000 processes, beside the stat floor and the original",
  async run(ctx) {
    const probe = defaultProbe();
    const home = ctx.tracker.tempDir("orphans");
    const registry = createRegistry({ home, probe });
    const { servers } = await crowd(ctx.tracker);
    const ours = await spawnSleepers(1, ctx.tracker, {
      name: "llama-server",
      env: { [MARKER_ENV.home]: registry.homeId },
    });
    const stray = await spawnSleepers(1, ctx.tracker, { name: "llama-server" });
    const original = await startOriginal(ctx.tracker);
    try {
      await fillRegistry(
        registry,
        servers.procs.map((p) => p.pid),
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
      if (found.some((o) => servers.procs.some((p) => p.pid === o.pid)))
        throw new Error("findOrphans reported a tracked server");
      if (typeof original !== "string") {
        await original.ask(`load ${registry.store.file}`);
        const theirs = await original.ask("orphans");
        if (Number(theirs.result) < 2)
          throw new Error(`the original found ${theirs.result} orphans, expected 2 or more`);
      }
      // The ratio to the floor is the figure: enough rounds that a busy moment of the host does not move it.
      const runs = ctx.runs(41, 9);
      const samples = await interleave(runs, {
        corral: () => registry.findOrphans(),
        floor: () => statFloorAll(),
        original: typeof original === "string" ? undefined : () => original.ask("orphans"),
      });
      const corral = median(samples.corral);
      const floor = median(samples.floor);
      ctx.log(`findOrphans: ${corral.toFixed(2)} ms, floor ${floor.toFixed(2)} ms`);
      const figures: Figure[] = [
        figure(
          2,
          "findOrphans.1000",
          "findOrphans, 1000 tracked + 1000 others",
          round(corral),
          "ms",
          undefined,
          `median of ${runs}, interleaved; ${processes} processes on the host, 1000 tracked, ${found.length} orphans found`,
        ),
        figure(
          2,
          "findOrphans.floor",
          "  floor: one stat read per host process",
          round(floor),
          "ms",
          undefined,
          `${processes} reads of /proc/<pid>/stat, nothing parsed`,
        ),
        figure(2, "findOrphans.vs-floor", "  findOrphans / floor", round(corral / floor), "×", { op: "<", value: 1.5 }),
      ];
      if (typeof original === "string") ctx.log(original);
      figures.push(
        ...originalFigures(
          2,
          "findOrphans",
          "find_orphaned_processes",
          original,
          samples.original,
          corral,
          "same registry",
        ),
      );
      return figures;
    } finally {
      if (typeof original !== "string") await original.close();
      await Promise.all([ours.stop(), stray.stop()]);
    }
  },
};
