/**
 * Scenario 8: the Linux /proc probe against the ps-list probe, the same work (one full
 * scan of the process table) in the same run, interleaved so both see the same host load.
 */
import { procfsProbe, psListProbe } from "@corral/core";
import { figure, median, round, type Scenario } from "./harness.ts";

export const probesScenario: Scenario = {
  scenario: 8,
  name: "/proc probe vs ps-list probe",
  async run(ctx) {
    const fast = procfsProbe();
    const slow = psListProbe();
    const runs = ctx.runs(21, 7);
    const procfs: number[] = [];
    const pslist: number[] = [];
    let counts: [number, number] = [0, 0];
    for (let i = -2; i < runs; i++) {
      let started = performance.now();
      const a = await fast.list();
      const tFast = performance.now() - started;
      started = performance.now();
      const b = await slow.list();
      const tSlow = performance.now() - started;
      counts = [a.length, b.length];
      if (i < 0) continue;
      procfs.push(tFast);
      pslist.push(tSlow);
    }
    const ratio = median(pslist) / median(procfs);
    ctx.log(`probes: procfs ${median(procfs).toFixed(2)} ms, ps-list ${median(pslist).toFixed(2)} ms`);
    const note = `median of ${runs}, interleaved; ${counts[0]} processes (/proc) and ${counts[1]} (ps)`;
    return [
      figure(8, "probe.procfs", "procfsProbe().list()", round(median(procfs)), "ms", undefined, note),
      figure(8, "probe.pslist", "psListProbe().list()", round(median(pslist)), "ms"),
      figure(8, "probe.ratio", "  ps-list / procfs", round(ratio), "×"),
    ];
  },
};
