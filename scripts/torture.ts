// TORTURE: breaks corral on purpose and checks that nothing is lost (issue 10).
//
//   bun run torture [--short] [--seed N] [--only 1,3] [--quiet]
//
// Scenarios: 1 store crash consistency, 2 controller crashes, 3 hostile API input,
// 4 corrupt registry files, 5 disk full, 6 other users' processes, 7 PID reuse, 8 hostile clients (issue 14).
// The long form (default) is the numbers: 200 store rounds, 50 controller crashes,
// 12,000 hostile requests …; --short is what the test command runs. Prints one line per
// scenario (trials, failures, entries lost), then the first problems of failing ones.
// Bounded: every scenario has fixed counts and time limits, and the whole run gives up after
// 30 minutes (5 for --short). It kills, unmounts and removes only what it started.
// exit: 0 no failure, 1 a failure or something lost, 2 bad arguments or out of time.
import { parseArgs } from "node:util";
import { cleanupAll, formatResult, runTorture, SCENARIOS } from "./torture/index.ts";

function args() {
  try {
    const { values } = parseArgs({
      options: {
        short: { type: "boolean", default: false },
        seed: { type: "string" },
        only: { type: "string" },
        quiet: { type: "boolean", default: false },
      },
      strict: true,
    });
    const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
    const only = values.only?.split(",").map(Number);
    if (!Number.isInteger(seed) || only?.some((n) => !SCENARIOS.some((s) => s.id === n)))
      throw new Error("bad --seed or --only");
    return { form: values.short ? ("short" as const) : ("long" as const), seed, only, quiet: values.quiet };
  } catch (error) {
    console.error(
      `${(error as Error).message}\nusage: bun scripts/torture.ts [--short] [--seed N] [--only 1,3] [--quiet]`,
    );
    process.exit(2);
  }
}

const { form, seed, only, quiet } = args();
const limitMs = (form === "long" ? 30 : 5) * 60_000;
const give = (code: number, why: string) => {
  console.error(why);
  void cleanupAll().finally(() => process.exit(code));
};
const watchdog = setTimeout(() => give(2, `torture: gave up after ${limitMs / 60_000} minutes; cleaned up`), limitMs);
process.once("SIGINT", () => give(130, "torture: interrupted; cleaned up"));
process.once("SIGTERM", () => give(143, "torture: terminated; cleaned up"));

console.log(`corral torture, ${form} form, seed ${seed} (replay with --seed ${seed})`);
const results = await runTorture({
  form,
  seed,
  only,
  // Progress overwrites itself on a terminal; logs and CI get only the result lines.
  log: quiet || !process.stderr.isTTY ? undefined : (line) => process.stderr.write(`\r\x1b[K  ${line.slice(0, 100)}`),
  onResult: (r) => {
    if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
    console.log(formatResult(r));
    for (const problem of r.problems.slice(0, 10)) console.log(`    ! ${problem}`);
    if (!quiet) for (const note of r.notes) console.log(`    · ${note}`);
  },
});
clearTimeout(watchdog);
const failed = results.filter((r) => r.failures > 0 || r.lost > 0);
const trials = results.reduce((n, r) => n + r.trials, 0);
console.log(
  failed.length === 0
    ? `all ${results.length} scenarios passed (${trials} trials)`
    : `${failed.length} scenarios failed`,
);
process.exit(failed.length === 0 ? 0 : 1);
