import { EntryNotFoundError, NotOurProcessError, SlotInUseError } from "../errors.ts";
import { type CorralPaths, corralPaths, defaultHome } from "../paths.ts";
import { identityOf, judgeEntry, type ProbeResult } from "../process/identity.ts";
import { findOrphans, type Orphan } from "../process/orphans.ts";
import { defaultProbe } from "../process/probe.ts";
import { DEFAULT_SERVER_NAMES, type KnownIdentity, type ProcessInfo, type ProcessProbe } from "../process/types.ts";
import { entryGpus, parseSlot } from "../slots.ts";
import { createHistory, type History } from "../store/history.ts";
import type { LockMethod } from "../store/lock.ts";
import type { EntryStatus, HistoryEvent, ProcessEntry } from "../store/schema.ts";
import { createStore, type RegistrySnapshot, type Store } from "../store/store.ts";
import { homeIdOf } from "./home-id.ts";
import {
  cleanupOrphans,
  judgeOrphan,
  type KillContext,
  type KillOrphanOptions,
  killEntry,
  killOrphan,
  resolveKillTargets,
} from "./kill-policy.ts";
import type {
  CleanupResult,
  KillOptions,
  KillOutcome,
  KillPlan,
  KillSelector,
  RegistryEvent,
  VerifiedEntry,
} from "./types.ts";

export { homeIdOf } from "./home-id.ts";
export type * from "./types.ts";

/** Options of {@link createRegistry}. */
export interface RegistryOptions {
  /** @default defaultHome() (`CORRAL_HOME` or the platform's state folder) */
  readonly home?: string;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default defaultProbe() (/proc on Linux, ps-list elsewhere) */
  readonly probe?: ProcessProbe;
  /** executable names that count as llama-server @default ["llama-server", "llama-server.exe"] */
  readonly names?: readonly string[];
  /** @default 10000 */
  readonly lockTimeoutMs?: number;
  /** how the registry file is locked (the pid-file lock is what systems without flock use) @default "flock" where available */
  readonly lockMethod?: LockMethod;
  /** slack when judging legacy entries by `started_at` @default 2000 */
  readonly clockSlackMs?: number;
}

/** register and update always write: at least `updated_at` moves. */
const ALWAYS_CHANGED = { changed: () => true } as const;

const STARTED_FIELDS = ["proc_start_ms", "executable", "uid"] as const;

/**
 * Slot order ("2" before "10"). One collator for every sort: `localeCompare` with options
 * builds one per comparison, which made sorting 1000 slots take 4 ms instead of 0.2 ms.
 * Made on first use (about 0.6 ms), so commands that never list do not pay for it.
 */
let slotOrder: Intl.Collator | undefined;
function compareSlots(a: string, b: string): number {
  slotOrder ??= new Intl.Collator("en", { numeric: true });
  return slotOrder.compare(a, b);
}

/**
 * The registry of processes corral started: `processes.json` plus `history.jsonl`, with
 * identity-checked verification, kills and orphan handling. Create it with {@link createRegistry}.
 */
export class Registry {
  readonly paths: CorralPaths;
  readonly homeId: string;
  readonly store: Store;
  readonly history: History;
  readonly probe: ProcessProbe;
  readonly names: readonly string[];
  readonly #now: () => number;
  readonly #clockSlackMs: number;
  readonly #listeners = new Set<(event: RegistryEvent) => void>();
  /** what the kill rule sees of this registry */
  readonly #kills: KillContext;

