import { readFile } from "node:fs/promises";
import { withFileLock } from "../store/lock.ts";
import { writePrivateFileAtomic } from "../store/secure-fs.ts";

/** One port a load in some process has chosen and not yet given back. */
interface Reservation {
  readonly port: number;
  readonly pid: number;
  readonly slot: string;
  readonly at: number;
}

/** Options of {@link PortReservations}. */
export interface PortReservationsOptions {
  /** `<home>/ports.json` */
  readonly file: string;
  /** a reservation older than this is stale whoever holds it @default 3600000 */
  readonly maxAgeMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * Ports chosen by loads in every process of one home (the CLI beside the server, four CLIs at
 * once): a load chooses its port under a lock shared by those processes and records it here before
 * it spawns, so no other process hands out that port until the load has registered (or failed). A
 * reservation of a process that is gone, or an old one, no longer counts.
 * @example
 * const port = await reservations.reserve("2", (taken) => pickFreePort(range, { exclude: taken }))
 * try { await spawnAndRegister(port) } finally { await reservations.release(port) }
 */
export class PortReservations {
  readonly file: string;
  readonly #maxAgeMs: number;
  readonly #now: () => number;

  constructor(options: PortReservationsOptions) {
    this.file = options.file;
    this.#maxAgeMs = options.maxAgeMs ?? 3_600_000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Runs `choose` with the ports other loads hold, under the lock, and records what it chose.
   * Where the home cannot be written (a full disk), the choice is made without the record: the
   * load then fails at its log file with the typed error that explains it.
   */
  async reserve(slot: string, choose: (taken: ReadonlySet<number>) => Promise<number>): Promise<number> {
    let chosen: { port: number } | undefined;
    try {
      return await withFileLock(`${this.file}.lock`, async () => {
        const live = (await this.#read()).filter((r) => this.#live(r));
        chosen = { port: await choose(new Set(live.map((r) => r.port))) };
        await this.#write([...live, { port: chosen.port, pid: process.pid, slot, at: this.#now() }]);
        return chosen.port;
      });
    } catch (error) {
      if (!isFileSystemError(error)) throw error;
      return chosen ? chosen.port : choose(new Set());
    }
  }

  /** Gives back a port this process reserved. */
  release(port: number): Promise<void> {
    return withFileLock(`${this.file}.lock`, async () => {
      const all = await this.#read();
      const kept = all.filter((r) => this.#live(r) && !(r.port === port && r.pid === process.pid));
      if (kept.length !== all.length) await this.#write(kept);
    });
  }

  #live(r: Reservation): boolean {
    if (this.#now() - r.at > this.#maxAgeMs) return false;
    try {
      process.kill(r.pid, 0);
      return true;
    } catch (error) {
      // EPERM: alive, another user's; ESRCH: gone.
      return (error as NodeJS.ErrnoException).code === "EPERM";
    }
  }

  async #read(): Promise<Reservation[]> {
    try {
      const parsed: unknown = JSON.parse(await readFile(this.file, "utf8"));
      return Array.isArray(parsed)
        ? parsed.filter((r): r is Reservation => typeof r?.port === "number" && typeof r?.pid === "number")
        : [];
    } catch {
      return [];
    }
  }

  async #write(reservations: readonly Reservation[]): Promise<void> {
    writePrivateFileAtomic(this.file, `${JSON.stringify(reservations)}\n`);
  }
}

/** A write the home's file system refused (full, read-only, over quota), not a choice that failed. */
function isFileSystemError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOSPC" || code === "EROFS" || code === "EDQUOT" || code === "EACCES" || code === "EPERM";
}
