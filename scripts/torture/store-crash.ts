/**
 * Scenario 1, crash consistency of the store: four processes register and unregister entries
 * in one home; every round one of them is SIGKILLed at a random moment and started again.
 * After each kill the file must parse, every acknowledged write must be there (and nothing
 * the writers removed may come back), and the restarted writer must get its next write through
 * (no temp or lock file left behind blocks it).
 */

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createRegistry, createStore, type RegistrySnapshot } from "@corral/core";
import type { Subprocess } from "bun";
import { Rng } from "./random.ts";
import { Scope, until } from "./scope.ts";
import { messageOf, type Scenario, type ScenarioOptions, type ScenarioResult, Tally } from "./types.ts";

const WORKER = join(import.meta.dir, "store-worker.ts");
const WORKERS = 4;

/**
 * What a slot may hold after the acknowledgements seen so far: the instance ids allowed there
 * (undefined: empty). One value once a write was acknowledged; two while one was in flight.
 */
type Expectation = { readonly certain: boolean; readonly allowed: ReadonlyArray<string | undefined> };

interface Writer {
  readonly index: number;
  incarnation: number;
  proc: Subprocess;
  /** acknowledgement files of every incarnation so far, oldest first */
  readonly ackFiles: string[];
}

export const storeCrash: Scenario = {
  id: 1,
  name: "store crash consistency",
  run: runStoreCrash,
};

async function runStoreCrash(options: ScenarioOptions): Promise<ScenarioResult> {
  const tally = new Tally(storeCrash.id, storeCrash.name);
  const rng = new Rng(options.seed);
  const rounds = options.form === "long" ? 200 : 12;
  const deadline = Date.now() + (options.form === "long" ? 8 : 1) * 60_000;
  const scope = new Scope();
  const home = scope.home(scope.tempDir("store"));
  const file = join(home, "processes.json");
  const writers: Writer[] = [];
  const counted = new Set<string>();
  const spawn = (index: number, incarnation: number, ackFiles: string[]): Subprocess => {
    const ackFile = join(home, `acks-${index}-${incarnation}.log`);
    ackFiles.push(ackFile);
    const seed = String(rng.int(1, 2 ** 31));
    const proc = Bun.spawn([process.execPath, WORKER, home, String(index), String(incarnation), ackFile, seed], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    scope.track(proc.pid);
    return proc;
  };
  scope.defer(async () => {
    for (const w of writers) w.proc.kill("SIGKILL");
    await Promise.all(writers.map((w) => w.proc.exited));
  });
  try {
    for (let index = 0; index < WORKERS; index++) {
      const ackFiles: string[] = [];
      writers.push({ index, incarnation: 0, ackFiles, proc: spawn(index, 0, ackFiles) });
    }
    for (const w of writers) await firstWrite(w, tally, "at start");
    for (let round = 1; round <= rounds; round++) {
      if (Date.now() > deadline) {
        tally.note(`stopped after ${round - 1} of ${rounds} rounds: the time budget ran out`);
        break;
      }
      tally.trial();
      await Bun.sleep(rng.int(5, 400));
      const victim = writers[rng.int(0, WORKERS - 1)]!;
      victim.proc.kill("SIGKILL");
      await victim.proc.exited;
      const others = writers.filter((w) => w !== victim);
      await pause(others, tally);
      await checkFile(file, writers, tally, `round ${round}`, counted);
      for (const w of others) w.proc.kill("SIGCONT");
      victim.incarnation++;
      victim.proc = spawn(victim.index, victim.incarnation, victim.ackFiles);
      await firstWrite(victim, tally, `round ${round}`);
      options.log(`store crash: round ${round}/${rounds}, ${tally.failures} failures`);
    }
    tally.trial();
    for (const w of writers) w.proc.kill("SIGKILL");
    await Promise.all(writers.map((w) => w.proc.exited));
    await checkFile(file, writers, tally, "after the last round", counted);
    await laterWriteWorks(home, tally);
    const temps = readdirSync(home).filter((n) => n.endsWith(".tmp"));
    if (temps.length > 0)
      tally.note(`${temps.length} temp files of killed writers were left in the home (they block nothing)`);
    const events = await createRegistry({ home }).history.read({ limit: 100_000 });
    tally.note(`${events.length} history events readable`);
  } catch (error) {
    tally.fail(`the scenario itself failed: ${messageOf(error)}`);
  } finally {
    await scope.cleanup();
  }
  return tally.result();
}

/** Waits until a (re)started writer has acknowledged a write, or reports it blocked. */
async function firstWrite(w: Writer, tally: Tally, when: string): Promise<void> {
  const ackFile = w.ackFiles.at(-1)!;
  const done = await until(() => {
    const lines = readLines(ackFile);
    if (lines.some((l) => l.startsWith("!"))) return "error";
    return lines.some((l) => l.startsWith("+ ") || l.startsWith("- "))
      ? "ok"
      : w.proc.exitCode !== null
        ? "exited"
        : undefined;
  }, 30_000);
  if (done !== "ok") {
    const error = readLines(ackFile).find((l) => l.startsWith("!"));
    tally.fail(
      `${when}: writer ${w.index} (restart ${w.incarnation}) got no write through: ${error ?? done ?? "nothing acknowledged in 30 s"}`,
    );
  }
}

/** SIGSTOPs the live writers and waits until each is stopped, so their acknowledgements hold still. */
async function pause(writers: readonly Writer[], tally: Tally): Promise<void> {
  for (const w of writers) w.proc.kill("SIGSTOP");
  for (const w of writers) {
    const stopped = await until(() => w.proc.exitCode !== null || procState(w.proc.pid) === "T", 10_000);
    if (!stopped) tally.fail(`writer ${w.index} did not stop on SIGSTOP`);
  }
}

function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}

