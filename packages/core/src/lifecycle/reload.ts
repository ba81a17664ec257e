import { basename, dirname, resolve } from "node:path";
import { modelFingerprint, staleReason } from "../config/fingerprint.ts";
import { type CorralConfig, loadConfig, type ModelConfig } from "../config/load.ts";
import { homeModelDefaults } from "../placement/scanned-defaults.ts";
import type { ProcessEntry, ReloadSummary } from "../store/schema.ts";
import type { Controller } from "./controller.ts";
import type { ReloadRestart, ReloadResult } from "./reload-views.ts";

export type { ReloadRestart, ReloadResult } from "./reload-views.ts";

/** Options of {@link reloadConfig}. */
export interface ReloadOptions {
  /** restart (switch in place) every stale server whose model is still configured @default false */
  readonly restartChanged?: boolean;
  /** who asked, for the history (an API token's name) @default none */
  readonly by?: string;
  /** why, for the history @default "reload requested" */
  readonly reason?: string;
  /** a configuration already read and validated @default loadConfig on the file in force (or the home's) */
  readonly config?: CorralConfig;
}

/** Settings the running `corral serve` holds in its listener: they take effect at its next start. */
const SERVER_KEYS = ["host", "port", "token", "cors", "auth", "hosts", "max_streams"] as const;

/** One reload at a time per controller: a second waits for the first, so each sees a whole configuration. */
const inFlight = new WeakMap<Controller, Promise<unknown>>();

/**
 * Re-reads the configuration into a running controller. A file that does not parse or validate is
 * refused (ConfigError naming the key) and the configuration in force stays: nothing is
 * half-applied. Running servers are never stopped: one whose model changed (or was removed) is
 * marked `stale` in the registry until it is restarted (by hand, or here with `restartChanged`);
 * a removed model keeps running until it is unloaded. Webhooks, ports, ttl, gateway and watch
 * settings apply at once (every reader asks the controller for the configuration in force).
 * Every reload, refused or not, is in the history.
 * @throws ConfigError for a file that does not parse or validate; a registry error before anything changed
 * @example
 * const { stale, changed } = await reloadConfig(controller)
 * await reloadConfig(controller, { restartChanged: true, by: "ci" })
 */
export function reloadConfig(controller: Controller, options: ReloadOptions = {}): Promise<ReloadResult> {
  const previous = inFlight.get(controller) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => reloadNow(controller, options));
  inFlight.set(
    controller,
    run.catch(() => undefined),
  );
  return run;
}

async function reloadNow(controller: Controller, options: ReloadOptions): Promise<ReloadResult> {
  const before = controller.config;
  const by = options.by === undefined ? {} : { by: options.by };
  let next: CorralConfig;
  try {
    next = options.config ?? (await readConfig(controller.paths.home, before.file));
  } catch (error) {
    await controller
      .record({ event: "config-reload-refused", ...by, reason: (error as Error).message })
      .catch(() => undefined);
    throw error;
  }
  const summary = diffConfigs(before, next);
  // Marked before the swap: a registry that cannot be written refuses the reload with nothing changed.
  const stale = await markStale(controller, before, next);
  controller.replaceConfig(next);
  const done: ReloadSummary = { ...summary, stale };
  await controller.record({
    event: "config-reloaded",
    ...by,
    reason: `${options.reason ?? "reload requested"}: ${describe(done)}`,
    reload: done,
  });
  const restarted = options.restartChanged ? await restartStale(controller, next, stale) : [];
  return { ...done, restarted };
}

/** The file in force again; the home's own corral.yaml (or .json) through the home, so a switch between the two is seen. */
function readConfig(home: string, file: string | undefined): Promise<CorralConfig> {
  const inHome = file !== undefined && dirname(file) === resolve(home) && /^corral\.(yaml|json)$/.test(basename(file));
  const modelDefaults = homeModelDefaults(home);
  return file === undefined || inHome ? loadConfig({ home, modelDefaults }) : loadConfig({ home, file, modelDefaults });
}

