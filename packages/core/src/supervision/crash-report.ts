import type { ProcessStatus } from "../lifecycle/types.ts";
import { type ExitStatus, exitStatusOf } from "../server/exits.ts";
import { tailFile } from "../server/logs.ts";
import type { CrashReport } from "../store/schema.ts";

/** The last log lines a report keeps, and how long each may be. */
const LOG_LINES = 50;
const LINE_CHARS = 1000;

/** One llama-server `/slots` entry as a report keeps it: the state, without prompts or sampling settings. */
export type SlotState = NonNullable<CrashReport["slots"]>["slots"][number];

interface Seen {
  readonly pid: number;
  usage?: NonNullable<CrashReport["usage"]>;
  uptimeMs?: number;
  lastSeenAt?: string;
  slots?: NonNullable<CrashReport["slots"]>;
}

/**
 * What the supervisor last saw of each live server, kept until the server is gone, so a crash
 * report can say what it looked like just before: CPU, RSS and GPU memory, uptime, `/slots`.
 * Holds one record per tracked slot, nothing more.
 * @example
 * const witness = new CrashWitness(); witness.observe(statuses); witness.sawSlots("0", 4242, rawSlots)
 */
export class CrashWitness {
  readonly #seen = new Map<string, Seen>();

  /** Records each running row's figures; forgets slots no longer tracked. */
  observe(rows: readonly ProcessStatus[]): void {
    const slots = new Set(rows.map((r) => r.slot));
    for (const slot of this.#seen.keys()) if (!slots.has(slot)) this.#seen.delete(slot);
    for (const row of rows) {
      if (row.state !== "running") continue;
      const seen = this.#for(row.slot, row.entry.pid);
      seen.lastSeenAt = row.checked_at;
      if (row.uptime_ms !== undefined) seen.uptimeMs = row.uptime_ms;
      if (row.usage) seen.usage = { ...row.usage, at: row.checked_at };
    }
  }

  /** Records a server's `/slots` answer (as the wedge check reads it each tick). */
  sawSlots(slot: string, pid: number, raw: unknown, at: string): void {
    if (!Array.isArray(raw)) return;
    this.#for(slot, pid).slots = { at, slots: raw.slice(0, 256).map(slotState) };
  }

  /** What was seen of this PID in this slot, and forgets it. */
  take(slot: string, pid: number): Omit<Seen, "pid"> {
    const seen = this.#seen.get(slot);
    this.#seen.delete(slot);
    return seen?.pid === pid ? seen : {};
  }

  #for(slot: string, pid: number): Seen {
    let seen = this.#seen.get(slot);
    if (seen?.pid !== pid) {
      seen = { pid };
      this.#seen.set(slot, seen);
    }
    return seen;
  }
}

function int(value: unknown): number | undefined {
  return typeof value === "number" && Number.isInteger(value) ? value : undefined;
}

/**
 * The parts of one `/slots` entry worth keeping (llama-server's shape changed across versions:
 * `n_decoded` sits in `next_token` in newer ones).
 * @example
 * slotState({ id: 0, is_processing: true, n_ctx: 4096, next_token: { n_decoded: 12 } }) // { id: 0, is_processing: true, n_ctx: 4096, n_decoded: 12 }
 */
export function slotState(raw: unknown): SlotState {
  const s = (raw && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
  const next = Array.isArray(s.next_token) ? s.next_token[0] : s.next_token;
  const decoded = int((next as { n_decoded?: unknown } | undefined)?.n_decoded) ?? int(s.n_decoded);
  const out: { -readonly [K in keyof SlotState]: SlotState[K] } = { is_processing: s.is_processing === true };
  const id = int(s.id);
  const nCtx = int(s.n_ctx);
  const task = int(s.id_task);
  if (id !== undefined) out.id = id;
  if (nCtx !== undefined) out.n_ctx = nCtx;
  if (decoded !== undefined) out.n_decoded = decoded;
  if (task !== undefined) out.id_task = task;
  return out;
}

/** What {@link buildCrashReport} needs. */
export interface CrashFacts {
  readonly status: Pick<ProcessStatus, "slot" | "entry">;
  readonly reason: string;
  readonly detectedAt: number;
  readonly seen: ReturnType<CrashWitness["take"]>;
  readonly restart: CrashReport["restart"];
  /** @default exitStatusOf(pid, instance_id) */
  readonly exit?: ExitStatus;
}

/**
 * One crash report: how the server ended (the exit code where this process spawned it, else
 * "unknown" and why), its last 50 log lines, what the supervisor last saw of it and the restart decision.
 * @example
 * const report = await buildCrashReport({ status, reason, detectedAt: Date.now(), seen: witness.take(slot, pid), restart })
 */
export async function buildCrashReport(facts: CrashFacts): Promise<CrashReport> {
  const { slot, entry } = facts.status;
  const exit = facts.exit ?? (await exitStatusOf(entry.pid, entry.instance_id));
  const logTail = entry.log_file ? await tailFile(entry.log_file, LOG_LINES).catch(() => []) : [];
  const { seen } = facts;
  return {
    slot,
    pid: entry.pid,
    model_id: entry.model_id,
    reason: facts.reason,
    detected_at: new Date(facts.detectedAt).toISOString(),
    started_at: entry.started_at,
    ...(seen.uptimeMs !== undefined ? { uptime_ms: seen.uptimeMs } : {}),
    ...(seen.lastSeenAt ? { last_seen_at: seen.lastSeenAt } : {}),
    exit: { code: exit.code, signal: exit.signal, known: exit.known, ...(exit.note ? { note: exit.note } : {}) },
    ...(seen.usage ? { usage: seen.usage } : {}),
    ...(seen.slots ? { slots: seen.slots } : {}),
    ...(entry.log_file ? { log_file: entry.log_file } : {}),
    log_tail: logTail.map((line) => (line.length > LINE_CHARS ? `${line.slice(0, LINE_CHARS - 1)}…` : line)),
    restart: facts.restart,
  };
}

/**
 * The one-line summary a crash report's history event carries.
 * @example
 * crashSummary(report) // "exit code 134 after 2h 3m; restart attempt 1 of 5 in 1000 ms"
 */
export function crashSummary(report: CrashReport): string {
  const how = !report.exit.known
    ? "exit status unknown"
    : report.exit.signal
      ? `signal ${report.exit.signal}`
      : `exit code ${report.exit.code}`;
  const up = report.uptime_ms === undefined ? "" : ` after ${Math.round(report.uptime_ms / 1000)} s up`;
  return `${how}${up}; ${report.restart.reason}`;
}
