/**
 * One queue per slot inside this process: a job on a slot starts after the previous one on that
 * slot settles (other processes are kept honest by the store's lock).
 * @example
 * const queue = new SlotQueue(); await queue.run("0", () => unloadSlot(ctx, "0", {}))
 */
export class SlotQueue {
  readonly #busy = new Map<string, Promise<unknown>>();

  /** Runs `job` once every job queued before it on `slot` has settled, whatever their outcome. */
  async run<T>(slot: string, job: () => Promise<T>): Promise<T> {
    const previous = this.#busy.get(slot) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(job);
    this.#busy.set(slot, run);
    try {
      return await run;
    } finally {
      if (this.#busy.get(slot) === run) this.#busy.delete(slot);
    }
  }
}