/**
 * What changed between two configurations: top-level settings, models added, removed and changed,
 * and the `server` settings that only a restart of `corral serve` applies.
 * @example
 * diffConfigs(before, after) // { file, changed: ["webhooks"], added: [], removed: ["old"], changed_models: [], stale: [], restart_needed: [] }
 */
export function diffConfigs(before: CorralConfig, after: CorralConfig): ReloadSummary {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  const changed = [...keys]
    .filter((k) => k !== "models" && k !== "file")
    .filter((k) => !same(before[k as keyof CorralConfig], after[k as keyof CorralConfig]))
    .sort();
  const ids = (c: CorralConfig) => new Map(c.models.map((m) => [m.id, m] as const));
  const [old, now] = [ids(before), ids(after)];
  const restartNeeded = SERVER_KEYS.filter((k) => !same(before.server[k], after.server[k])).map((k) => `server.${k}`);
  return {
    ...(after.file === undefined ? {} : { file: after.file }),
    changed,
    added: [...now.keys()].filter((id) => !old.has(id)),
    removed: [...old.keys()].filter((id) => !now.has(id)),
    changed_models: [...now.values()].filter((m) => old.has(m.id) && !same(old.get(m.id), m)).map((m) => m.id),
    stale: [],
    restart_needed: restartNeeded,
  };
}

/** Why an entry is stale under `next`; an entry started before fingerprints were kept is judged by the change of its model. */
function staleUnder(before: CorralConfig, next: CorralConfig, entry: ProcessEntry): string | undefined {
  if (entry.config_hash !== undefined) return staleReason(next, entry);
  const was: ModelConfig | undefined = before.models.find((m) => m.id === entry.model_id);
  if (!was || entry.adopted) return entry.stale;
  return staleReason(next, { model_id: entry.model_id, config_hash: modelFingerprint(before, was) }) ?? entry.stale;
}

/** Sets (or clears) `stale` on every entry in one atomic write; the stale slots. */
async function markStale(controller: Controller, before: CorralConfig, next: CorralConfig): Promise<string[]> {
  return controller.registry.store.update(
    (entries) => {
      const stale: string[] = [];
      for (const [slot, entry] of Object.entries(entries)) {
        const reason = staleUnder(before, next, entry);
        if (reason) stale.push(slot);
        if (reason === entry.stale) continue;
        if (reason) entry.stale = reason;
        else delete entry.stale;
      }
      return stale.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    },
    { changed: () => true },
  );
}

/** Restarts each stale server whose model is still configured, in its slot, one after another. */
async function restartStale(
  controller: Controller,
  next: CorralConfig,
  slots: readonly string[],
): Promise<ReloadRestart[]> {
  const outcomes: ReloadRestart[] = [];
  for (const slot of slots) {
    const entry = await controller.entry(slot);
    if (!entry || !next.models.some((m) => m.id === entry.model_id)) continue;
    try {
      const { entry: started } = await controller.switch(slot, entry.model_id, {
        reason: "reload --restart-changed: its configuration changed",
      });
      outcomes.push({ slot, model_id: entry.model_id, outcome: "restarted", pid: started.pid });
    } catch (error) {
      outcomes.push({ slot, model_id: entry.model_id, outcome: "failed", error: (error as Error).message });
    }
  }
  return outcomes;
}

/** "2 settings changed (webhooks, gateway); models +1 −0 ~1; slot 0 stale". */
function describe(s: ReloadSummary): string {
  const parts = [
    s.changed.length ? `changed ${s.changed.join(", ")}` : "no setting changed",
    `models added ${s.added.length}, removed ${s.removed.length}, changed ${s.changed_models.length}`,
  ];
  if (s.stale.length) parts.push(`stale: slot ${s.stale.join(", ")}`);
  if (s.restart_needed?.length) parts.push(`needs a restart of corral serve: ${s.restart_needed.join(", ")}`);
  return parts.join("; ");
}
