/**
 * What the gateway knows about one configured model between requests: requests in flight and
 * waiting, how many it served, when the last one finished, the speed of the last one, and the
 * load or unload under way. A model is busy while anything is in flight or waiting for it: busy
 * models are never unloaded, evicted or swapped out.
 */
export class ModelState {
  readonly id: string;
  inFlight = 0;
  /** requests waiting for a load, a swap or a free slot */
  waiting = 0;
  served = 0;
  /** epoch ms the last request finished (or the model was loaded); undefined: unknown since start */
  lastUsedMs: number | undefined;
  /** tokens per second of the last generation, as llama-server timed it */
  tokensPerSecond: number | undefined;
  /** the one load of this model under way: every request for it waits on this (single flight) */
  loading: Promise<unknown> | undefined;
  /** the unload under way: requests for the model wait for it, then load again */
  unloading: Promise<unknown> | undefined;
  /** a last_request_at write is scheduled */
  persistPending = false;
  readonly #idle = new Set<() => void>();

  constructor(id: string) {
    this.id = id;
  }

  get busy(): boolean {
    return this.inFlight > 0 || this.waiting > 0;
  }

  /**
   * Resolves once nothing is in flight or waiting (at once when idle already).
   * @example
   * await state.idle()
   */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.#idle.add(resolve));
  }

  /** Called whenever a count drops: wakes whoever waits for this model to become idle. */
  settle(): void {
    if (this.busy || this.#idle.size === 0) return;
    const waiters = [...this.#idle];
    this.#idle.clear();
    for (const wake of waiters) wake();
  }
}

/**
 * Resolves with `work`, or rejects with `timeout()` at `deadline` (epoch ms) or with the
 * signal's reason when the client goes away, whichever comes first.
 * @example
 * await until(state.idle(), Date.now() + 5000, request.signal, () => new Error("timed out"))
 */
export function until<T>(
  work: Promise<T>,
  deadline: number,
  signal: AbortSignal | undefined,
  timeout: () => Error,
  now: () => number = Date.now,
): Promise<T> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => finish(() => reject(timeout())), Math.max(0, deadline - now()));
    const onAbort = () => finish(() => reject(signal?.reason));
    signal?.addEventListener("abort", onAbort, { once: true });
    const finish = (then: () => void) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      then();
    };
    work.then(
      (value) => finish(() => resolve(value)),
      (error) => finish(() => reject(error)),
    );
  });
}
