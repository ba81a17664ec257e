import { Database, type Statement } from "bun:sqlite";
import { closeSync, constants, lstatSync } from "node:fs";
import { join } from "node:path";
import { UnsafePathError } from "../errors.ts";
import { assertRegularFile, effectiveUid, openNoFollowSync } from "../store/secure-fs.ts";

/** One process at one supervisor tick. */
export interface MetricSample {
  readonly slot: string;
  readonly pid: number;
  readonly model_id: string;
  readonly cpu_percent?: number | undefined;
  readonly rss_bytes?: number | undefined;
  /** on all the process's GPUs together */
  readonly gpu_memory_mib?: number | undefined;
  readonly requests_per_s?: number | undefined;
  readonly tokens_per_second?: number | undefined;
  readonly restarts?: number | undefined;
}

/** One process's memory on one GPU at one tick (the per-GPU charts). */
export interface GpuSample {
  readonly gpu: number;
  readonly pid: number;
  /** the slot tracking the PID; undefined for any other program */
  readonly slot?: string | undefined;
  readonly mib: number;
}

/** One bucket of a slot's history (averages over the bucket; `restarts` is its largest). */
export interface UsageRow {
  readonly t: number;
  readonly cpu_percent: number | null;
  readonly rss_bytes: number | null;
  readonly gpu_memory_mib: number | null;
  readonly requests_per_s: number | null;
  readonly tokens_per_second: number | null;
  readonly restarts: number | null;
}

/** One bucket of one process on one GPU. */
export interface GpuUsageRow {
  readonly gpu: number;
  readonly t: number;
  readonly pid: number;
  readonly slot: string | null;
  readonly mib: number;
}

