import type { CorralConfig } from "../config/load.ts";

/** Hears a configuration swap: the one now in force and the one it replaced. */
export type ConfigListener = (next: CorralConfig, previous: CorralConfig) => void;

/**
 * The one place a controller holds its configuration: swapped whole, then every listener told.
 * `onSwap` runs after the swap and before the listeners (the controller resizes the history there).
 * @example
 * const cell = new ConfigCell(config); cell.onChange((next) => console.log(next.webhooks)); cell.replace(next)
 */
export class ConfigCell {
  #current: CorralConfig;
  readonly #listeners = new Set<ConfigListener>();
  readonly #onSwap: (next: CorralConfig) => void;

  constructor(initial: CorralConfig, onSwap: (next: CorralConfig) => void = () => {}) {
    this.#current = initial;
    this.#onSwap = onSwap;
  }

  /** The configuration in force now. */
  get current(): CorralConfig {
    return this.#current;
  }

  /** Puts `next` in force and tells every listener; one that throws does not stop the others. */
  replace(next: CorralConfig): void {
    const previous = this.#current;
    this.#current = next;
    this.#onSwap(next);
    for (const listener of this.#listeners) {
      try {
        listener(next, previous);
      } catch {
        // One failing listener must not keep the others on the old configuration.
      }
    }
  }

  /** @returns a function that unsubscribes */
  onChange(listener: ConfigListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
