import { join } from "node:path";
import { type CorralConfig, checkRunnable, findModel, loadConfig, type ModelConfig } from "../config/load.ts";
import { InvalidInputError, LoadFailedError, SlotInUseError } from "../errors.ts";
import {
  checkPlacement,
  chooseSlot,
  learnFromLoad,
  learnPeaks,
  type PlaceContext,
  roomFor,
} from "../placement/check.ts";
import { FactsCache, modelLabels } from "../placement/facts.ts";
import { LearnedFigures } from "../placement/learned.ts";
import type { RoomCandidate, RoomPlan } from "../placement/room.ts";
import { isGone } from "../process/identity.ts";
import type { Orphan } from "../process/orphans.ts";
import type { ProcessProbe } from "../process/types.ts";
import { createUsageSampler } from "../process/usage.ts";
import { createRegistry, type Registry, type VerifiedEntry } from "../registry/registry.ts";
import type { CleanupResult, KillOptions, KillOutcome, KillPlan, KillSelector, KillTarget } from "../registry/types.ts";
import { createGpuQuery, type GpuSnapshot, queryGpus } from "../server/gpu.ts";
import { gpusView } from "../server/gpu-view.ts";
import { isPortFree } from "../server/ports.ts";
import type { GpusView } from "../server/views.ts";
import { slotKey, slotsOverlap } from "../slots.ts";
import type { HistoryReadOptions } from "../store/history.ts";
import type { HistoryEvent, ProcessEntry } from "../store/schema.ts";
import { ensureSafeHome } from "../store/secure-fs.ts";
import { type AdoptOptions, adoptOrphan } from "./adopt.ts";
import { killTargets, slotMoved } from "./kill.ts";
import { type ControllerHooks, type LoadContext, spawnAndWait } from "./load.ts";
import { followSlotLog, slotLogFile, slotLogs } from "./logs.ts";
import { assertPortAllowed, PortChoice } from "./port-choice.ts";
import { recover } from "./recover.ts";
import { collectStatus } from "./status.ts";
import type {
  LoadOptions,
  LoadResult,
  ModelView,
  ProcessStatus,
  RecoveredSlot,
  SwitchResult,
  UnloadOptions,
  UnloadResult,
} from "./types.ts";
import { type UnloadContext, unloadSlot } from "./unload.ts";

export type { ControllerHooks } from "./load.ts";

/** Options of {@link createController}. */
export interface ControllerOptions {
  /** @default defaultHome() */
  readonly home?: string;
  /** an already loaded configuration @default loadConfig({ home, file: configFile }) */
  readonly config?: CorralConfig;
  /** explicit configuration file @default <home>/corral.yaml, then corral.json */
  readonly configFile?: string;
  /** @default createRegistry({ home, probe }) */
  readonly registry?: Registry;
  /** @default the registry's probe */
  readonly probe?: ProcessProbe;
  /** @default Date.now */
  readonly now?: () => number;
  /** base environment of spawned servers @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** GPU figures @default createGpuQuery() (nvidia-smi, cached 1 s; undefined where there is none) */
  readonly gpuQuery?: () => Promise<GpuSnapshot | undefined>;
  /** instrumentation points; the crash tests SIGKILL a controller from `afterSpawn` @default none */
  readonly hooks?: ControllerHooks;
}

/**
 * Starts, stops and switches llama-server processes and keeps the registry true to them.
 * Create it with {@link createController}; recovery, status and adoption live beside it.
 */
export class Controller {
  readonly registry: Registry;
  readonly probe: ProcessProbe;
  readonly gpuQuery: () => Promise<GpuSnapshot | undefined>;
  readonly now: () => number;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #busy = new Map<string, Promise<unknown>>();
  readonly #ports: PortChoice;
  readonly #loadContext: LoadContext;
  readonly #unloadContext: UnloadContext;
  readonly #usage = createUsageSampler();
  readonly #hooks: ControllerHooks;
  readonly #gpuFresh: () => Promise<GpuSnapshot | undefined>;
  readonly #place: PlaceContext;
  /** the one place the current configuration is held: every reader goes through `config` */
  #config: CorralConfig;
  readonly #configListeners = new Set<(next: CorralConfig, previous: CorralConfig) => void>();