/** Options of {@link openMetricsStore}. */
export interface MetricsStoreOptions {
  /** the corral home; the database is `<home>/metrics.db` */
  readonly home: string;
  /** days of samples kept @default 30 */
  readonly retentionDays?: number;
  /** samples at full resolution are kept this long, then only their per-minute averages @default 86400000 (a day) */
  readonly rawKeepMs?: number;
  /** how often old rows are deleted @default 600000 */
  readonly pruneEveryMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** A range query: `[since, until)` in buckets of `stepMs`. */
export interface UsageQuery {
  readonly since: number;
  /** @default now */
  readonly until?: number;
  readonly stepMs: number;
}

const MINUTE = 60_000;
const DAY = 86_400_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS samples (slot TEXT NOT NULL, t INTEGER NOT NULL, pid INTEGER NOT NULL, model_id TEXT NOT NULL,
  cpu REAL, rss REAL, gpu REAL, req REAL, tps REAL, restarts INTEGER, PRIMARY KEY (slot, t)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS minutes (slot TEXT NOT NULL, t INTEGER NOT NULL, pid INTEGER NOT NULL, model_id TEXT NOT NULL,
  cpu REAL, rss REAL, gpu REAL, req REAL, tps REAL, restarts INTEGER, PRIMARY KEY (slot, t)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gpu_samples (t INTEGER NOT NULL, gpu INTEGER NOT NULL, pid INTEGER NOT NULL, slot TEXT,
  mib REAL NOT NULL, PRIMARY KEY (t, gpu, pid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gpu_minutes (t INTEGER NOT NULL, gpu INTEGER NOT NULL, pid INTEGER NOT NULL, slot TEXT,
  mib REAL NOT NULL, PRIMARY KEY (t, gpu, pid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
`;

const COLUMNS = "slot, t, pid, model_id, cpu, rss, gpu, req, tps, restarts";

/**
 * The supervisor's samples in `<home>/metrics.db` (SQLite, WAL): one row per process per tick,
 * rolled up into per-minute averages as each minute ends, full resolution kept a day and the
 * minutes `retentionDays`. A query whose step is a minute or more reads the minutes (plus the
 * minute under way), so a week's chart reads ~10,000 rows per process, not ~120,000.
 * @example
 * const metrics = openMetricsStore({ home: "/var/lib/corral" })
 * metrics.insertTick(Date.now(), [{ slot: "0", pid: 4242, model_id: "qwen", cpu_percent: 3, rss_bytes: 8e7 }])
 * metrics.usage("0", { since: Date.now() - 3_600_000, stepMs: 10_000 })
 */
export class MetricsStore {
  readonly file: string;
  readonly retentionDays: number;
  readonly #db: Database;
  readonly #now: () => number;
  readonly #rawKeepMs: number;
  readonly #pruneEveryMs: number;
  readonly #insert: Statement;
  readonly #insertGpu: Statement;
  /** minutes before this epoch ms are rolled up */
  #rolledTo: number;
  #prunedAt = 0;
  /** every slot with rows, so rollups and deletes walk the (slot, t) key instead of scanning */
  readonly #slots: Set<string>;
  /** slots with raw rows not yet rolled up */
  readonly #pending: Set<string>;

  constructor(db: Database, file: string, options: MetricsStoreOptions) {
    this.#db = db;
    this.file = file;
    this.retentionDays = options.retentionDays ?? 30;
    this.#now = options.now ?? Date.now;
    this.#rawKeepMs = options.rawKeepMs ?? DAY;
    this.#pruneEveryMs = options.pruneEveryMs ?? 600_000;
    db.exec(SCHEMA);
    this.#insert = db.prepare(`INSERT OR REPLACE INTO samples (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.#insertGpu = db.prepare("INSERT OR REPLACE INTO gpu_samples (t, gpu, pid, slot, mib) VALUES (?, ?, ?, ?, ?)");
    const stored = db.query("SELECT value FROM meta WHERE key = 'rolled_to'").get() as { value: number } | null;
    this.#rolledTo = stored?.value ?? Math.floor(this.#now() / MINUTE) * MINUTE;
    const known = db.query("SELECT DISTINCT slot FROM samples UNION SELECT DISTINCT slot FROM minutes").all() as {
      slot: string;
    }[];
    this.#slots = new Set(known.map((r) => r.slot));
    this.#pending = new Set(this.#slots);
  }

  /**
   * Writes one tick's samples in one transaction; rolls up the minutes that ended and, every
   * `pruneEveryMs`, deletes rows past their keep.
   * @example
   * metrics.insertTick(Date.now(), samples, gpuSamples)
   */
  insertTick(t: number, samples: readonly MetricSample[], gpus: readonly GpuSample[] = []): void {
    const at = Math.round(t);
    this.#db.transaction(() => {
      for (const s of samples) {
        this.#slots.add(s.slot);
        this.#insert.run(
          s.slot,
          at,
          s.pid,
          s.model_id,
          s.cpu_percent ?? null,
          s.rss_bytes ?? null,
          s.gpu_memory_mib ?? null,
          s.requests_per_s ?? null,
          s.tokens_per_second ?? null,
          s.restarts ?? null,
        );
      }
      for (const g of gpus) this.#insertGpu.run(at, g.gpu, g.pid, g.slot ?? null, g.mib);
      this.#rollUp(Math.floor(at / MINUTE) * MINUTE);
      for (const s of samples) this.#pending.add(s.slot);
      if (at - this.#prunedAt >= this.#pruneEveryMs) this.#prune(at);
    })();
  }

  /** Averages every whole minute in [rolledTo, upTo) into the minute tables. */
  #rollUp(upTo: number): void {
    if (upTo <= this.#rolledTo) return;
    const from = this.#rolledTo;
    const minutes = this.#db.query(
      `INSERT OR REPLACE INTO minutes (${COLUMNS}) SELECT slot, (t / ${MINUTE}) * ${MINUTE}, max(pid), max(model_id),
       avg(cpu), avg(rss), avg(gpu), avg(req), avg(tps), max(restarts) FROM samples WHERE slot = ? AND t >= ? AND t < ?
       GROUP BY t / ${MINUTE}`,
    );
    for (const slot of this.#pending) minutes.run(slot, from, upTo);
    this.#pending.clear();
    this.#db
      .query(
        `INSERT OR REPLACE INTO gpu_minutes (t, gpu, pid, slot, mib) SELECT (t / ${MINUTE}) * ${MINUTE}, gpu, pid, max(slot),
         avg(mib) FROM gpu_samples WHERE t >= ? AND t < ? GROUP BY t / ${MINUTE}, gpu, pid`,
      )
      .run(from, upTo);
    this.#rolledTo = upTo;
    this.#db.query("INSERT OR REPLACE INTO meta (key, value) VALUES ('rolled_to', ?)").run(upTo);
  }

  #prune(now: number): void {
    this.#prunedAt = now;
    const rawBefore = Math.min(now - this.#rawKeepMs, this.#rolledTo);
    const keptBefore = now - this.retentionDays * DAY;
    const raw = this.#db.query("DELETE FROM samples WHERE slot = ? AND t < ?");
    const minutes = this.#db.query("DELETE FROM minutes WHERE slot = ? AND t < ?");
    for (const slot of this.#slots) {
      raw.run(slot, rawBefore);
      minutes.run(slot, keptBefore);
    }
    this.#db.query("DELETE FROM gpu_samples WHERE t < ?").run(rawBefore);
    this.#db.query("DELETE FROM gpu_minutes WHERE t < ?").run(keptBefore);
  }

  /** Where a query switches from minutes to raw rows: raw rows from here on. */
  #boundary(stepMs: number, now: number): number {
    return stepMs >= MINUTE ? this.#rolledTo : Math.min(this.#rolledTo, now - this.#rawKeepMs);
  }

  /**
   * One slot's samples in buckets of `stepMs`, oldest first; buckets without samples are left out.
   * @example
   * metrics.usage("0", { since: Date.now() - 7 * 86_400_000, stepMs: 600_000 }).length // ≤ 1008
   */
  usage(slot: string, query: UsageQuery): UsageRow[] {
    const now = this.#now();
    const until = query.until ?? now + 1;
    const step = Math.max(1, Math.round(query.stepMs));
    const boundary = this.#boundary(step, now);
    const cols = "t, cpu, rss, gpu, req, tps, restarts";
    return this.#db
      .query(
        `SELECT (t / ${step}) * ${step} AS t, avg(cpu) AS cpu_percent, avg(rss) AS rss_bytes, avg(gpu) AS gpu_memory_mib,
         avg(req) AS requests_per_s, avg(tps) AS tokens_per_second, max(restarts) AS restarts FROM (
           SELECT ${cols} FROM minutes WHERE slot = ?1 AND t >= ?2 AND t < min(?3, ?4)
           UNION ALL SELECT ${cols} FROM samples WHERE slot = ?1 AND t >= max(?2, ?4) AND t < ?3
         ) GROUP BY t / ${step} ORDER BY 1`,
      )
      .all(slot, query.since, until, boundary) as UsageRow[];
  }

  /**
   * Every process's memory on every GPU in buckets of `stepMs`, ordered by GPU then time.
   * @example
   * metrics.gpuUsage({ since: Date.now() - 86_400_000, stepMs: 300_000 })
   */
  gpuUsage(query: UsageQuery): GpuUsageRow[] {
    const now = this.#now();
    const until = query.until ?? now + 1;
    const step = Math.max(1, Math.round(query.stepMs));
    const boundary = this.#boundary(step, now);
    return this.#db
      .query(
        `SELECT gpu, (t / ${step}) * ${step} AS t, pid, max(slot) AS slot, avg(mib) AS mib FROM (
           SELECT t, gpu, pid, slot, mib FROM gpu_minutes WHERE t >= ?1 AND t < min(?2, ?3)
           UNION ALL SELECT t, gpu, pid, slot, mib FROM gpu_samples WHERE t >= max(?1, ?3) AND t < ?2
         ) GROUP BY gpu, t / ${step}, pid ORDER BY gpu, 2, pid`,
      )
      .all(query.since, until, boundary) as GpuUsageRow[];
  }

  /**
   * Rows held, per table (for the bench and tests).
   * @example
   * metrics.counts() // { samples: 1234, minutes: 100, gpu_samples: 0, gpu_minutes: 0 }
   */
  counts(): Record<"samples" | "minutes" | "gpu_samples" | "gpu_minutes", number> {
    const count = (table: string) => (this.#db.query(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return {
      samples: count("samples"),
      minutes: count("minutes"),
      gpu_samples: count("gpu_samples"),
      gpu_minutes: count("gpu_minutes"),
    };
  }

  /**
   * Writes the WAL back into the database file (for a size figure) and closes it.
   * @example
   * metrics.close()
   */
  close(): void {
    try {
      this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } finally {
      this.#db.close();
    }
  }
}

/**
 * Opens (creating 0600) `<home>/metrics.db`. Refuses a home that is a symlink, and a database,
 * WAL or shared-memory file that is a symlink or not a plain file of ours.
 * @example
 * const metrics = openMetricsStore({ home: paths.home, retentionDays: config.metrics.retention_days })
 */
export function openMetricsStore(options: MetricsStoreOptions): MetricsStore {
  const home = options.home;
  const info = lstatSync(home);
  if (info.isSymbolicLink() || !info.isDirectory()) {
    throw new UnsafePathError(home, "is not a plain folder", "corral keeps metrics.db only in a real home folder");
  }
  const file = join(home, "metrics.db");
  // Created here, 0600 and never through a link, before SQLite opens it by name; SQLite gives the
  // WAL and shared-memory files the database file's mode.
  const fd = openNoFollowSync(file, constants.O_RDWR | constants.O_CREAT);
  try {
    assertRegularFile(lstatSync(file), file, [effectiveUid()]);
  } finally {
    closeSync(fd);
  }
  for (const extra of [`${file}-wal`, `${file}-shm`]) {
    const seen = lstatSync(extra, { throwIfNoEntry: false });
    if (seen) assertRegularFile(seen, extra, [effectiveUid()]);
  }
  const db = new Database(file, { create: false, readwrite: true, strict: true });
  try {
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 2000;");
    return new MetricsStore(db, file, options);
  } catch (error) {
    db.close();
    throw error;
  }
}
