import { readdirSync, statSync } from "node:fs";
import { dirname, join, resolve as resolvePath } from "node:path";
import { checkRunnable, findModel, loadConfig, type CorralConfig, type ModelConfig } from "../config/load.ts";
import type { LoadOptions, LoadResult, ModelView, UnloadOptions, UnloadResult } from "./types.ts";
import { InvalidInputError, LoadFailedError, NotOurProcessError, PortInUseError, SlotInUseError } from "../errors.ts";
import { createGpuQuery, queryGpus, waitGpuReleased, type GpuSnapshot } from "../server/gpu.ts";
import { waitReady } from "../server/health.ts";
import { identityOf } from "../process/identity.ts";
import { killTree } from "../process/kill-tree.ts";
import { followFile, tailFile } from "../server/logs.ts";
import { effectiveUid, ensureSafeHome } from "../store/secure-fs.ts";
import { assertPortFree, isPortFree, pickFreePort, waitPortFree } from "../server/ports.ts";
import type { ProcessProbe } from "../process/types.ts";
import { createRegistry, type Registry } from "../registry/registry.ts";
import type { ProcessEntry } from "../store/schema.ts";
import { slotKey, slotsOverlap } from "../slots.ts";
import { spawnServer } from "../server/spawn.ts";
import type { ProcessStatus, RecoveredSlot } from "./types.ts";
import { adoptOrphan, type AdoptOptions } from "./adopt.ts";
import { recover } from "./recover.ts";
import { collectStatus } from "./status.ts";
import { createUsageSampler } from "../process/usage.ts";
import { checkPlacement, chooseSlot, learnFromLoad, type PlaceContext } from "../placement/check.ts";
import { LearnedFigures } from "../placement/learned.ts";

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

/** Points in a load where instrumentation (and crash tests) can step in. */
export interface ControllerHooks {
  /** with the chosen port, right before the server is spawned */
  readonly beforeSpawn?: (port: number) => void | Promise<void>;
  /** right after the server is spawned, before it is registered */
  readonly afterSpawn?: (pid: number) => void | Promise<void>;
}

/**
 * Starts, stops and switches llama-server processes and keeps the registry true to them.
 * Create it with {@link createController}; recovery, status and adoption live beside it.
 */