function readLines(file: string): string[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, "utf8");
  // A line without its newline was never acknowledged.
  return text.split("\n").slice(0, -1);
}

/** What each slot may hold, from every acknowledgement of every writer so far. */
function expectations(writers: readonly Writer[], tally: Tally, when: string): Map<string, Expectation> {
  const expected = new Map<string, Expectation>();
  for (const w of writers) {
    for (const ackFile of w.ackFiles) {
      for (const line of readLines(ackFile)) {
        const [op, slot, id] = line.split(" ");
        if (op === "!") tally.fail(`${when}: writer ${w.index} failed: ${line.slice(2)}`);
        if (!slot) continue;
        const prior = expected.get(slot)?.allowed ?? [undefined];
        if (op === "?+") expected.set(slot, { certain: false, allowed: [undefined, id] });
        else if (op === "+") expected.set(slot, { certain: true, allowed: [id] });
        else if (op === "?-") expected.set(slot, { certain: false, allowed: [undefined, ...prior] });
        else if (op === "-") expected.set(slot, { certain: true, allowed: [undefined] });
      }
    }
  }
  return expected;
}

/** The file must parse, hold every acknowledged entry, and nothing acknowledged as removed. */
async function checkFile(
  file: string,
  writers: readonly Writer[],
  tally: Tally,
  when: string,
  counted: Set<string>,
): Promise<void> {
  if (existsSync(file)) {
    try {
      JSON.parse(readFileSync(file, "utf8"));
    } catch (error) {
      tally.fail(`${when}: processes.json does not parse: ${messageOf(error)}`);
      return;
    }
  }
  let snapshot: RegistrySnapshot;
  try {
    snapshot = await createStore({ file }).read();
  } catch (error) {
    tally.fail(`${when}: the store cannot read processes.json: ${messageOf(error)}`);
    return;
  }
  tally.check(snapshot.invalid.length === 0, `${when}: ${snapshot.invalid.length} entries fail the schema`);
  const expected = expectations(writers, tally, when);
  for (const [slot, want] of expected) {
    const got = snapshot.entries[slot]?.instance_id;
    if (want.allowed.includes(got)) continue;
    const wanted = want.allowed.map((id) => id ?? "nothing").join(" or ");
    if (want.certain && got === undefined) {
      // A lost entry stays lost in later rounds: count it once.
      const lost = `${slot}=${wanted}`;
      tally.lose(
        counted.has(lost) ? 0 : 1,
        `${when}: slot ${slot} should hold acknowledged entry ${wanted}, holds nothing`,
      );
      counted.add(lost);
    } else tally.fail(`${when}: slot ${slot} holds ${got ?? "nothing"}, acknowledged: ${wanted}`);
  }
  for (const slot of Object.keys(snapshot.entries)) {
    tally.check(expected.has(slot), `${when}: slot ${slot} holds an entry no writer ever wrote`);
  }
}

/** With every writer dead, this process must get the lock and a write through at once. */
async function laterWriteWorks(home: string, tally: Tally): Promise<void> {
  try {
    const registry = createRegistry({ home, lockTimeoutMs: 5000 });
    await registry.store.update((entries) => {
      for (const slot of Object.keys(entries)) delete entries[slot];
    });
    const { entries } = await registry.snapshot();
    tally.check(Object.keys(entries).length === 0, "a final write did not take effect");
  } catch (error) {
    tally.fail(`a write after the last kill failed: ${messageOf(error)}`);
  }
}
