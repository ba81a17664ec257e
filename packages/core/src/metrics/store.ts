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
  /** or a function read at each pruning, so a reloaded configuration applies without a restart */
  readonly retentionDays?: number | (() => number);
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
const TEN_MINUTES = 600_000;
const DAY = 86_400_000;

const PROCESS_TABLE = `(slot TEXT NOT NULL, t INTEGER NOT NULL, pid INTEGER NOT NULL, model_id TEXT NOT NULL,
  cpu REAL, rss REAL, gpu REAL, req REAL, tps REAL, restarts INTEGER, PRIMARY KEY (slot, t)) WITHOUT ROWID`;
const GPU_TABLE = `(t INTEGER NOT NULL, gpu INTEGER NOT NULL, pid INTEGER NOT NULL, slot TEXT,
  mib REAL NOT NULL, PRIMARY KEY (t, gpu, pid)) WITHOUT ROWID`;
const SCHEMA = [
  ...["samples", "minutes", "tens"].map((name) => `CREATE TABLE IF NOT EXISTS ${name} ${PROCESS_TABLE};`),
  ...["gpu_samples", "gpu_minutes", "gpu_tens"].map((name) => `CREATE TABLE IF NOT EXISTS ${name} ${GPU_TABLE};`),
  "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);",
].join("\n");

const COLUMNS = "slot, t, pid, model_id, cpu, rss, gpu, req, tps, restarts";

/** The tables of one resolution: raw ticks, minutes, ten minutes. */
interface Level {
  readonly table: string;
  readonly gpuTable: string;
  /** width of one row, ms (0: a tick) */
  readonly res: number;
}
const LEVELS: readonly Level[] = [
  { table: "samples", gpuTable: "gpu_samples", res: 0 },
  { table: "minutes", gpuTable: "gpu_minutes", res: MINUTE },
  { table: "tens", gpuTable: "gpu_tens", res: TEN_MINUTES },
];

/**
 * The supervisor's samples in `<home>/metrics.db` (SQLite, WAL): one row per process per tick,
 * rolled up into per-minute averages as each minute ends and per-ten-minute averages as each ten
 * minutes end; full resolution kept a day, the averages `retentionDays`. A query reads the
 * coarsest rows no wider than its step (plus finer rows for the part not rolled up yet), so a
 * week's chart reads ~1,000 rows per process, not ~120,000.
 * @example
 * const metrics = openMetricsStore({ home: "/var/lib/corral" })
 * metrics.insertTick(Date.now(), [{ slot: "0", pid: 4242, model_id: "qwen", cpu_percent: 3, rss_bytes: 8e7 }])
 * metrics.usage("0", { since: Date.now() - 3_600_000, stepMs: 10_000 })
 */
export class MetricsStore {
  readonly file: string;
  readonly #retentionDays: number | (() => number);
  readonly #db: Database;
  readonly #now: () => number;
  readonly #rawKeepMs: number;
  readonly #pruneEveryMs: number;
  readonly #insert: Statement;
  readonly #insertGpu: Statement;
  /** per level above raw: rows before this epoch ms are rolled up into it */
  readonly #rolledTo: number[];
  #prunedAt = 0;
  /** every slot with rows, so rollups and deletes walk the (slot, t) key instead of scanning */
  readonly #slots: Set<string>;
  /** per level above raw: slots with finer rows not yet rolled up into it */
  readonly #pending: Set<string>[];

