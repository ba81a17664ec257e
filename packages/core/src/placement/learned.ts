import { readFile } from "node:fs/promises";
import { withFileLock } from "../store/lock.ts";
import { writePrivateFileAtomic } from "../store/secure-fs.ts";

/** What one load of a model with one argument set measured. */
export interface LearnedFigure {
  /** peak GPU memory the server held per GPU index (MiB, from nvidia-smi while it ran) */
  readonly peak_mib: Readonly<Record<string, number>>;
  /** spawn → first 200 from /health */
  readonly ready_ms: number;
  readonly measured_at: string;
}

/** Options of {@link LearnedFigures}. */
export interface LearnedFiguresOptions {
  /** the JSON file (`<home>/learned.json`) */
  readonly file: string;
  /** @default Date.now */
  readonly now?: () => number;
}

/** The key of a model + argument set + GPU set: a figure learned with other arguments does not apply. */
export function learnedKey(modelId: string, path: string, args: readonly string[], slot: string): string {
  return JSON.stringify([modelId, path, args, slot]);
}

/**
 * Figures measured at earlier loads, in a small JSON file in the home written like the store
 * writes (unique temp file, fsync, rename) under a lock, so the CLI and the server both add to it.
 * A missing or unreadable file is no figures: they are a hint, never a reason to refuse a load.
 * @example
 * const learned = new LearnedFigures({ file: join(home, "learned.json") })
 * await learned.record(key, { peak_mib: { "0": 5230 }, ready_ms: 8200 })
 * (await learned.get(key))?.ready_ms // 8200
 */
export class LearnedFigures {
  readonly file: string;
  readonly #now: () => number;

  constructor(options: LearnedFiguresOptions) {
    this.file = options.file;
    this.#now = options.now ?? Date.now;
  }

  /** The figure for a key, if an earlier load recorded one. */
  async get(key: string): Promise<LearnedFigure | undefined> {
    return (await this.#read())[key];
  }

  /** Records the figure of a key, replacing the one before: the last load is the truest. */
  async record(key: string, figure: Omit<LearnedFigure, "measured_at">): Promise<void> {
    await withFileLock(`${this.file}.lock`, async () => {
      const all = await this.#read();
      all[key] = { ...figure, measured_at: new Date(this.#now()).toISOString() };
      writePrivateFileAtomic(this.file, `${JSON.stringify(all, null, 1)}\n`);
    });
  }

  /**
   * Raises the peaks of recorded figures where servers, while they run, hold more GPU memory than
   * they did at ready (a long context filling up, a larger batch): the next estimate then uses the
   * true peak. One read of the file for all of them; a write only when some GPU's figure went up. A
   * key no load recorded is left alone.
   * @param seen per key, MiB held now per GPU index
   * @returns the keys whose figure was raised
   * @example
   * await learned.raisePeaks(new Map([[key, { "0": 6100 }]])) // [key]: 5230 MiB at ready, 6100 MiB later
   */
  async raisePeaks(seen: ReadonlyMap<string, Readonly<Record<string, number>>>): Promise<string[]> {
    const higher = (all: Record<string, LearnedFigure>) =>
      [...seen].filter(([key, now]) => {
        const figure = all[key];
        return figure !== undefined && Object.entries(now).some(([gpu, mib]) => mib > (figure.peak_mib[gpu] ?? 0));
      });
    if (higher(await this.#read()).length === 0) return [];
    return withFileLock(`${this.file}.lock`, async () => {
      const all = await this.#read();
      const raised = higher(all);
      for (const [key, now] of raised) {
        const figure = all[key] as LearnedFigure;
        const peak: Record<string, number> = { ...figure.peak_mib };
        for (const [gpu, mib] of Object.entries(now)) peak[gpu] = Math.max(peak[gpu] ?? 0, mib);
        all[key] = { ...figure, peak_mib: peak, measured_at: new Date(this.#now()).toISOString() };
      }
      if (raised.length > 0) writePrivateFileAtomic(this.file, `${JSON.stringify(all, null, 1)}\n`);
      return raised.map(([key]) => key);
    });
  }

  async #read(): Promise<Record<string, LearnedFigure>> {
    try {
      const parsed: unknown = JSON.parse(await readFile(this.file, "utf8"));
      return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
        ? (parsed as Record<string, LearnedFigure>)
        : {};
    } catch {
      return {};
    }
  }
}

/** Margin added to a measured peak before it is trusted for the next load. */
export const LEARNED_MARGIN = 0.1;
/** The load timeout is this many times the last measured load time … */
export const LOAD_TIMEOUT_FACTOR = 4;
/** … but never less than this. */
export const LOAD_TIMEOUT_MIN_MS = 60_000;

/**
 * The load timeout from the last measured load time: `LOAD_TIMEOUT_FACTOR` × it, and at least
 * `LOAD_TIMEOUT_MIN_MS` (or the configured timeout where that is lower); the configured timeout
 * where nothing was measured yet. A 70B model is not killed by a timeout made for a 7B one, and a
 * stuck load of a small one is noticed sooner.
 * @example
 * loadTimeoutFrom({ ready_ms: 20_000, peak_mib: {}, measured_at: "" }, 300_000) // 80000
 */
export function loadTimeoutFrom(figure: LearnedFigure | undefined, configuredMs: number): number {
  if (!figure) return configuredMs;
  const floor = Math.min(LOAD_TIMEOUT_MIN_MS, configuredMs);
  return Math.max(floor, Math.round(figure.ready_ms * LOAD_TIMEOUT_FACTOR));
}
