/**
 * What every torture scenario takes and gives back. A scenario breaks things on purpose,
 * counts its trials, and says which of them broke corral's promises.
 */

/**
 * How much of each scenario to run: `short` fits the normal test command, `long` is on demand.
 * @example
 * const form: TortureForm = process.argv.includes("--short") ? "short" : "long"
 */
export type TortureForm = "short" | "long";

/**
 * Options every scenario receives.
 * @example
 * const options: ScenarioOptions = { form: "short", seed: 42, log: () => {} }
 */
export interface ScenarioOptions {
  readonly form: TortureForm;
  /** seeds the scenario's random choices, so a failing run can be replayed with `--seed` */
  readonly seed: number;
  /** progress lines (stderr in the CLI, nothing in the test) */
  readonly log: (line: string) => void;
}

/**
 * One scenario's outcome: the line the CLI prints, and the details behind a failure.
 * @example
 * const r: ScenarioResult = { id: 1, name: "store crash", trials: 200, failures: 0, lost: 0, ms: 41_000, problems: [], notes: [] }
 */
export interface ScenarioResult {
  readonly id: number;
  readonly name: string;
  readonly trials: number;
  readonly failures: number;
  /** entries (or acknowledged writes) that should be there and are not */
  readonly lost: number;
  readonly ms: number;
  /** why the scenario did not run here (no root, no mount …); a skip is not a failure */
  readonly skipped?: string;
  /** the first failures, one sentence each */
  readonly problems: readonly string[];
  /** facts worth printing that are not failures (leftover temp files, statuses seen …) */
  readonly notes: readonly string[];
}

/**
 * A scenario: a number, a name, and a run function that cleans up after itself.
 * @example
 * const s: Scenario = { id: 4, name: "corrupt registry", run: async (o) => tally.result() }
 */
export interface Scenario {
  readonly id: number;
  readonly name: string;
  run(options: ScenarioOptions): Promise<ScenarioResult>;
}

const MAX_PROBLEMS = 20;

/**
 * Counts trials, failures and losses for one scenario, keeping the first problems verbatim.
 * @example
 * const tally = new Tally(1, "store crash");
 * tally.trial(); if (!ok) tally.fail("slot 3 vanished");
 * return tally.result();
 */
export class Tally {
  readonly id: number;
  readonly name: string;
  trials = 0;
  failures = 0;
  lost = 0;
  skipped: string | undefined;
  readonly problems: string[] = [];
  readonly notes: string[] = [];
  readonly #started = performance.now();
  #failedThisTrial = false;

  constructor(id: number, name: string) {
    this.id = id;
    this.name = name;
  }

  /** Starts a trial; failures reported until the next `trial()` count once for it. */
  trial(): void {
    this.trials++;
    this.#failedThisTrial = false;
  }

  /** Records a broken promise. A trial counts as failed once, however many problems it has. */
  fail(problem: string): void {
    if (!this.#failedThisTrial) this.failures++;
    this.#failedThisTrial = true;
    if (this.problems.length < MAX_PROBLEMS) this.problems.push(problem);
  }

  /** Records entries that should be there and are not (also a failure). */
  lose(count: number, problem: string): void {
    this.lost += count;
    this.fail(problem);
  }

  /** Checks `ok`, failing with `problem` when it is false; returns `ok`. */
  check(ok: boolean, problem: string | (() => string)): boolean {
    if (!ok) this.fail(typeof problem === "string" ? problem : problem());
    return ok;
  }

  note(line: string): void {
    if (!this.notes.includes(line)) this.notes.push(line);
  }

  skip(reason: string): void {
    this.skipped = reason;
  }

  result(): ScenarioResult {
    return {
      id: this.id,
      name: this.name,
      trials: this.trials,
      failures: this.failures,
      lost: this.lost,
      ms: Math.round(performance.now() - this.#started),
      ...(this.skipped !== undefined ? { skipped: this.skipped } : {}),
      problems: [...this.problems],
      notes: [...this.notes],
    };
  }
}

/**
 * The message of anything thrown, for problem lines: its class and first line.
 * @example
 * messageOf(new RangeError("too big\nmore")) // "RangeError: too big"
 */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message.split("\n")[0]}`;
  return String(error);
}
