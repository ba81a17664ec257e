/**
 * The torture suite: every scenario, the line each prints, and a runner. `scripts/torture.ts`
 * is the command line; packages/api/test/torture.test.ts runs the short form in the tests.
 */
import { controllerCrash } from "./controller-crash.ts";
import { corruptRegistry } from "./corrupt-registry.ts";
import { diskFull } from "./disk-full.ts";
import { foreignUsers } from "./foreign-users.ts";
import { hostileApi } from "./hostile-api.ts";
import { hostileClients } from "./hostile-clients.ts";
import { pidReuse } from "./pid-reuse.ts";
import { storeCrash } from "./store-crash.ts";
import { messageOf, type Scenario, type ScenarioResult, type TortureForm } from "./types.ts";

export { cleanupAll } from "./scope.ts";
export type { Scenario, ScenarioOptions, ScenarioResult, TortureForm } from "./types.ts";

/**
 * The scenarios: the seven of issue 10 in its order, then issue 14's hostile clients.
 * @example
 * for (const s of SCENARIOS) console.log(s.id, s.name)
 */
export const SCENARIOS: readonly Scenario[] = [
  storeCrash,
  controllerCrash,
  hostileApi,
  corruptRegistry,
  diskFull,
  foreignUsers,
  pidReuse,
  hostileClients,
];

/**
 * One scenario's line: number, name, trials, failures, entries lost, time (or why it was skipped).
 * @example
 * formatResult(result) // "1 store crash consistency       trials   201  failures 0  lost 0  92.4 s"
 */
export function formatResult(r: ScenarioResult): string {
  const head = `${r.id} ${r.name.padEnd(26)}`;
  if (r.skipped !== undefined) return `${head} skipped: ${r.skipped}`;
  const verdict = r.failures > 0 || r.lost > 0 ? "  FAIL" : "";
  return `${head} trials ${String(r.trials).padStart(5)}  failures ${r.failures}  lost ${r.lost}  ${(r.ms / 1000).toFixed(1)} s${verdict}`;
}

/**
 * Options of {@link runTorture}.
 * @example
 * const options: TortureOptions = { form: "short", seed: 42, only: [3] }
 */
export interface TortureOptions {
  /** @default "long" */
  readonly form?: TortureForm;
  /** @default a random seed */
  readonly seed?: number;
  /** scenario numbers to run @default all */
  readonly only?: readonly number[];
  /** progress lines @default none */
  readonly log?: (line: string) => void;
  /** called with each result as soon as its scenario ends @default none */
  readonly onResult?: (result: ScenarioResult) => void;
}

/**
 * Runs the scenarios one after another (they share the machine's two cores and must not
 * disturb each other's timings); each cleans up after itself, whatever happens.
 * @default form = "long", seed = random, only = every scenario
 * @example
 * const results = await runTorture({ form: "short", only: [1, 4] })
 * const ok = results.every((r) => r.failures === 0 && r.lost === 0)
 */
export async function runTorture(options: TortureOptions = {}): Promise<ScenarioResult[]> {
  const form = options.form ?? "long";
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const log = options.log ?? (() => {});
  const results: ScenarioResult[] = [];
  for (const scenario of SCENARIOS) {
    if (options.only && !options.only.includes(scenario.id)) continue;
    const started = performance.now();
    let result: ScenarioResult;
    try {
      // Each scenario gets its own seed from the run's, so --only replays the same choices.
      result = await scenario.run({ form, seed: seed + scenario.id, log });
    } catch (error) {
      const ms = Math.round(performance.now() - started);
      result = {
        id: scenario.id,
        name: scenario.name,
        trials: 0,
        failures: 1,
        lost: 0,
        ms,
        problems: [messageOf(error)],
        notes: [],
      };
    }
    results.push(result);
    options.onResult?.(result);
  }
  return results;
}
