import { join } from "node:path";
import type { CorralConfig, ModelConfig } from "../config/load.ts";
import { PortInUseError, PortNotAllowedError } from "../errors.ts";
import type { Registry } from "../registry/registry.ts";
import { assertPortFree, pickFreePort } from "../server/ports.ts";
import { PortReservations } from "./port-reservations.ts";

/**
 * The ports a load may ask for: any port of `ports.range`, a per-GPU port of `ports.gpu`, or a
 * model's own configured `port`. Anything else (22, say) is refused before anything is spawned.
 * @throws PortNotAllowedError
 * @example
 * assertPortAllowed(config, 8085) // in the default range 8081-8099: fine
 */
export function assertPortAllowed(config: CorralConfig, port: number): void {
  if (isPortAllowed(config, port)) return;
  const [low, high] = config.ports.range;
  const outside = [...namedPorts(config)].filter((p) => p < low || p > high).sort((a, b) => a - b);
  throw new PortNotAllowedError(port, config.ports.range, outside);
}

/**
 * Whether the configuration allows a load on this port (see {@link assertPortAllowed}).
 * @example
 * isPortAllowed(config, 22) // false
 */
export function isPortAllowed(config: CorralConfig, port: number): boolean {
  const [low, high] = config.ports.range;
  return (port >= low && port <= high) || namedPorts(config).has(port);
}

function namedPorts(config: CorralConfig): Set<number> {
  return new Set([...Object.values(config.ports.gpu), ...config.models.flatMap((m) => (m.port ? [m.port] : []))]);
}

/**
 * Chooses a port for each load and holds it until the load has registered: two slots loading at
 * once never pick the same port, in one controller (choices are made one at a time) or in several
 * processes (each choice is made under a lock they share and recorded in `<home>/ports.json`
 * before the spawn). A port from the range is never one the per-GPU map (`ports.gpu`) or a
 * model's own `port` names: that port is its slot's, even before its slot loads.
 * @example
 * const ports = new PortChoice({ registry, config }); const port = await ports.reserve("0", model); ports.release(port)
 */
export class PortChoice {
  readonly #registry: Pick<Registry, "list">;
  /** read on each choice: a configuration reload changes the range and the named ports at once */
  readonly #ctx: { readonly config: CorralConfig };
  readonly #shared: PortReservations;
  /** ports chosen by loads in flight here, not yet registered */
  readonly #reserved = new Set<number>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(ctx: { readonly registry: Pick<Registry, "list" | "paths">; readonly config: CorralConfig }) {
    this.#registry = ctx.registry;
    this.#ctx = ctx;
    this.#shared = new PortReservations({ file: join(ctx.registry.paths.home, "ports.json") });
  }

  /**
   * The requested port (checked free), else the model's, else the slot's configured one, else the
   * lowest free port of the range; held until {@link PortChoice.release}.
   * @throws PortInUseError naming the holder; NoFreePortError when the range is full
   */
  reserve(slot: string, model: ModelConfig, requested: number | undefined): Promise<number> {
    const run = this.#queue.then(async () => {
      const port = await this.#shared.reserve(slot, (elsewhere) => this.#choose(slot, model, requested, elsewhere));
      this.#reserved.add(port);
      return port;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Lets go of a reserved port (the load registered it, or failed). */
  async release(port: number): Promise<void> {
    this.#reserved.delete(port);
    await this.#shared.release(port).catch(() => undefined);
  }

  async #choose(
    slot: string,
    model: ModelConfig,
    requested: number | undefined,
    elsewhere: ReadonlySet<number>,
  ): Promise<number> {
    const config = this.#ctx.config;
    const entries = await this.#registry.list();
    const taken = new Map(entries.map(({ slot: s, entry }) => [entry.port, { s, entry }]));
    const wanted = requested ?? model.port ?? config.ports.gpu[slot];
    if (wanted !== undefined) {
      const holder = taken.get(wanted);
      if (holder)
        throw new PortInUseError(wanted, holder.entry.pid, `corral slot ${holder.s}, ${holder.entry.model_id}`);
      if (this.#reserved.has(wanted) || elsewhere.has(wanted)) {
        throw new PortInUseError(wanted, undefined, "a load in progress");
      }
      await assertPortFree(wanted, config.host);
      return wanted;
    }
    const exclude = new Set([...taken.keys(), ...this.#reserved, ...elsewhere, ...namedPorts(config)]);
    return pickFreePort(config.ports.range, { exclude, host: config.host });
  }
}
