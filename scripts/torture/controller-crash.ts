/**
 * Scenario 2, controller crashes: `corral serve` (packages/api/src/main.ts) is SIGKILLed at a
 * random moment while loads, unloads and switches of stand-in servers are in flight on three
 * slots, then started again (it recovers at start). After each restart: the registry parses,
 * no entry points at a dead or reused PID, no two entries share a PID, every llama-server this
 * home started is tracked (no orphan), and every load the API acknowledged, with nothing sent
 * for that slot since, is still tracked (nothing lost).
 */
import { createRegistry, type ProcessInfo, type VerifiedEntry } from "@corral/core";
import { makeHome, type TortureHome } from "./home.ts";
import { Rng } from "./random.ts";
import { Scope } from "./scope.ts";
import { type ServeProcess, startServe } from "./serve-proc.ts";
import { messageOf, type Scenario, type ScenarioOptions, type ScenarioResult, Tally } from "./types.ts";

/**
 * Scenario 2: SIGKILL `corral serve` mid-load and mid-unload, restart it, check nothing is orphaned, doubled or lost.
 * @example
 * const result = await controllerCrash.run({ form: "short", seed: 1, log: console.error })
 */
export const controllerCrash: Scenario = {
  id: 2,
  name: "controller crashes",
  run: runControllerCrash,
};

const SLOTS = ["0", "1", "2"] as const;
const MODELS = ["quick", "slow"] as const;

/** What a slot holds for sure (a PID, or nothing), or undefined while an unacknowledged request may have changed it. */
type Known = { readonly pid: number | undefined } | undefined;

/** Counts of what the rounds did, for the notes. */
interface Stats {
  acked: number;
  unacked: number;
  refused: Map<number, number>;
  /** the first message of each refusal code */
  reasons: Map<string, string>;
  recovered: Map<string, number>;
}

async function runControllerCrash(options: ScenarioOptions): Promise<ScenarioResult> {
  const tally = new Tally(controllerCrash.id, controllerCrash.name);
  const rng = new Rng(options.seed);
  const rounds = options.form === "long" ? 50 : 3;
  const deadline = Date.now() + (options.form === "long" ? 10 : 1) * 60_000;
  const scope = new Scope();
  const stats: Stats = { acked: 0, unacked: 0, refused: new Map(), reasons: new Map(), recovered: new Map() };
  let server: ServeProcess | undefined;
  scope.defer(async () => {
    server?.proc.kill("SIGKILL");
    await server?.proc.exited;
  });
  try {
    const h = await makeHome(scope, scope.tempDir("crash"), [
      { id: "quick", args: ["--fake-load-ms", "150"] },
      { id: "slow", args: ["--fake-load-ms", "900"] },
    ]);
    server = await restart(scope, h, tally, stats, "at start");
    for (let round = 1; round <= rounds && server; round++) {
      if (Date.now() > deadline) {
        tally.note(`stopped after ${round - 1} of ${rounds} rounds: the time budget ran out`);
        break;
      }
      tally.trial();
      const known = new Map<string, Known>();
      for (const { slot, entry } of await createRegistry({ home: h.home }).list()) known.set(slot, { pid: entry.pid });
      for (const slot of SLOTS) if (!known.has(slot)) known.set(slot, { pid: undefined });
      let killed = false;
      const current = server;
      const chains = SLOTS.map((slot) => drive(current, slot, known, () => killed, rng.fork(), stats));
      await Bun.sleep(rng.int(30, 1500));
      killed = true;
      current.proc.kill("SIGKILL");
      await current.proc.exited;
      await Promise.allSettled(chains);
      server = await restart(scope, h, tally, stats, `round ${round}`);
      if (server) await check(scope, h, known, tally, `round ${round}`);
      options.log(`controller crash: round ${round}/${rounds}, ${tally.failures} failures`);
    }
    const refused = [...stats.refused].map(([status, n]) => `${n}×${status}`).join(", ");
    tally.note(
      `${stats.acked} requests acknowledged, ${stats.unacked} cut off by a kill${refused ? `, refused: ${refused}` : ""}`,
    );
    const recovered = [...stats.recovered].map(([outcome, n]) => `${n} ${outcome}`).join(", ");
    if (recovered) tally.note(`recovery found: ${recovered}`);
    for (const [code, message] of stats.reasons) tally.note(`first ${code}: ${message.slice(0, 400)}`);
  } catch (error) {
    tally.fail(`the scenario itself failed: ${messageOf(error)}`);
  } finally {
    await scope.cleanup();
  }
  return tally.result();
}