  constructor(db: Database, file: string, options: MetricsStoreOptions) {
    this.#db = db;
    this.file = file;
    this.#retentionDays = options.retentionDays ?? 30;
    this.#now = options.now ?? Date.now;
    this.#rawKeepMs = options.rawKeepMs ?? DAY;
    this.#pruneEveryMs = options.pruneEveryMs ?? 600_000;
    db.exec(SCHEMA);
    this.#insert = db.prepare(`INSERT OR REPLACE INTO samples (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.#insertGpu = db.prepare("INSERT OR REPLACE INTO gpu_samples (t, gpu, pid, slot, mib) VALUES (?, ?, ?, ?, ?)");
    const start = this.#now();
    this.#rolledTo = LEVELS.map(({ table, res }) => {
      if (res === 0) return Number.POSITIVE_INFINITY;
      const stored = db.query("SELECT value FROM meta WHERE key = ?").get(`rolled_to.${table}`) as {
        value: number;
      } | null;
      return stored?.value ?? Math.floor(start / res) * res;
    });
    const known = db.query("SELECT DISTINCT slot FROM samples UNION SELECT DISTINCT slot FROM minutes").all() as {
      slot: string;
    }[];
    this.#slots = new Set(known.map((r) => r.slot));
    this.#pending = LEVELS.map(() => new Set(this.#slots));
  }

  /**
   * Writes one tick's samples in one transaction; rolls up the minutes (and ten minutes) that
   * ended and, every `pruneEveryMs`, deletes rows past their keep.
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
      for (let level = 1; level < LEVELS.length; level++) this.#rollUp(level, at);
      for (const s of samples) this.#pending[1]?.add(s.slot);
      if (at - this.#prunedAt >= this.#pruneEveryMs) this.#prune(at);
    })();
  }

  /** Days the roll-ups are kept (the option, or what its function says now). */
  get retentionDays(): number {
    const days = this.#retentionDays;
    return typeof days === "function" ? days() : days;
  }

  /** Averages every whole period of `level` that ended before `at` from the level below. */
  #rollUp(level: number, at: number): void {
    const { table, gpuTable, res } = LEVELS[level] as Level;
    const below = LEVELS[level - 1] as Level;
    const upTo = Math.floor(at / res) * res;
    const from = this.#rolledTo[level] as number;
    if (upTo <= from) return;
    const pending = this.#pending[level] as Set<string>;
    const rows = this.#db.query(
      `INSERT OR REPLACE INTO ${table} (${COLUMNS}) SELECT slot, (t / ${res}) * ${res}, max(pid), max(model_id),
       avg(cpu), avg(rss), avg(gpu), avg(req), avg(tps), max(restarts) FROM ${below.table}
       WHERE slot = ? AND t >= ? AND t < ? GROUP BY t / ${res}`,
    );
    for (const slot of pending) {
      rows.run(slot, from, upTo);
      this.#pending[level + 1]?.add(slot);
    }
    pending.clear();
    this.#db
      .query(
        `INSERT OR REPLACE INTO ${gpuTable} (t, gpu, pid, slot, mib) SELECT (t / ${res}) * ${res}, gpu, pid, max(slot),
         avg(mib) FROM ${below.gpuTable} WHERE t >= ? AND t < ? GROUP BY t / ${res}, gpu, pid`,
      )
      .run(from, upTo);
    this.#rolledTo[level] = upTo;
    this.#db.query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(`rolled_to.${table}`, upTo);
  }

  #prune(now: number): void {
    this.#prunedAt = now;
    const rawBefore = Math.min(now - this.#rawKeepMs, this.#rolledTo[1] as number);
    const keptBefore = now - this.retentionDays * DAY;
    for (const [index, { table, gpuTable }] of LEVELS.entries()) {
      const before = index === 0 ? rawBefore : Math.min(keptBefore, this.#rolledTo[index + 1] ?? keptBefore);
      const rows = this.#db.query(`DELETE FROM ${table} WHERE slot = ? AND t < ?`);
      for (const slot of this.#slots) rows.run(slot, before);
      this.#db.query(`DELETE FROM ${gpuTable} WHERE t < ?`).run(before);
    }
  }

  /**
   * The parts a query reads, coarsest first: each level's table over the range it alone
   * covers. Rows no wider than the step; raw rows only where they are still kept (`fine` steps
   * under a minute) or not rolled up yet.
   */
  #parts(stepMs: number, since: number, until: number): { table: number; from: number; to: number }[] {
    const now = this.#now();
    let top = 0;
    for (let level = 1; level < LEVELS.length; level++) if ((LEVELS[level] as Level).res <= stepMs) top = level;
    const parts: { table: number; from: number; to: number }[] = [];
    let from = since;
    if (top === 0) {
      // Full resolution where it is kept, the minutes before that.
      const rawFrom = Math.min(this.#rolledTo[1] as number, now - this.#rawKeepMs);
      if (from < rawFrom) parts.push({ table: 1, from, to: Math.min(rawFrom, until) });
      from = Math.max(from, rawFrom);
      if (from < until) parts.push({ table: 0, from, to: until });
      return parts;
    }
    for (let level = top; level >= 0; level--) {
      const to = level === 0 ? until : Math.min(until, this.#rolledTo[level] as number);
      if (from < to) parts.push({ table: level, from, to });
      from = Math.max(from, to);
    }
    return parts;
  }

  /**
   * One slot's samples in buckets of `stepMs`, oldest first; buckets without samples are left out.
   * @example
   * metrics.usage("0", { since: Date.now() - 7 * 86_400_000, stepMs: 1_800_000 }).length // ≤ 336
   */
  usage(slot: string, query: UsageQuery): UsageRow[] {
    const until = query.until ?? this.#now() + 1;
    const step = Math.max(1, Math.round(query.stepMs));
    const parts = this.#parts(step, query.since, until);
    if (parts.length === 0) return [];
    const cols = "t, cpu, rss, gpu, req, tps, restarts";
    const union = parts
      .map((p) => `SELECT ${cols} FROM ${(LEVELS[p.table] as Level).table} WHERE slot = ? AND t >= ? AND t < ?`)
      .join(" UNION ALL ");
    return this.#db
      .query(
        `SELECT (t / ${step}) * ${step} AS t, avg(cpu) AS cpu_percent, avg(rss) AS rss_bytes, avg(gpu) AS gpu_memory_mib,
         avg(req) AS requests_per_s, avg(tps) AS tokens_per_second, max(restarts) AS restarts FROM (${union})
         GROUP BY t / ${step} ORDER BY 1`,
      )
      .all(...parts.flatMap((p) => [slot, p.from, p.to])) as UsageRow[];
  }

  /**
   * Every process's memory on every GPU in buckets of `stepMs`, ordered by GPU then time.
   * @example
   * metrics.gpuUsage({ since: Date.now() - 86_400_000, stepMs: 300_000 })
   */
  gpuUsage(query: UsageQuery): GpuUsageRow[] {
    const until = query.until ?? this.#now() + 1;
    const step = Math.max(1, Math.round(query.stepMs));
    const parts = this.#parts(step, query.since, until);
    if (parts.length === 0) return [];
    const union = parts
      .map((p) => `SELECT t, gpu, pid, slot, mib FROM ${(LEVELS[p.table] as Level).gpuTable} WHERE t >= ? AND t < ?`)
      .join(" UNION ALL ");
    return this.#db
      .query(
        `SELECT gpu, (t / ${step}) * ${step} AS t, pid, max(slot) AS slot, avg(mib) AS mib FROM (${union})
         GROUP BY gpu, t / ${step}, pid ORDER BY gpu, 2, pid`,
      )
      .all(...parts.flatMap((p) => [p.from, p.to])) as GpuUsageRow[];
  }

  /**
   * Rows held, per table (for the bench and tests).
   * @example
   * metrics.counts() // { samples: 1234, minutes: 100, tens: 10, gpu_samples: 0, gpu_minutes: 0, gpu_tens: 0 }
   */
  counts(): Record<"samples" | "minutes" | "tens" | "gpu_samples" | "gpu_minutes" | "gpu_tens", number> {
    const count = (table: string) => (this.#db.query(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return {
      samples: count("samples"),
      minutes: count("minutes"),
      tens: count("tens"),
      gpu_samples: count("gpu_samples"),
      gpu_minutes: count("gpu_minutes"),
      gpu_tens: count("gpu_tens"),
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
 * const metrics = openMetricsStore({ home: paths.home, retentionDays: () => controller.config.metrics.retention_days })
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
