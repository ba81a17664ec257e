import { type CorralConfig, findModel, loadConfig } from "../config/load.ts";
import { learnPeaks, type PlaceContext, roomFor } from "../placement/check.ts";
import type { RoomCandidate, RoomPlan } from "../placement/room.ts";
import { homeModelDefaults } from "../placement/scanned-defaults.ts";
import type { Orphan } from "../process/orphans.ts";
import type { ProcessProbe } from "../process/types.ts";
import { createUsageSampler } from "../process/usage.ts";
import { createRegistry, type Registry, type VerifiedEntry } from "../registry/registry.ts";
import type { CleanupResult, KillOptions, KillOutcome, KillPlan, KillSelector, KillTarget } from "../registry/types.ts";
import { createGpuQuery, type GpuSnapshot, queryGpus } from "../server/gpu.ts";
import { gpusView } from "../server/gpu-view.ts";
import type { GpusView } from "../server/views.ts";
import { slotKey } from "../slots.ts";
import type { HistoryReadOptions } from "../store/history.ts";
import type { HistoryEvent, ProcessEntry } from "../store/schema.ts";
import { ensureSafeHome } from "../store/secure-fs.ts";
import { type AdoptOptions, adoptOrphan } from "./adopt.ts";
import { ConfigCell } from "./config-cell.ts";
import { controllerContexts } from "./controller-contexts.ts";
import { killTargets, slotMoved } from "./kill.ts";
import type { ControllerHooks } from "./load.ts";
import { loadInSlot, requireGpu, type SlotLoadContext, slotOf, switchInSlot } from "./load-slot.ts";
import { followSlotLog, slotLogFile, slotLogs } from "./logs.ts";
import { modelViews } from "./model-views.ts";
import { assertPortAllowed } from "./port-choice.ts";
import { recover } from "./recover.ts";
import { SlotQueue } from "./slot-queue.ts";
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
import { unloadSlot } from "./unload.ts";

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
  readonly #queue = new SlotQueue();
  readonly #usage = createUsageSampler();
  readonly #place: PlaceContext;
  readonly #slots: SlotLoadContext;
  /** the one place the current configuration is held: every reader goes through `config` */
  readonly #config: ConfigCell;

  constructor(init: {
    registry: Registry;
    config: CorralConfig;
    now?: () => number;
    env?: Readonly<Record<string, string | undefined>>;
    gpuQuery?: () => Promise<GpuSnapshot | undefined>;
    hooks?: ControllerHooks;
  }) {
    this.registry = init.registry;
    this.#config = new ConfigCell(init.config, (next) => {
      if (next.history?.max_bytes) this.registry.history.setMaxBytes(next.history.max_bytes);
    });
    this.probe = init.registry.probe;
    this.now = init.now ?? Date.now;
    // Status and the watcher share one nvidia-smi run per second; unload polls uncached.
    this.gpuQuery = init.gpuQuery ?? createGpuQuery();
    ({ place: this.#place, slots: this.#slots } = controllerContexts({
      registry: this.registry,
      config: () => this.#config.current,
      now: this.now,
      env: init.env ?? process.env,
      hooks: init.hooks ?? {},
      gpuFresh: init.gpuQuery ?? (() => queryGpus()),
    }));
  }

  /**
   * The configuration in force now. A reload (`reloadConfig`) swaps it whole; read it anew for each
   * decision rather than keeping a copy.
   */
  get config(): CorralConfig {
    return this.#config.current;
  }

  /**
   * Puts a new, already validated configuration in force at once, whole (nothing half-applied),
   * and tells the listeners (the supervisor, the gateway). Running servers are not touched: see
   * `reloadConfig`, which also marks the servers whose model changed.
   * @example
   * controller.replaceConfig(await loadConfig({ home: controller.paths.home }))
   */
  replaceConfig(next: CorralConfig): void {
    this.#config.replace(next);
  }

  /**
   * Hears every {@link Controller.replaceConfig}.
   * @returns a function that unsubscribes
   * @example
   * const off = controller.onConfigChange((next) => console.log(next.webhooks))
   */
  onConfigChange(listener: (next: CorralConfig, previous: CorralConfig) => void): () => void {
    return this.#config.onChange(listener);
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
  models(): Promise<ModelView[]> {
    return modelViews({ config: this.config, registry: this.registry, facts: this.#place.facts });
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
    const gpu = requireGpu(model, options.gpu);
    if (options.port !== undefined) assertPortAllowed(this.config, options.port);
    const slot = await slotOf(this.#place, model, gpu);
    return this.#queue.run(slot, () => loadInSlot(this.#slots, model, slot, options));
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
    return this.#queue.run(key, async () => (await unloadSlot(this.#slots.unload, key, options)).result);
  }

  /**
   * The slot a load of `modelId` would use: its configured GPU set, or for `gpu: auto` the one
   * placement picks now (the same choice `load` makes). The gateway asks it before making room.
   * @example
   * await controller.slotFor("qwen-7b") // "2"
   */
  async slotFor(modelId: string): Promise<string> {
    const model = findModel(this.config, modelId);
    return slotOf(this.#place, model, requireGpu(model, undefined));
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
    return this.#queue.run(key, () => switchInSlot(this.#slots, key, model, options));
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

  /** An unload for a kill decided earlier: refused when the slot no longer holds that PID. */
  async #unloadPid(slot: string, pid: number, options: UnloadOptions): Promise<KillOutcome> {
    return this.#queue.run(slot, async () => {
      const held = await this.registry.get(slot);
      if (held?.pid !== pid) throw slotMoved(slot, pid, held?.pid);
      return (await unloadSlot(this.#slots.unload, slot, options)).killed;
    });
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
  const home = registry.paths.home;
  const config =
    options.config ?? (await loadConfig({ home, file: options.configFile, modelDefaults: homeModelDefaults(home) }));
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