/** Starts `corral serve` (recovery runs before it listens) and counts what it recovered. */
async function restart(
  scope: Scope,
  h: TortureHome,
  tally: Tally,
  stats: Stats,
  when: string,
): Promise<ServeProcess | undefined> {
  const start = await startServe(scope, h.home, h.configFile, 60_000);
  if (!start.server) {
    tally.fail(`${when}: corral serve did not start again (exit ${start.exitCode}): ${start.output.slice(-400)}`);
    return undefined;
  }
  for (const m of start.output.matchAll(/recovered slot \S+: (\S+)/g)) {
    stats.recovered.set(m[1]!, (stats.recovered.get(m[1]!) ?? 0) + 1);
  }
  return start.server;
}

/** One slot's requests, one after another, until the server is killed. */
async function drive(
  server: ServeProcess,
  slot: string,
  known: Map<string, Known>,
  killed: () => boolean,
  rng: Rng,
  stats: Stats,
): Promise<void> {
  let loaded = known.get(slot)?.pid !== undefined;
  while (!killed()) {
    const model = rng.pick(MODELS);
    const [path, body] = !loaded
      ? ["/api/v1/models/load", { model_id: model, gpu_id: slot }]
      : rng.chance(0.3)
        ? ["/api/v1/models/switch", { model_id: model, gpu_id: slot }]
        : ["/api/v1/models/unload", { gpu_id: slot, ...(rng.chance(0.3) ? { force: true } : {}) }];
    known.set(slot, undefined);
    let res: Response;
    try {
      res = await fetch(`${server.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${server.token()}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(60_000),
      });
    } catch {
      stats.unacked++;
      return; // cut off by the kill: what it did is unknown
    }
    const json = (await res.json().catch(() => undefined)) as
      | { status?: { pid?: number }; error?: { code?: string; message?: string } }
      | undefined;
    if (res.status !== 200) {
      stats.refused.set(res.status, (stats.refused.get(res.status) ?? 0) + 1);
      const code = `${res.status} ${json?.error?.code ?? ""}`;
      // The first line says what failed; a load failure's last log line says why.
      const lines = (json?.error?.message ?? "").split("\n");
      if (!stats.reasons.has(code)) stats.reasons.set(code, [...new Set([lines[0], lines.at(-1)])].join(" … "));
      // A refusal (slot in use, load failed) changes nothing we can be sure of: leave it unknown.
      loaded = !loaded;
      continue;
    }
    stats.acked++;
    if (path.endsWith("unload")) {
      known.set(slot, { pid: undefined });
      loaded = false;
    } else {
      known.set(slot, { pid: json?.status?.pid });
      loaded = true;
    }
  }
}

/** The invariants after a restart. */
async function check(
  scope: Scope,
  h: TortureHome,
  known: ReadonlyMap<string, Known>,
  tally: Tally,
  when: string,
): Promise<void> {
  const registry = createRegistry({ home: h.home });
  let verified: VerifiedEntry[];
  try {
    const snapshot = await registry.snapshot();
    tally.check(snapshot.invalid.length === 0, `${when}: ${snapshot.invalid.length} invalid entries`);
    verified = await registry.verifyAll();
  } catch (error) {
    tally.fail(`${when}: the registry cannot be read: ${messageOf(error)}`);
    return;
  }
  const pids = new Map<number, string>();
  for (const v of verified) {
    tally.check(
      v.probe.state === "running",
      `${when}: slot ${v.slot} points at pid ${v.entry.pid}, which is ${v.probe.state}: ${v.probe.reason}`,
    );
    const twin = pids.get(v.entry.pid);
    tally.check(twin === undefined, `${when}: pid ${v.entry.pid} is tracked twice (slots ${twin} and ${v.slot})`);
    pids.set(v.entry.pid, v.slot);
  }
  const servers = await scope.markedServers();
  const byPid = new Map<number, ProcessInfo>(servers.map((p) => [p.pid, p]));
  for (const p of servers) {
    // A child of a tracked server is tracked through it.
    let at: ProcessInfo | undefined = p;
    while (at && !pids.has(at.pid)) at = byPid.get(at.ppid);
    tally.check(
      at !== undefined,
      `${when}: orphan: pid ${p.pid} (${p.cmdline.join(" ").slice(0, 120)}) runs untracked`,
    );
  }
  for (const [slot, k] of known) {
    if (k === undefined) continue;
    const tracked = verified.find((v) => v.slot === slot)?.entry.pid;
    if (k.pid !== undefined && tracked !== k.pid) {
      tally.lose(
        1,
        `${when}: slot ${slot}: the acknowledged load (pid ${k.pid}) is not tracked (slot holds ${tracked ?? "nothing"})`,
      );
    } else if (k.pid === undefined && tracked !== undefined) {
      tally.fail(`${when}: slot ${slot} was acknowledged empty but holds pid ${tracked}`);
    }
  }
}