  constructor(init: {
    registry: Registry;
    config: CorralConfig;
    now?: () => number;
    env?: Readonly<Record<string, string | undefined>>;
    gpuQuery?: () => Promise<GpuSnapshot | undefined>;
    hooks?: ControllerHooks;
  }) {
    this.#hooks = init.hooks ?? {};
    this.registry = init.registry;
    this.#config = init.config;
    // The helpers' contexts read the configuration through getters, so a reload reaches them all at once.
    const config = () => this.#config;
    this.probe = init.registry.probe;
    this.now = init.now ?? Date.now;
    this.#env = init.env ?? process.env;
    // Status and the watcher share one nvidia-smi run per second; unload polls uncached.
    this.gpuQuery = init.gpuQuery ?? createGpuQuery();
    this.#gpuFresh = init.gpuQuery ?? (() => queryGpus());
    this.#place = {
      get config() {
        return config();
      },
      homeId: this.registry.homeId,
      probe: this.probe,
      entries: () => this.registry.list(),
      history: (limit) => this.registry.history.read({ limit }),
      gpuQuery: this.#gpuFresh,
      learned: new LearnedFigures({ file: join(this.registry.paths.home, "learned.json") }),
      facts: new FactsCache({ file: join(this.registry.paths.home, "facts.json") }),
    };
    const registry = this.registry;
    this.#ports = new PortChoice({
      registry,
      get config() {
        return config();
      },
    });
    this.#unloadContext = {
      registry,
      get config() {
        return config();
      },
      gpuQuery: this.#gpuFresh,
    };
    this.#loadContext = {
      registry,
      get config() {
        return config();
      },
      now: this.now,
      env: this.#env,
      hooks: this.#hooks,
    };
  }

  /**
   * The configuration in force now. A reload (`reloadConfig`) swaps it whole; read it anew for each
   * decision rather than keeping a copy.
   */
  get config(): CorralConfig {
    return this.#config;
  }

  /**
   * Puts a new, already validated configuration in force at once, whole (nothing half-applied),
   * and tells the listeners (the supervisor, the gateway). Running servers are not touched: see
   * `reloadConfig`, which also marks the servers whose model changed.
   * @example
   * controller.replaceConfig(await loadConfig({ home: controller.paths.home }))
   */
  replaceConfig(next: CorralConfig): void {
    const previous = this.#config;
    this.#config = next;
    if (next.history?.max_bytes) this.registry.history.setMaxBytes(next.history.max_bytes);
    for (const listener of this.#configListeners) {
      try {
        listener(next, previous);
      } catch {
        // One failing listener must not keep the others on the old configuration.
      }
    }
  }

  /**
   * Hears every {@link Controller.replaceConfig}.
   * @returns a function that unsubscribes
   * @example
   * const off = controller.onConfigChange((next) => console.log(next.webhooks))
   */
  onConfigChange(listener: (next: CorralConfig, previous: CorralConfig) => void): () => void {
    this.#configListeners.add(listener);
    return () => this.#configListeners.delete(listener);
  }

  /** The home's file layout. */
  get paths() {
    return this.registry.paths;
  }

  /**
   * The configured models and the slots each is loaded in.
   * @example
   * for (const m of await controller.models()) console.log(m.id, m.loaded_in)
   */
  async models(): Promise<ModelView[]> {
    const entries = await this.registry.list();
    const labels = await Promise.all(this.config.models.map((m) => modelLabels(m.path, this.#place.facts)));
    return this.config.models.map((m, i) => ({
      id: m.id,
      name: m.name,
      path: m.path,
      gpu: m.gpu,
      port: m.port,
      loaded_in: entries.filter(({ entry }) => entry.model_id === m.id).map(({ slot }) => slot),
      ...labels[i],
    }));
  }

  /**
   * Starts a model on a GPU (or GPU set) and waits until its `/health` answers 200.
   * Registered as `loading` right after spawn, `running` once ready; a server that exits while
   * loading is unregistered and the error carries its exit code and the last log lines.
   * @example
   * const { slot, entry, readyMs } = await controller.load("qwen-7b", { gpu: 0 })
   */
  async load(modelId: string, options: LoadOptions = {}): Promise<LoadResult> {
    const model = findModel(this.config, modelId);
    const gpu = options.gpu ?? model.gpu;
    if (gpu === undefined) throw new InvalidInputError("gpu", `model "${model.id}" has no default gpu: say which GPU`);
    if (options.port !== undefined) assertPortAllowed(this.config, options.port);
    const slot = gpu === "auto" ? await chooseSlot(this.#place, model) : slotKey(gpu);
    return this.#exclusive(slot, () => this.#load(model, slot, options));
  }

  /**
   * Stops the server in a slot: SIGTERM to its tree, SIGKILL after the timeout, confirms the port
   * is free, unregisters. An entry whose PID now belongs to another process is not signalled: it
   * is removed, since the process it recorded is gone.
   * @example
   * const { ms, portFreed } = await controller.unload("0")
   */
  unload(slot: string, options: UnloadOptions = {}): Promise<UnloadResult> {
    const key = slotKey(slot);
    return this.#exclusive(key, () => this.#unload(key, options));
  }

  /**
   * The slot a load of `modelId` would use: its configured GPU set, or for `gpu: auto` the one
   * placement picks now (the same choice `load` makes). The gateway asks it before making room.
   * @example
   * await controller.slotFor("qwen-7b") // "2"
   */
  async slotFor(modelId: string): Promise<string> {
    const model = findModel(this.config, modelId);
    if (model.gpu === undefined) {
      throw new InvalidInputError("gpu", `model "${model.id}" has no default gpu: say which GPU`);
    }
    return model.gpu === "auto" ? chooseSlot(this.#place, model) : slotKey(model.gpu);
  }

  /**
   * Which of `candidates` (loaded models of this home: least recently used first, idle and
   * unpinned only) to unload so that `modelId` fits in slot `slot`, no more than needed; undefined
   * where placement cannot tell (no GPU figures, an unreadable GGUF). The gateway calls it before
   * an on-demand load.
   * @example
   * const plan = await controller.planRoom("qwen-32b", "0", candidates)
   * for (const c of plan?.unload ?? []) await controller.unload(c.slot)
   */
  planRoom(modelId: string, slot: string, candidates: readonly RoomCandidate[]): Promise<RoomPlan | undefined> {
    return roomFor(this.#place, findModel(this.config, modelId), slotKey(slot), candidates);
  }

  /**
   * Unloads a slot and loads another model on the same GPUs (and port, unless the model has its own).
   * The model it replaced is read inside the slot's queue, so it is the one this switch unloaded.
   * @example
   * const { previous } = await controller.switch("0", "llama-3-8b"); console.log(previous?.model_id)
   */
  async switch(slot: string, modelId: string, options: LoadOptions = {}): Promise<SwitchResult> {
    const key = slotKey(slot);
    const model = findModel(this.config, modelId);
    if (options.port !== undefined) assertPortAllowed(this.config, options.port);
    return this.#exclusive(key, async () => {
      const previous = await this.registry.get(key);
      if (previous) await this.#unload(key, { reason: `switching to ${model.id}` });
      const port = options.port ?? model.port ?? previous?.port;
      const loaded = await this.#load(model, key, {
        ...options,
        port,
        reason: options.reason ?? `switched from ${previous?.model_id ?? "nothing"}`,
      });
      return { ...loaded, previous };
    });
  }

  /**
   * Picks everything up after a restart or crash: see {@link recover}.
   * @example
   * for (const r of await controller.recover()) console.log(r.slot, r.outcome, r.reason)
   */
  recover(): Promise<RecoveredSlot[]> {
    return recover(this);
  }

  /**
   * Every tracked process with live identity, health, uptime, CPU, memory and GPU memory.
   * CPU figures are averaged since the previous call of this controller.
   * @example
   * const rows = await controller.status()
   */
  async status(): Promise<ProcessStatus[]> {
    const rows = await collectStatus(this, { usage: this.#usage });
    await this.learnPeaks(rows);
    return rows;
  }

  /**
   * Raises the learned peak GPU memory of each running server that now holds more than its load
   * recorded, so the next estimate of that model uses the true peak. `status()` and every
   * supervisor tick call it; it never throws.
   * @example
   * await controller.learnPeaks(await controller.status())
   */
  async learnPeaks(rows: readonly ProcessStatus[]): Promise<void> {
    const running = rows.filter((r) => r.state === "running");
    if (running.length === 0) return;
    // gpuQuery caches nvidia-smi for a second: this is the snapshot the rows were made from.
    await learnPeaks(this.#place, running, await this.gpuQuery().catch(() => undefined));
  }

  /**
   * Takes an untracked llama-server into the registry: see {@link adoptOrphan}.
   * @example
   * await controller.adopt(4242, { slot: "1" })
   */
  adopt(pid: number, options: AdoptOptions = {}): Promise<ProcessEntry> {
    return adoptOrphan(this, pid, options);
  }

  /**
   * Receives every event this controller's registry records (use a supervisor's `subscribe` to
   * hear other processes' events too).
   * @returns a function that unsubscribes
   * @example
   * const off = controller.subscribe((e) => console.log(e.event, e.slot))
   */
  subscribe(listener: (event: HistoryEvent) => void): () => void {
    return this.registry.subscribe(listener);
  }

  /**
   * Appends an event to the history (and tells subscribers): for front-ends that record what
   * they did, such as the API's audit of requests.
   * @example
   * await controller.record({ event: "request", by: "ci", reason: "POST /api/v1/models/load → 200" })
   */
  record(event: Omit<HistoryEvent, "time">): Promise<HistoryEvent> {
    return this.registry.record(event);
  }

  /**
   * Every tracked entry, sorted by slot.
   * @example
   * for (const { slot, entry } of await controller.entries()) console.log(slot, entry.pid)
   */
  entries(): Promise<Array<{ slot: string; entry: ProcessEntry }>> {
    return this.registry.list();
  }

  /**
   * The entry in a slot, or undefined.
   * @example
   * const entry = await controller.entry("0")
   */
  entry(slot: string): Promise<ProcessEntry | undefined> {
    return this.registry.get(slotKey(slot));
  }

  /**
   * Checks a slot's entry against the OS (running, exited, pid-reused …).
   * @example
   * const { probe } = await controller.verify("0")
   */
  verify(slot: string): Promise<VerifiedEntry> {
    return this.registry.verify(slotKey(slot));
  }

  /**
   * Checks every entry against the OS.
   * @example
   * const bad = (await controller.verifyAll()).filter((v) => v.probe.state !== "running")
   */
  verifyAll(): Promise<VerifiedEntry[]> {
    return this.registry.verifyAll();
  }

  /**
   * The newest events of the history, newest last.
   * @example
   * await controller.history({ slot: "0", limit: 20 })
   */
  history(options: HistoryReadOptions = {}): Promise<HistoryEvent[]> {
    return this.registry.history.read(options);
  }

  /**
   * Each GPU with the slots on it and the processes holding its memory, marked with the slot
   * that tracks each (`{ available: false, gpus: [] }` without nvidia-smi).
   * @example
   * for (const g of (await controller.gpus()).gpus) console.log(g.index, g.slots)
   */
  async gpus(): Promise<GpusView> {
    const [snapshot, entries] = await Promise.all([this.gpuQuery(), this.registry.list()]);
    return gpusView(snapshot, entries);
  }

  /**
   * llama-servers nobody tracks, with evidence and a verdict (ours, likely-ours, foreign).
   * @example
   * for (const o of await controller.findOrphans()) console.log(o.pid, o.verdict)
   */
  findOrphans(): Promise<Orphan[]> {
    return this.registry.findOrphans();
  }

  /**
   * What a kill by PID or name will stop (tracked slots and orphans), for a confirmation.
   * @throws InvalidNameError (blank name), NameNotFoundError, NotOurProcessError, ForeignProcessError
   * @example
   * const { targets, skipped } = await controller.resolveKillTargets({ name: "qwen" })
   */
  resolveKillTargets(selector: KillSelector, options: Pick<KillOptions, "includeForeign"> = {}): Promise<KillPlan> {
    return this.registry.resolveKillTargets(selector, options);
  }

  /**
   * Kills by PID or name under the one kill rule: a tracked slot through {@link Controller.unload}
   * (its queue, then the port and GPU waits), an untracked llama-server only as an orphan, foreign
   * ones only with `includeForeign`. With `targets` (from {@link Controller.resolveKillTargets},
   * say after a confirmation) exactly those are killed.
   * @example
   * await controller.kill({ name: "qwen" }, { force: true })
   */
  async kill(
    selector: KillSelector | { readonly targets: readonly KillTarget[] },
    options: KillOptions = {},
  ): Promise<KillOutcome[]> {
    const targets =
      "targets" in selector ? selector.targets : (await this.resolveKillTargets(selector, options)).targets;
    return killTargets(
      { registry: this.registry, unloadPid: (slot, pid, o) => this.#unloadPid(slot, pid, o) },
      targets,
      options,
    );
  }

  /**
   * Kills one orphan (an untracked llama-server; foreign only with `includeForeign`).
   * @throws NotOrphanError (tracked, or under a tracked one), ForeignProcessError, ProcessNotFoundError
   * @example
   * const { verdict, tree } = await controller.killOrphan(4242)
   */
  killOrphan(pid: number, options: KillOptions = {}): Promise<KillOutcome> {
    return this.registry.killOrphan(pid, options);
  }

  /**
   * Kills orphans and says per PID what happened (`outcome`: killed, left-foreign, not-orphan, failed).
   * @example
   * summarizeCleanup(await controller.cleanupOrphans({ pids: [4242] })).message
   */
  cleanupOrphans(options: KillOptions & { pids?: readonly number[] } = {}): Promise<CleanupResult[]> {
    return this.registry.cleanupOrphans(options);
  }

  /**
   * The last lines of a slot's log (the live entry's, else the newest log that slot ever had).
   * @default lines = 100
   * @example
   * console.log((await controller.logs("0", 50)).join("\n"))
   */
  logs(slot: string, lines = 100): Promise<string[]> {
    return slotLogs(this.registry, slot, lines);
  }

  /**
   * Calls `onLines` with every new line of a slot's log until `signal` aborts; with `tail`, first
   * with that many lines from before (one read: no line falls between the tail and the follow).
   * @example
   * const ac = new AbortController(); controller.followLogs("0", (l) => console.log(l.join("\n")), ac.signal)
   */
  followLogs(
    slot: string,
    onLines: (lines: string[]) => void,
    signal?: AbortSignal,
    options: { tail?: number; onReady?: () => void } = {},
  ): Promise<void> {
    return followSlotLog(this.registry, slot, onLines, signal, options.tail ?? 0, options.onReady);
  }

  /**
   * The log file of a slot: the registered one, else the newest `slot-<slot>-*.log` in the logs folder.
   * @example
   * await controller.logFile("0") // "/home/me/.local/state/corral/logs/slot-0-qwen-20261126T120000Z.log"
   */
  logFile(slot: string): Promise<string | undefined> {
    return slotLogFile(this.registry, slot);
  }

  /** Serialises operations on one slot inside this process (other processes are kept honest by the store's lock). */
  async #exclusive<T>(slot: string, job: () => Promise<T>): Promise<T> {
    const previous = this.#busy.get(slot) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(job);
    this.#busy.set(slot, run);
    try {
      return await run;
    } finally {
      if (this.#busy.get(slot) === run) this.#busy.delete(slot);
    }
  }

  async #load(model: ModelConfig, slot: string, options: LoadOptions): Promise<LoadResult> {
    const { executable } = await checkRunnable(this.config, model);
    await this.#clearSlot(slot, options.replace ?? false);
    // Refuses a load that does not fit (DoesNotFitError) before anything is spawned, unless forced.
    const placement = await checkPlacement(this.#place, model, slot, { force: options.force });
    const timed = {
      ...options,
      timeoutMs: options.timeoutMs ?? placement.timeout_ms,
      expectedReadyMs: options.expectedReadyMs ?? placement.expected_ready_ms,
    };
    const picked = (options.port ?? model.port ?? this.config.ports.gpu[slot]) === undefined;
    for (let attempt = 1; ; attempt++) {
      const port = await this.#ports.reserve(slot, model, options.port);
      try {
        const loaded = await spawnAndWait(this.#loadContext, model, slot, executable, port, timed);
        await learnFromLoad(this.#place, model, slot, loaded.entry.pid, loaded.readyMs);
        return { ...loaded, placement };
      } catch (error) {
        // Another process (the CLI beside the server, say) took the free port we picked between our
        // check and the server's bind: pick again, once. A port the user chose is not second-guessed.
        const lostRace = error instanceof LoadFailedError && error.exitCode !== undefined && !(await isPortFree(port));
        if (!picked || attempt > 1 || !lostRace) throw error;
      } finally {
        await this.#ports.release(port);
      }
    }
  }

  async #clearSlot(slot: string, replace: boolean): Promise<void> {
    const overlapping = (await this.registry.verifyAll()).filter((v) => slotsOverlap(v.slot, slot));
    for (const held of overlapping) {
      if (isGone(held.probe.state)) {
        await this.registry.unregister(held.slot, { pid: held.entry.pid, event: "pruned", reason: held.probe.reason });
      } else if (replace) {
        await this.#unload(held.slot, { reason: `replaced by a load in slot ${slot}` });
      } else {
        throw new SlotInUseError(slot, { slot: held.slot, pid: held.entry.pid, model_id: held.entry.model_id });
      }
    }
  }

  /** An unload for a kill decided earlier: refused when the slot no longer holds that PID. */
  async #unloadPid(slot: string, pid: number, options: UnloadOptions): Promise<KillOutcome> {
    return this.#exclusive(slot, async () => {
      const held = await this.registry.get(slot);
      if (held?.pid !== pid) throw slotMoved(slot, pid, held?.pid);
      return (await unloadSlot(this.#unloadContext, slot, options)).killed;
    });
  }

  async #unload(slot: string, options: UnloadOptions): Promise<UnloadResult> {
    return (await unloadSlot(this.#unloadContext, slot, options)).result;
  }
}

/**
 * Opens a home for controlling llama-server processes: loads the configuration and the registry.
 * @example
 * import { createController } from "@corral/core"
 * const controller = await createController({ home: "/var/lib/corral" })
 * await controller.recover()
 * await controller.load("qwen-7b", { gpu: 0 })
 */
export async function createController(options: ControllerOptions = {}): Promise<Controller> {
  const registry = options.registry ?? createRegistry({ home: options.home, probe: options.probe, now: options.now });
  // Refused before anything is read or written: in a home others can write, they choose what corral opens.
  ensureSafeHome(registry.paths.home);
  const config = options.config ?? (await loadConfig({ home: registry.paths.home, file: options.configFile }));
  if (config.history?.max_bytes) registry.history.setMaxBytes(config.history.max_bytes);
  return new Controller({
    registry,
    config,
    now: options.now,
    env: options.env,
    gpuQuery: options.gpuQuery,
    hooks: options.hooks,
  });
}