export class Controller {
  readonly registry: Registry;
  readonly config: CorralConfig;
  readonly probe: ProcessProbe;
  readonly gpuQuery: () => Promise<GpuSnapshot | undefined>;
  readonly now: () => number;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #busy = new Map<string, Promise<unknown>>();
  /** ports chosen by loads in flight here, not yet registered: two slots loading at once must not pick one port */
  readonly #reserved = new Set<number>();
  #portChoice: Promise<unknown> = Promise.resolve();
  readonly #usage = createUsageSampler();
  readonly #hooks: ControllerHooks;
  readonly #gpuFresh: () => Promise<GpuSnapshot | undefined>;
  readonly #place: PlaceContext;

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
    this.config = init.config;
    this.probe = init.registry.probe;
    this.now = init.now ?? Date.now;
    this.#env = init.env ?? process.env;
    // Status and the watcher share one nvidia-smi run per second; unload polls uncached.
    this.gpuQuery = init.gpuQuery ?? createGpuQuery();
    this.#gpuFresh = init.gpuQuery ?? (() => queryGpus());
    this.#place = {
      config: this.config,
      homeId: this.registry.homeId,
      probe: this.probe,
      entries: () => this.registry.list(),
      history: (limit) => this.registry.history.read({ limit }),
      gpuQuery: this.#gpuFresh,
      learned: new LearnedFigures({ file: join(this.registry.paths.home, "learned.json") }),
    };
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
    return this.config.models.map((m) => ({
      id: m.id,
      name: m.name,
      path: m.path,
      gpu: m.gpu,
      port: m.port,
      loaded_in: entries.filter(({ entry }) => entry.model_id === m.id).map(({ slot }) => slot),
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
   * Unloads a slot and loads another model on the same GPUs (and port, unless the model has its own).
   * @example
   * await controller.switch("0", "llama-3-8b")
   */
  switch(slot: string, modelId: string, options: LoadOptions = {}): Promise<LoadResult> {
    const key = slotKey(slot);
    const model = findModel(this.config, modelId);
    return this.#exclusive(key, async () => {
      const old = await this.registry.get(key);
      if (old) await this.#unload(key, { reason: `switching to ${model.id}` });
      const port = options.port ?? model.port ?? old?.port;
      return this.#load(model, key, {
        ...options,
        port,
        reason: options.reason ?? `switched from ${old?.model_id ?? "nothing"}`,
      });
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
  status(): Promise<ProcessStatus[]> {
    return collectStatus(this, { usage: this.#usage });
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
   * The last lines of a slot's log (the live entry's, else the newest log that slot ever had).
   * @default lines = 100
   * @example
   * console.log((await controller.logs("0", 50)).join("\n"))
   */
  async logs(slot: string, lines = 100): Promise<string[]> {
    const file = await this.logFile(slot);
    return file ? tailFile(file, lines, await this.#logOwners(slot, file)) : [];
  }

  /**
   * Calls `onLines` with every new line of a slot's log until `signal` aborts; with `tail`, first
   * with that many lines from before (one read: no line falls between the tail and the follow).
   * @example
   * const ac = new AbortController(); controller.followLogs("0", (l) => console.log(l.join("\n")), ac.signal)
   */
  async followLogs(
    slot: string,
    onLines: (lines: string[]) => void,
    signal?: AbortSignal,
    options: { tail?: number } = {},
  ): Promise<void> {
    const file = await this.logFile(slot);
    if (!file) throw new InvalidInputError("slot", `slot "${slot}" has no log`);
    await followFile(file, onLines, {
      signal,
      backLines: options.tail ?? 0,
      owners: await this.#logOwners(slot, file),
    });
  }

  /**
   * Who may own a slot's log: corral for files in its own logs folder; elsewhere (an adopted
   * server's stdout file) only the user the llama-server runs as, so a path through another
   * user's folders can never lead corral to a file of its own, such as root's /etc/shadow.
   */
  async #logOwners(slot: string, file: string): Promise<Array<number | undefined>> {
    if (dirname(resolvePath(file)) === this.paths.logs) return [effectiveUid()];
    const entry = await this.registry.get(slotKey(slot));
    return [entry?.uid ?? effectiveUid()];
  }

  /**
   * The log file of a slot: the registered one, else the newest `slot-<slot>-*.log` in the logs folder.
   * @example
   * await controller.logFile("0") // "/home/me/.local/state/corral/logs/slot-0-qwen-20261126T120000Z.log"
   */
  async logFile(slot: string): Promise<string | undefined> {
    const key = slotKey(slot);
    const entry = await this.registry.get(key);
    if (entry?.log_file) return entry.log_file;
    const prefix = `slot-${key.replaceAll(",", "_")}-`;
    let names: string[];
    try {
      names = readdirSync(this.paths.logs).filter((n) => n.startsWith(prefix) && n.endsWith(".log"));
    } catch {
      return undefined;
    }
    const newest = names
      .map((n) => ({ file: join(this.paths.logs, n), mtime: statSync(join(this.paths.logs, n)).mtimeMs }))
      .sort((a, b) => b.mtime - a.mtime)[0];
    return newest?.file;
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
    const timed = { ...options, timeoutMs: options.timeoutMs ?? placement.timeout_ms };
    const picked = (options.port ?? model.port ?? this.config.ports.gpu[slot]) === undefined;
    for (let attempt = 1; ; attempt++) {
      const port = await this.#reservePort(slot, model, options.port);
      try {
        const loaded = await this.#spawnAndWait(model, slot, executable, port, timed);
        await learnFromLoad(this.#place, model, slot, loaded.entry.pid, loaded.readyMs);
        return { ...loaded, placement };
      } catch (error) {
        // Another process (the CLI beside the server, say) took the free port we picked between our
        // check and the server's bind: pick again, once. A port the user chose is not second-guessed.
        const lostRace = error instanceof LoadFailedError && error.exitCode !== undefined && !(await isPortFree(port));
        if (!picked || attempt > 1 || !lostRace) throw error;
      } finally {
        this.#reserved.delete(port);
      }
    }
  }

  async #spawnAndWait(
    model: ModelConfig,
    slot: string,
    executable: string,
    port: number,
    options: LoadOptions,
  ): Promise<LoadResult> {
    const host = this.config.host;
    await this.#hooks.beforeSpawn?.(port);
    const spawned = spawnServer({
      model,
      slot,
      executable,
      host,
      port,
      logsDir: this.paths.logs,
      homeId: this.registry.homeId,
      env: this.#env,
      now: this.now(),
    });
    const { pid, argv, logFile, instanceId, exited } = spawned;
    await this.#hooks.afterSpawn?.(pid);
    try {
      await this.registry.register(
        slot,
        {
          pid,
          model_id: model.id,
          model_name: model.name,
          model_path: model.path,
          gpu_id: slot,
          port,
          started_at: new Date(this.now()).toISOString(),
          command_line: argv,
          status: "loading",
          log_file: logFile,
          instance_id: instanceId,
          host,
          restarts: options.restarts ?? 0,
          ...(model.cpu_affinity ? { cpu_affinity: model.cpu_affinity } : {}),
        },
        { reason: options.reason ?? "load requested" },
      );
    } catch (error) {
      // Another controller took the slot between our check and our spawn: ours must not linger.
      await killTree(pid, { force: true, probe: this.probe }).catch(() => undefined);
      throw error;
    }
    const timeoutMs = options.timeoutMs ?? this.config.timeouts.load_ms;
    const outcome = await waitReady({ host, port, timeoutMs, exited });
    if (outcome.ready) {
      const info = await this.probe.get(pid);
      // Re-read the identity: a cpu_affinity wrapper (taskset) has exec'd into llama-server by now.
      const identity = info ? identityOf(info) : {};
      const entry = await this.registry.update(slot, { status: "running", ...identity }, `ready in ${outcome.ms} ms`);
      return { slot, entry, readyMs: outcome.ms };
    }
    if (outcome.reason !== "exited") {
      await killTree(pid, { timeoutMs: this.config.timeouts.stop_ms, probe: this.probe }).catch(() => undefined);
    }
    const logTail = await tailFile(logFile, 20);
    const reason =
      outcome.reason === "exited"
        ? `llama-server exited with code ${outcome.exitCode} while loading`
        : `not ready after ${timeoutMs} ms; the process tree was killed`;
    await this.registry.unregister(slot, { pid, event: "load-failed", reason });
    throw new LoadFailedError({
      slot,
      modelId: model.id,
      reason,
      exitCode: outcome.reason === "exited" ? outcome.exitCode : undefined,
      timedOut: outcome.reason === "timeout",
      logTail,
    });
  }

  async #clearSlot(slot: string, replace: boolean): Promise<void> {
    const overlapping = (await this.registry.verifyAll()).filter((v) => slotsOverlap(v.slot, slot));
    for (const held of overlapping) {
      if (held.probe.state === "exited" || held.probe.state === "pid-reused") {
        await this.registry.unregister(held.slot, { pid: held.entry.pid, event: "pruned", reason: held.probe.reason });
      } else if (replace) {
        await this.#unload(held.slot, { reason: `replaced by a load in slot ${slot}` });
      } else {
        throw new SlotInUseError(slot, { slot: held.slot, pid: held.entry.pid, model_id: held.entry.model_id });
      }
    }
  }

  /** Chooses and reserves a port; choices are made one at a time so two loads never pick the same one. */
  #reservePort(slot: string, model: ModelConfig, requested: number | undefined): Promise<number> {
    const run = this.#portChoice.then(async () => {
      const port = await this.#choosePort(slot, model, requested);
      this.#reserved.add(port);
      return port;
    });
    this.#portChoice = run.catch(() => undefined);
    return run;
  }

  async #choosePort(slot: string, model: ModelConfig, requested: number | undefined): Promise<number> {
    const entries = await this.registry.list();
    const taken = new Map(entries.map(({ slot: s, entry }) => [entry.port, { s, entry }]));
    const wanted = requested ?? model.port ?? this.config.ports.gpu[slot];
    if (wanted !== undefined) {
      const holder = taken.get(wanted);
      if (holder)
        throw new PortInUseError(wanted, holder.entry.pid, `corral slot ${holder.s}, ${holder.entry.model_id}`);
      if (this.#reserved.has(wanted)) throw new PortInUseError(wanted, undefined, "a load in progress");
      await assertPortFree(wanted, this.config.host);
      return wanted;
    }
    const exclude = new Set([...taken.keys(), ...this.#reserved]);
    return pickFreePort(this.config.ports.range, { exclude, host: this.config.host });
  }

  async #unload(slot: string, options: UnloadOptions): Promise<UnloadResult> {
    const reason = options.reason ?? "unload requested";
    const { entry, probe } = await this.registry.verify(slot);
    const base = { slot, pid: entry.pid, model_id: entry.model_id, escalated: false, ms: 0 };
    // Recorded first, so a supervisor (here or in another process) cancels any pending restart.
    await this.registry.record({ event: "unload-requested", slot, pid: entry.pid, model_id: entry.model_id, reason });
    if (probe.state === "exited" || probe.state === "pid-reused") {
      await this.registry.unregister(slot, {
        pid: entry.pid,
        event: "pruned",
        reason: `not signalled: ${probe.reason}`,
      });
      return { ...base, signalled: false, portFreed: true, reason: probe.reason };
    }
    if (probe.state !== "running") throw new NotOurProcessError(entry.pid, probe.reason);
    const killed = await this.registry.kill(slot, {
      force: options.force,
      timeoutMs: options.timeoutMs ?? this.config.timeouts.stop_ms,
      reason,
    });
    const portFreed = await waitPortFree(entry.port, { host: entry.host ?? this.config.host, timeoutMs: 3000 });
    const gpu = await waitGpuReleased(entry.pid, {
      timeoutMs: this.config.gpu_release_wait_ms,
      query: this.#gpuFresh,
    });
    if (gpu.released !== undefined) {
      await this.registry.record({
        event: "gpu-released",
        slot,
        pid: entry.pid,
        model_id: entry.model_id,
        reason: gpu.released ? `GPU memory released after ${gpu.ms} ms` : `GPU memory still held after ${gpu.ms} ms`,
      });
    }
    return {
      ...base,
      signalled: killed.signalled,
      escalated: killed.tree?.escalated ?? false,
      ms: killed.tree?.ms ?? 0,
      portFreed,
      ...(gpu.released !== undefined ? { gpuReleased: gpu.released } : {}),
      reason,
    };
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