  constructor(options: RegistryOptions = {}) {
    this.paths = corralPaths(options.home ?? defaultHome());
    this.homeId = homeIdOf(this.paths.home);
    this.#now = options.now ?? Date.now;
    this.#clockSlackMs = options.clockSlackMs ?? 2000;
    this.probe = options.probe ?? defaultProbe();
    this.names = options.names ?? DEFAULT_SERVER_NAMES;
    this.store = createStore({
      file: this.paths.registry,
      lockTimeoutMs: options.lockTimeoutMs,
      lockMethod: options.lockMethod,
      now: this.#now,
    });
    this.history = createHistory({ file: this.paths.history, now: this.#now });
    const judge = { names: this.names, clockSlackMs: this.#clockSlackMs };
    this.#kills = {
      probe: this.probe,
      names: this.names,
      homeId: this.homeId,
      list: () => this.list(),
      verify: (slot) => this.verify(slot),
      update: (slot, patch, reason) => this.update(slot, patch, reason),
      unregister: (slot, options) => this.unregister(slot, options),
      record: (event) => this.record(event),
      findOrphans: () => this.findOrphans(),
      isSame: (entry, info) => judgeEntry(entry, info, judge).state === "running",
    };
  }

  /**
   * Subscribes to every event this registry records (registered, unregistered, status, killed …).
   * @returns a function that unsubscribes
   * @example
   * const off = registry.subscribe((e) => console.log(e.event, e.slot)); off()
   */
  subscribe(listener: (event: RegistryEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Appends an event to the history and tells the subscribers.
   * @example
   * await registry.record({ event: "note", reason: "maintenance" })
   */
  async record(event: Omit<HistoryEvent, "time">): Promise<HistoryEvent> {
    const written = await this.history.append(event);
    for (const listener of this.#listeners) {
      try {
        listener(written);
      } catch {
        // A failing subscriber must not break the registry.
      }
    }
    return written;
  }

  /**
   * Every entry, keyed by slot, plus entries that failed validation.
   * @example
   * const { entries, invalid } = await registry.snapshot()
   */
  snapshot(): Promise<RegistrySnapshot> {
    return this.store.read();
  }

  /**
   * Every entry as `{ slot, entry }`, sorted by slot.
   * @example
   * for (const { slot, entry } of await registry.list()) console.log(slot, entry.pid)
   */
  async list(): Promise<Array<{ slot: string; entry: ProcessEntry }>> {
    const { entries } = await this.store.read();
    return Object.entries(entries)
      .sort(([a], [b]) => compareSlots(a, b))
      .map(([slot, entry]) => ({ slot, entry }));
  }

  /**
   * The entry in a slot, or undefined.
   * @example
   * const entry = await registry.get("0")
   */
  async get(slot: string): Promise<ProcessEntry | undefined> {
    parseSlot(slot);
    return (await this.store.read()).entries[slot];
  }

  /**
   * Records a process. Its start time and executable are read from the OS when not given,
   * so later probes can tell it from a reused PID. Refuses a slot that overlaps a held one
   * unless `replace` is set (the caller has already stopped the old process).
   * @example
   * await registry.register("0", { pid, model_id: "qwen", model_name: "Qwen", model_path: "/m/q.gguf",
   *   gpu_id: "0", port: 8081, started_at: new Date().toISOString(), command_line: argv, status: "loading" })
   */
  async register(
    slot: string,
    entry: ProcessEntry,
    options: { replace?: boolean; reason?: string } = {},
  ): Promise<ProcessEntry> {
    const identity = entry.proc_start_ms === undefined ? await this.#identity(entry.pid) : {};
    const full: ProcessEntry = { ...identity, ...entry, updated_at: new Date(this.#now()).toISOString() };
    const gpus = new Set(parseSlot(slot));
    await this.store.update((entries) => {
      for (const [held, other] of Object.entries(entries)) {
        if (held === slot && other.pid === full.pid) continue;
        if (!entryGpus({ gpu_id: held }).some((g) => gpus.has(g))) continue;
        if (!options.replace) throw new SlotInUseError(slot, { slot: held, pid: other.pid, model_id: other.model_id });
        delete entries[held];
      }
      entries[slot] = full;
    }, ALWAYS_CHANGED);
    await this.record({
      event: "registered",
      slot,
      pid: full.pid,
      model_id: full.model_id,
      to: full.status,
      reason: options.reason ?? "registered",
    });
    return full;
  }

  /**
   * Changes fields of an entry (status, restarts …). Records a `status` event when the status changes.
   * @example
   * await registry.update("0", { status: "running" }, "health check passed")
   */
  async update(slot: string, patch: Partial<ProcessEntry>, reason?: string): Promise<ProcessEntry> {
    parseSlot(slot);
    const { before, after } = await this.store.update((entries) => {
      const current = entries[slot];
      if (!current) throw new EntryNotFoundError(slot);
      if (patch.pid !== undefined && patch.pid !== current.pid) {
        throw new NotOurProcessError(patch.pid, `slot "${slot}" holds pid ${current.pid}`);
      }
      const next: ProcessEntry = { ...current, ...patch, updated_at: new Date(this.#now()).toISOString() };
      if (patch.status && patch.status !== current.status) next.status_reason = reason;
      entries[slot] = next;
      return { before: current, after: next };
    }, ALWAYS_CHANGED);
    if (after.status !== before.status) {
      await this.record({
        event: "status",
        slot,
        pid: after.pid,
        model_id: after.model_id,
        from: before.status,
        to: after.status,
        reason: reason ?? "status changed",
      });
    }
    return after;
  }

  /**
   * Changes the status of an entry, recording why.
   * @example
   * await registry.setStatus("0", "unhealthy", "/health timed out")
   */
  setStatus(slot: string, status: EntryStatus, reason: string): Promise<ProcessEntry> {
    return this.update(slot, { status }, reason);
  }

  /**
   * Removes an entry. Does not signal anything. With `pid`, removes it only if the slot still
   * holds that pid (so a stale caller cannot remove a newer entry).
   * @returns the removed entry, or undefined when the slot was empty
   * @example
   * await registry.unregister("0", { reason: "unloaded" })
   */
  async unregister(
    slot: string,
    options: { reason?: string; pid?: number; event?: string } = {},
  ): Promise<ProcessEntry | undefined> {
    parseSlot(slot);
    const removed = await this.store.update(
      (entries) => {
        const current = entries[slot];
        if (!current || (options.pid !== undefined && current.pid !== options.pid)) return undefined;
        delete entries[slot];
        return current;
      },
      { changed: (removed) => removed !== undefined },
    );
    if (removed) {
      await this.record({
        event: options.event ?? "unregistered",
        slot,
        pid: removed.pid,
        model_id: removed.model_id,
        from: removed.status,
        reason: options.reason ?? "unregistered",
      });
    }
    return removed;
  }

  /**
   * Checks one entry against the OS: running, exited, pid-reused, access-denied or unknown.
   * A legacy entry (no start time recorded) that checks out is upgraded to a full identity.
   * @example
   * const { probe } = await registry.verify("0"); if (probe.state !== "running") console.log(probe.reason)
   */
  async verify(slot: string): Promise<VerifiedEntry> {
    const entry = await this.get(slot);
    if (!entry) throw new EntryNotFoundError(slot);
    const info = await this.probe.get(entry.pid);
    return this.#judged(slot, entry, info);
  }

  /**
   * Checks every entry: reads just the recorded PIDs where the probe can (procfs), else one scan
   * of the process table; `processes` reuses a scan already made.
   * @example
   * for (const v of await registry.verifyAll()) console.log(v.slot, v.probe.state)
   */
  async verifyAll(options: { processes?: readonly ProcessInfo[] } = {}): Promise<VerifiedEntry[]> {
    const entries = await this.list();
    if (entries.length === 0) return [];
    const byPid = options.processes
      ? new Map(options.processes.map((p) => [p.pid, p]))
      : this.probe.identities
        ? await this.probe.identities(
            entries.map(({ entry }) => entry.pid),
            knownIdentities(entries.map(({ entry }) => entry)),
          )
        : new Map((await this.probe.list()).map((p) => [p.pid, p]));
    const verified = entries.map(({ slot, entry }) => this.#judged(slot, entry, byPid.get(entry.pid)));
    // Only upgrades write: a registry of full identities is judged without a promise per entry.
    return verified.some((v) => v instanceof Promise) ? Promise.all(verified) : (verified as VerifiedEntry[]);
  }

  /**
   * Stops the process of an entry and its whole tree (SIGTERM, back-off polling, SIGKILL after
   * `timeoutMs`), then unregisters it. Refuses with NotOurProcessError when the PID no longer
   * belongs to the recorded process. An entry whose process already exited is just unregistered.
   * This is the registry's half of an unload: callers with a controller use `controller.unload`
   * (one operation per slot at a time, then the port and GPU waits).
   * @example
   * await registry.kill("0", { timeoutMs: 5000 })
   */
  kill(slot: string, options: KillOptions = {}): Promise<KillOutcome> {
    return killEntry(this.#kills, slot, options);
  }

  /**
   * Kills one untracked llama-server under the one kill rule (see kill-policy.ts): judged as
   * {@link Registry.findOrphans} judges it; foreign ones only with `includeForeign`.
   * @throws NotOrphanError for a tracked PID (stop it through its slot), ForeignProcessError, NotOurProcessError
   * @example
   * const { verdict, tree } = await registry.killOrphan(4242)
   */
  killOrphan(pid: number, options: KillOrphanOptions = {}): Promise<KillOutcome> {
    return killOrphan(this.#kills, pid, options);
  }

  /**
   * Judges one untracked PID as {@link Registry.findOrphans} would (reading just it and its ancestors).
   * @throws ProcessNotFoundError, NotOurProcessError (not a llama-server), NotOrphanError (tracked)
   * @example
   * (await registry.orphan(4242)).verdict // "likely-ours"
   */
  async orphan(pid: number): Promise<Orphan> {
    return (await judgeOrphan(this.#kills, pid)).orphan;
  }

  /**
   * What a kill by PID or name would stop, without stopping anything (for a confirmation).
   * @example
   * const { targets, skipped } = await registry.resolveKillTargets({ name: "qwen" })
   */
  resolveKillTargets(selector: KillSelector, options: Pick<KillOptions, "includeForeign"> = {}): Promise<KillPlan> {
    return resolveKillTargets(this.#kills, selector, options);
  }

  /**
   * llama-server processes the registry does not track, with evidence and a verdict.
   * @example
   * for (const o of await registry.findOrphans()) console.log(o.pid, o.verdict, o.model_path)
   */
  async findOrphans(options: { processes?: readonly ProcessInfo[] } = {}): Promise<Orphan[]> {
    const entries = Object.values((await this.store.read()).entries);
    const trackedStarts = new Map<number, number>();
    for (const e of entries) if (e.proc_start_ms !== undefined) trackedStarts.set(e.pid, e.proc_start_ms);
    return findOrphans({
      homeId: this.homeId,
      tracked: new Set(entries.map((e) => e.pid)),
      trackedStarts,
      names: this.names,
      probe: this.probe,
      processes: options.processes,
    });
  }

  /**
   * Kills orphans and reports per PID. By default every orphan that is ours or likely ours;
   * `pids` narrows it; foreign ones (other users, other corral homes) only with `includeForeign`.
   * @example
   * const results = await registry.cleanupOrphans({ pids: [4242] })
   */
  cleanupOrphans(options: KillOptions & { pids?: readonly number[] } = {}): Promise<CleanupResult[]> {
    return cleanupOrphans(this.#kills, options);
  }

  /**
   * Removes entries whose process is gone (exited, or its PID now belongs to another process),
   * recording why. Never signals anything.
   * @example
   * const removed = await registry.prune()
   */
  async prune(options: { verified?: readonly VerifiedEntry[] } = {}): Promise<VerifiedEntry[]> {
    const verified = options.verified ?? (await this.verifyAll());
    const gone = verified.filter((v) => v.probe.state === "exited" || v.probe.state === "pid-reused");
    for (const v of gone) {
      await this.unregister(v.slot, {
        pid: v.entry.pid,
        event: "pruned",
        reason: `${v.probe.state}: ${v.probe.reason}`,
      });
    }
    return gone;
  }

  async #identity(pid: number): Promise<Partial<ProcessEntry>> {
    const info = await this.probe.get(pid);
    if (!info) return {};
    const id = identityOf(info);
    return Object.fromEntries(STARTED_FIELDS.filter((k) => id[k] !== undefined).map((k) => [k, id[k]]));
  }

  #judged(slot: string, entry: ProcessEntry, info: ProcessInfo | undefined): VerifiedEntry | Promise<VerifiedEntry> {
    const probe = judgeEntry(entry, info, { names: this.names, clockSlackMs: this.#clockSlackMs });
    if (probe.state === "running" && info && (entry.proc_start_ms === undefined || entry.executable === undefined)) {
      return this.#upgraded(slot, entry, info, probe);
    }
    return { slot, entry, probe };
  }

  /** A legacy entry that checks out gets a full identity, so the next check is exact. */
  async #upgraded(slot: string, entry: ProcessEntry, info: ProcessInfo, probe: ProbeResult): Promise<VerifiedEntry> {
    const upgraded = { ...identityOf(info) };
    try {
      const next = await this.store.update((entries) => {
        const current = entries[slot];
        if (!current || current.pid !== entry.pid) return undefined;
        entries[slot] = { ...current, ...upgraded };
        return entries[slot];
      });
      if (next) return { slot, entry: next, probe };
    } catch {
      // Upgrading is an optimisation; the verdict stands without it.
    }
    return { slot, entry, probe };
  }
}

/**
 * What the entries recorded of their processes, for a probe that can confirm it from the stat
 * line alone (a PID recorded twice is left to a full read).
 */
function knownIdentities(entries: readonly ProcessEntry[]): Map<number, KnownIdentity> {
  const known = new Map<number, KnownIdentity>();
  const seen = new Set<number>();
  const twice = new Set<number>();
  for (const e of entries) {
    if (seen.has(e.pid)) twice.add(e.pid);
    seen.add(e.pid);
    if (e.proc_start_ms === undefined || e.executable === undefined) continue;
    known.set(e.pid, { startTimeMs: e.proc_start_ms, exe: e.executable, uid: e.uid });
  }
  for (const pid of twice) known.delete(pid);
  return known;
}

/**
 * Opens the registry of a home (`processes.json`, `history.jsonl`, `logs/`).
 * @example
 * import { createRegistry } from "@corral/core"
 * const registry = createRegistry({ home: "/var/lib/corral" })
 * console.log(await registry.verifyAll())
 */
export function createRegistry(options: RegistryOptions = {}): Registry {
  return new Registry(options);
}
