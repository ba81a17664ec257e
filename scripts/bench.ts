// BENCH: corral's benchmark suite (issue 9). Run by hand; no test or CI step runs it.
//
// usage:  bun run bench [--quick] [--only 1,5,...]
//   --quick     fewer repetitions and shorter loads: the whole suite in under a minute
//   --only N,M  run only these scenarios (numbers as in the table)
//
// Prints one table (figure, value, target, pass/fail) on stdout, progress on stderr, and
// writes the same figures as JSON to bench-results.json at the repo root (gitignored).
// Every process it starts is tracked and SIGKILLed at the end, on Ctrl-C, on SIGTERM and
// when the watchdog fires; nothing else on the machine is touched. Timings are medians over
// repeated runs; where two ways are compared they are timed in the same run, interleaved.
// exit: 0 when every scenario ran (missed targets are reported, not fatal), 1 when one failed
// to run, 2 for a usage error, 130 when interrupted.
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cliScenario } from "./bench/cli.ts";
import { closeCrowd } from "./bench/crowd.ts";
import { closeFleet } from "./bench/fleet.ts";
import { gatewayScenario } from "./bench/gateway.ts";
import { type BenchContext, type Figure, type Scenario, Tracker } from "./bench/harness.ts";
import { lifecycleScenario } from "./bench/lifecycle.ts";
import { metricsScenario } from "./bench/metrics.ts";
import { orphansScenario } from "./bench/orphans.ts";
import { placementScenario } from "./bench/placement.ts";
import { probesScenario } from "./bench/probes.ts";
import { buildReport, renderTable } from "./bench/report.ts";
import { serverScenario } from "./bench/server.ts";
import { storeScenario } from "./bench/store.ts";
import { verifyScenario } from "./bench/verify.ts";
import { writersScenario } from "./bench/writers.ts";

const SCENARIOS: readonly Scenario[] = [
  verifyScenario,
  orphansScenario,
  storeScenario,
  writersScenario,
  serverScenario,
  cliScenario,
  lifecycleScenario,
  probesScenario,
  gatewayScenario,
  placementScenario,
  metricsScenario,
];
/** The whole suite stops by itself: past this, whatever runs is abandoned and cleaned up. */
// (scenario 11 alone spends 100 s idle on purpose, 10,000 ticks and a simulated month: about 3 minutes full)
const WATCHDOG_MS = { full: 14 * 60_000, quick: 3 * 60_000 };
const RESULTS = join(import.meta.dir, "..", "bench-results.json");

function options(): { quick: boolean; only: Set<number> | undefined } {
  try {
    const { values } = parseArgs({ options: { quick: { type: "boolean" }, only: { type: "string" } }, strict: true });
    const only = values.only?.split(",").map((s) => Number(s.trim()));
    if (only?.some((n) => !SCENARIOS.some((s) => s.scenario === n)))
      throw new Error(`--only: scenarios are 1 to ${SCENARIOS.length}`);
    return { quick: values.quick ?? false, only: only && new Set(only) };
  } catch (error) {
    console.error(`${(error as Error).message}\nusage: bun run bench [--quick] [--only 1,5,...]`);
    process.exit(2);
  }
}

const { quick, only } = options();
const tracker = new Tracker();
const startedAt = Date.now();
const loadStart = loadavg()[0] ?? 0;
const figures: Figure[] = [];
const errors: { scenario: number; name: string; error: string }[] = [];

let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await closeFleet().catch(() => undefined);
  await closeCrowd().catch(() => undefined);
  tracker.cleanup();
}
function abort(why: string, code: number): void {
  console.error(`bench: ${why}; cleaning up what it started`);
  tracker.cleanup();
  process.exit(code);
}
process.once("SIGINT", () => abort("interrupted", 130));
process.once("SIGTERM", () => abort("terminated", 130));
const watchdog = setTimeout(
  () => abort(`still running after ${(quick ? WATCHDOG_MS.quick : WATCHDOG_MS.full) / 1000} s`, 1),
  quick ? WATCHDOG_MS.quick : WATCHDOG_MS.full,
);

const ctx: BenchContext = {
  quick,
  tracker,
  runs: (full, few) => (quick ? few : full),
  log: (message) => console.error(`  ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(5)} s  ${message}`),
};

try {
  for (const scenario of SCENARIOS) {
    if (only && !only.has(scenario.scenario)) continue;
    ctx.log(`scenario ${scenario.scenario}: ${scenario.name}`);
    try {
      figures.push(...(await scenario.run(ctx)));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      errors.push({ scenario: scenario.scenario, name: scenario.name, error: message });
      ctx.log(`scenario ${scenario.scenario} failed: ${message}`);
    }
  }
} finally {
  await cleanup();
  clearTimeout(watchdog);
}

const report = buildReport({ quick, figures, errors, startedAt, loadStart });
writeFileSync(RESULTS, `${JSON.stringify(report, null, 2)}\n`);
console.log(renderTable(report));
console.error(`bench: figures written to ${RESULTS}`);
const leftover = tracker.alive();
if (leftover > 0) console.error(`bench: ${leftover} started processes were still alive after cleanup`);
process.exit(errors.length > 0 ? 1 : 0);
