import type { CorralConfig, ModelConfig } from "../config/load.ts";
import type { Controller } from "../lifecycle/controller.ts";
import type { ProcessEntry } from "../store/schema.ts";
import { GatewayError } from "./errors.ts";
import { freeMemory, InFlightLoad, makeRoom, type PlacementContext, type Wait } from "./placement.ts";
import { createResolver, type ModelResolver } from "./resolve.ts";
import { ModelState, until } from "./state.ts";
import type { GatewayModelView, Lease, Located } from "./types.ts";
import { modelView, routable } from "./views.ts";

export type { GatewayModelView, Lease, LeaseResult, Located } from "./types.ts";

/** Options of {@link createGateway}. */
export interface GatewayOptions {
  readonly controller: Controller;
  /** @default Date.now */
  readonly now?: () => number;
  /** how often idle models are checked against their ttl @default 1000 */
  readonly sweepMs?: number;
  /** how long the registry view is trusted; changes made in this process refresh it at once @default 1000 */
  readonly viewMs?: number;
  /** how long after a request its last_request_at is written to the registry (writes coalesce) @default 1000 */
  readonly persistMs?: number;
}

interface View {
  readonly at: number;
  readonly byModel: ReadonlyMap<string, Located>;
  readonly all: readonly Located[];
}

interface Ready {
  readonly located: Located;
  readonly readyMs: number | undefined;
}

/** What the decision phase hands to the load that runs outside the lock. */
type Decision = { readonly kind: "load"; readonly slot: string } | Wait;

function baseUrlOf(entry: ProcessEntry, fallbackHost: string): string {
  let host = entry.host ?? fallbackHost;
  if (host === "0.0.0.0" || host === "") host = "127.0.0.1";
  if (host === "::") host = "::1";
  return `http://${host.includes(":") ? `[${host}]` : host}:${entry.port}`;
}

/**
 * Routes requests by model name to loaded llama-servers, loading a model on demand (one load
 * however many requests arrive for it), queueing boundedly, swapping out idle models that hold
 * the slot, evicting the least recently used beyond `gateway.max_loaded` and unloading models
 * idle past their `ttl`. Every decision reads the registry, so a restarted gateway routes to the
 * servers `recover()` reattached, and rebuilds idle clocks from each entry's `last_request_at`.
 * Create it with {@link createGateway}.
 */
export class Gateway {
  readonly controller: Controller;
  #resolver: { readonly models: readonly ModelConfig[]; readonly resolver: ModelResolver } | undefined;
  readonly #offConfig: () => void;
  readonly #now: () => number;
  readonly #sweepMs: number;
  readonly #viewMs: number;
  readonly #persistMs: number;
  readonly #states = new Map<string, ModelState>();
  readonly #persistTimers = new Set<ReturnType<typeof setTimeout>>();
  #view: View | undefined;
  #reading: Promise<View> | undefined;
  #placing: Promise<unknown> = Promise.resolve();
  /** loads under way (spawned or about to be), by model id: their slots count as held, and under max_loaded */
  readonly #loads = new Map<string, InFlightLoad>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #sweeping = false;
  #started = false;
  readonly #unsubscribe: () => void;

  constructor(options: GatewayOptions) {
    this.controller = options.controller;
    // A reload can add the first ttl: the sweep starts then (it stops only with the gateway).
    this.#offConfig = this.controller.onConfigChange(() => {
      if (this.#started) this.start();
    });
    this.#now = options.now ?? Date.now;
    this.#sweepMs = options.sweepMs ?? 1000;
    this.#viewMs = options.viewMs ?? 1000;
    this.#persistMs = options.persistMs ?? 1000;
    // Any change recorded in this process (a load, an unload, a crash the supervisor saw) is seen at once.
    // Events without a slot (audit lines, notes) change no entry: they keep the view.
    this.#unsubscribe = this.controller.registry.subscribe((event) => {
      if (event.slot !== undefined) this.#view = undefined;
    });
  }

  get config(): CorralConfig {
    return this.controller.config;
  }

  /** Names → models of the configuration in force, rebuilt when a reload changed the models. */
  get resolver(): ModelResolver {
    const models = this.config.models;
    if (this.#resolver?.models !== models) this.#resolver = { models, resolver: createResolver(models) };
    return this.#resolver.resolver;
  }

  /** Starts the idle sweep (ttl). @example gateway.start() */
  start(): void {
    this.#started = true;
    // Without any ttl there is nothing to sweep: no timer, no registry reads.
    const anyTtl = this.config.gateway.ttl > 0 || this.config.models.some((m) => (m.ttl ?? 0) > 0);
    if (this.#sweeper || !anyTtl) return;
    this.#sweeper = setInterval(() => void this.sweep(), this.#sweepMs);
    this.#sweeper.unref?.();
  }

  /** Stops the sweep and writes the pending last_request_at times. @example await gateway.stop() */
  async stop(): Promise<void> {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#unsubscribe();
    this.#offConfig();
    this.#started = false;
    for (const timer of this.#persistTimers) clearTimeout(timer);
    this.#persistTimers.clear();
    await this.#persistAll().catch(() => undefined);
  }

  /**
   * A lease on the model `name` resolves to, loading it first if needed. Waits (bounded by
   * `gateway.max_queue` and `gateway.queue_timeout_ms`) for a load, or for a busy model holding
   * the slot to become idle.
   * @throws GatewayError unknown_model 404, queue_full / queue_timeout / swap_refused 503, load_failed 502
   * @example
   * const lease = await gateway.acquire("qwen", { signal: request.signal }); try { … } finally { lease.done() }
   */
  async acquire(name: unknown, options: { readonly signal?: AbortSignal } = {}): Promise<Lease> {
    const model = this.resolver.resolve(name);
    const state = this.#state(model.id);
    if (!state.loading && !state.unloading) {
      const at = (await this.#read()).byModel.get(model.id);
      // Checked again after the await: an unload may have begun meanwhile.
      if (at && routable(at.entry) && !state.unloading) return this.#lease(model, state, at, undefined, undefined);
    }
    const { max_queue: maxQueue, queue_timeout_ms: timeoutMs } = this.config.gateway;
    if (state.waiting >= maxQueue) {
      throw new GatewayError(
        "queue_full",
        `model "${model.id}" already has ${state.waiting} requests waiting (gateway.max_queue is ${maxQueue})`,
        { retryAfterS: 1 },
      );
    }
    const started = this.#now();
    const deadline = started + timeoutMs;
    state.waiting++;
    try {
      const ready = await until(this.#ready(model, state, deadline), deadline, options.signal, () =>
        this.#timedOut(model, timeoutMs),
      );
      return this.#lease(model, state, ready.located, this.#now() - started, ready.readyMs);
    } finally {
      state.waiting--;
      state.settle();
    }
  }

  /**
   * Every configured model with its state, for `GET /v1/models`, `corral ls --models` and the page.
   * @example
   * for (const m of await gateway.models()) console.log(m.id, m.state, m.in_flight)
   */
  async models(): Promise<GatewayModelView[]> {
    const view = await this.#read();
    const now = this.#now();
    return this.config.models.map((model) => {
      const at = view.byModel.get(model.id);
      const state = this.#states.get(model.id);
      const last = at ? this.#lastUsed(at) : state?.lastUsedMs;
      return modelView({ model, state, at, last, ttl: this.#ttlOf(model), now });
    });
  }

  /**
   * Drops the cached view of the registry: the next request reads it afresh.
   * @example
   * gateway.forget()
   */
  forget(): void {
    this.#view = undefined;
  }

  /**
   * One pass of the idle policy: unloads every loaded model idle for its ttl. Runs every
   * `sweepMs` after `start()`; tests call it directly.
   * @returns the ids unloaded
   * @example
   * await gateway.sweep() // ["qwen"]
   */
  async sweep(): Promise<string[]> {
    if (this.#sweeping) return [];
    this.#sweeping = true;
    const unloaded: string[] = [];
    try {
      for (const at of (await this.#read(true)).all) {
        const model = this.config.models.find((m) => m.id === at.entry.model_id);
        const ttl = model ? this.#ttlOf(model) : 0;
        if (ttl === 0 || !routable(at.entry)) continue;
        const state = this.#state(at.entry.model_id);
        if (state.busy || state.loading || state.unloading) continue;
        if (this.#now() - this.#lastUsed(at) < ttl * 1000) continue;
        const done = await this.#placed(async () => {
          // Decided again inside the lock: a request may have arrived while we waited for it.
          if (state.busy || this.#now() - this.#lastUsed(at) < ttl * 1000) return false;
          return this.#unload(at, `gateway: idle for ${ttl} s (ttl)`);
        });
        if (done) unloaded.push(at.entry.model_id);
      }
    } catch {
      // A sweep that fails (registry busy) is retried on the next tick.
    } finally {
      this.#sweeping = false;
    }
    return unloaded;
  }

  #state(id: string): ModelState {
    let state = this.#states.get(id);
    if (!state) {
      state = new ModelState(id);
      this.#states.set(id, state);
    }
    return state;
  }

  #ttlOf(model: ModelConfig): number {
    return model.ttl ?? this.config.gateway.ttl;
  }

  /** The last use: this process's own clock, else the registry's (across restarts), else the start. */
  #lastUsed(at: Located): number {
    const own = this.#states.get(at.entry.model_id)?.lastUsedMs;
    if (own !== undefined) return own;
    const recorded = Date.parse(at.entry.last_request_at ?? at.entry.started_at);
    return Number.isFinite(recorded) ? recorded : this.#now();
  }

  #timedOut(model: ModelConfig, timeoutMs: number): GatewayError {
    return new GatewayError(
      "queue_timeout",
      `model "${model.id}" was not ready within ${timeoutMs} ms (gateway.queue_timeout_ms)`,
      { retryAfterS: Math.max(1, Math.ceil(timeoutMs / 1000)) },
    );
  }

  #lease(
    model: ModelConfig,
    state: ModelState,
    at: Located,
    waitedMs: number | undefined,
    readyMs: number | undefined,
  ): Lease {
    state.inFlight++;
    state.lastUsedMs = this.#now();
    let open = true;
    return {
      model,
      slot: at.slot,
      entry: at.entry,
      baseUrl: baseUrlOf(at.entry, this.config.host),
      waitedMs,
      readyMs,
      done: (result) => {
        if (!open) return;
        open = false;
        state.inFlight--;
        state.served++;
        state.lastUsedMs = this.#now();
        if (result?.tokensPerSecond !== undefined) state.tokensPerSecond = result.tokensPerSecond;
        this.#schedulePersist(state);
        state.settle();
      },
    };
  }

  /** The one load of a model: requests that arrive meanwhile join it (never a second spawn). */
  #ready(model: ModelConfig, state: ModelState, deadline: number): Promise<Ready> {
    if (!state.loading) {
      const run = this.#bringUp(model, state, deadline);
      state.loading = run;
      void run.then(
        () => this.#settleLoad(state, run),
        () => this.#settleLoad(state, run),
      );
    }
    return state.loading as Promise<Ready>;
  }

  #settleLoad(state: ModelState, run: Promise<unknown>): void {
    if (state.loading === run) state.loading = undefined;
  }

  async #bringUp(model: ModelConfig, state: ModelState, deadline: number): Promise<Ready> {
    for (;;) {
      if (state.unloading) await state.unloading.catch(() => undefined);
      const at = (await this.#read(true)).byModel.get(model.id);
      if (at && routable(at.entry) && !state.unloading) return { located: at, readyMs: undefined };
      if (this.#now() >= deadline) throw this.#timedOut(model, this.config.gateway.queue_timeout_ms);
      if (at) {
        // Being loaded by someone else (the CLI): wait for it to come up.
        await Bun.sleep(50);
        continue;
      }
      // Only the decision (swap, evict, reserve the slot) holds the gateway's lock; the load runs outside
      // it, so a cold model on another GPU is placed and loaded meanwhile.
      const decided = await this.#placed(() => this.#decide(model));
      if (decided.kind === "load") return this.#loadReserved(model, state, decided.slot);
      await until(decided.wait, deadline, undefined, () => this.#timedOut(model, this.config.gateway.queue_timeout_ms));
    }
  }

  /**
   * The decision phase, inside the lock: the slot, the room (swap, evict, free memory) and the
   * reservation of the slot for this load. An overlapping load in flight is waited for (its slot is held).
   */
  async #decide(model: ModelConfig): Promise<Decision> {
    if (model.gpu === undefined) {
      throw new GatewayError(
        "load_failed",
        `model "${model.id}" has no gpu in the configuration: the gateway cannot place it`,
      );
    }
    const view = await this.#read(true);
    if (view.byModel.has(model.id)) return { kind: "wait", wait: Promise.resolve() };
    // `gpu: auto` is resolved once here, so the room made and the load agree on the slot.
    const slot = await this.controller.slotFor(model.id).catch((error: unknown) => {
      throw new GatewayError("load_failed", error instanceof Error ? error.message : String(error), { cause: error });
    });
    const context = this.#placementContext();
    const room = (await makeRoom(context, model, slot, view.all)) ?? (await freeMemory(context, model, slot));
    if (room) return room;
    this.#loads.set(model.id, new InFlightLoad(model.id, slot));
    return { kind: "load", slot };
  }

  /** The long part, outside the lock: the reserved slot is released (and its waiters woken) when it ends. */
  async #loadReserved(model: ModelConfig, state: ModelState, slot: string): Promise<Ready> {
    try {
      const result = await this.controller.load(model.id, {
        gpu: slot,
        reason: `gateway: a request for ${model.id}`,
      });
      state.lastUsedMs = this.#now();
      return { located: { slot: result.slot, entry: result.entry }, readyMs: result.readyMs };
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new GatewayError("load_failed", why, { cause: error });
    } finally {
      this.#view = undefined;
      this.#loads.get(model.id)?.finish();
      this.#loads.delete(model.id);
    }
  }

  #placementContext(): PlacementContext {
    return {
      config: this.config,
      stateOf: (id) => this.#state(id),
      lastUsed: (at) => this.#lastUsed(at),
      read: () => this.#read(true).then((v) => v.all),
      loading: () => [...this.#loads.values()],
      unload: (at, reason) => this.#unload(at, reason),
      planRoom: (modelId, slot, candidates) => this.controller.planRoom(modelId, slot, candidates),
    };
  }

  /** Unloads one entry unless its model became busy; true when it was unloaded. */
  async #unload(at: Located, reason: string): Promise<boolean> {
    const state = this.#state(at.entry.model_id);
    if (state.busy) return false;
    const run = this.controller.unload(at.slot, { reason });
    state.unloading = run;
    try {
      await run;
      return true;
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new GatewayError("load_failed", `could not unload ${at.entry.model_id} from slot ${at.slot}: ${why}`, {
        cause: error,
      });
    } finally {
      if (state.unloading === run) state.unloading = undefined;
      this.#view = undefined;
    }
  }

  /**
   * Placement decisions (swap, evict, reserve a slot for a load) and the ttl sweep one at a time, so two
   * cold models never pick the same room. The loads themselves run outside it (see {@link InFlightLoad}).
   */
  #placed<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#placing.then(job, job);
    this.#placing = run.catch(() => undefined);
    return run;
  }

  /** The registry as a map by model id; re-read when older than viewMs, or always with `fresh`. */
  #read(fresh = false): Promise<View> {
    const view = this.#view;
    if (!fresh && view && this.#now() - view.at < this.#viewMs) return Promise.resolve(view);
    this.#reading ??= this.controller.registry
      .list()
      .then((list) => {
        const byModel = new Map<string, Located>();
        for (const located of list)
          if (!byModel.has(located.entry.model_id)) byModel.set(located.entry.model_id, located);
        const next = { at: this.#now(), byModel, all: list };
        this.#view = next;
        return next;
      })
      .finally(() => {
        this.#reading = undefined;
      });
    return this.#reading;
  }

  #schedulePersist(state: ModelState): void {
    if (state.persistPending) return;
    state.persistPending = true;
    const timer = setTimeout(() => {
      this.#persistTimers.delete(timer);
      state.persistPending = false;
      void this.#persist(state).catch(() => undefined);
    }, this.#persistMs);
    timer.unref?.();
    this.#persistTimers.add(timer);
  }

  /** Writes a model's last request time into its registry entry (no history event: it is not a change of state). */
  async #persist(state: ModelState): Promise<void> {
    const at = (await this.#read()).byModel.get(state.id);
    if (!at || state.lastUsedMs === undefined) return;
    const iso = new Date(state.lastUsedMs).toISOString();
    await this.controller.registry.store.update(
      (entries) => {
        const entry = entries[at.slot];
        if (!entry || entry.pid !== at.entry.pid || entry.last_request_at === iso) return false;
        entry.last_request_at = iso;
        return true;
      },
      { changed: (wrote) => wrote },
    );
  }

  async #persistAll(): Promise<void> {
    for (const state of this.#states.values()) {
      if (state.persistPending) {
        state.persistPending = false;
        await this.#persist(state);
      }
    }
  }
}

/**
 * The gateway over a controller's configuration and registry. Call `start()` for the idle sweep.
 * @example
 * const gateway = createGateway({ controller }); gateway.start()
 * const lease = await gateway.acquire("qwen")
 */
export function createGateway(options: GatewayOptions): Gateway {
  return new Gateway(options);
}
