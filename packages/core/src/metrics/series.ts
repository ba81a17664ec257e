import { InvalidInputError } from "../errors.ts";
import type { HistoryEvent } from "../store/schema.ts";
import type { GpuUsageRow, UsageRow } from "./store.ts";
import type { GpuUsage, UsageMark, UsageSeries } from "./views.ts";

/** Ranges a chart asks for by name. */
export const USAGE_RANGES = { hour: 3_600_000, day: 86_400_000, week: 7 * 86_400_000 } as const;

/**
 * A bucket width that gives a chart about `points` buckets over `[since, until)`: at least
 * `minMs` (the tick), rounded up to a whole second, from a minute up to whole minutes and from ten
 * minutes up to whole ten minutes (the widths of the rolled-up rows, so each bucket reads whole rows).
 * @default points = 360, minMs = 1000
 * @example
 * chooseStep(Date.now() - 7 * 86_400_000, Date.now()) // 1800000 (30 min)
 */
export function chooseStep(since: number, until: number, points = 360, minMs = 1000): number {
  const raw = Math.max(minMs, (until - since) / points);
  const unit = raw >= 600_000 ? 600_000 : raw >= 60_000 ? 60_000 : 1000;
  return Math.ceil(raw / unit) * unit;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "90s", "1h", "7d" → ms; undefined for anything else. */
function duration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text);
  return m ? Number(m[1]) * (UNITS[m[2] ?? ""] ?? 0) : undefined;
}

/**
 * The range a usage request asks for. `since` is a range name (`hour`, `day`, `week`), a
 * duration back from now (`90m`, `7d`), epoch ms or an ISO time; `step` is ms or a duration.
 * Throws InvalidInputError naming the field.
 * @default since = "hour", step = chooseStep(since, now)
 * @example
 * usageRange({ since: "week" }, Date.now()) // { since: now - 604800000, until: now, stepMs: 1800000 }
 */
export function usageRange(
  query: { readonly since?: string | undefined; readonly step?: string | undefined },
  now: number,
): { since: number; until: number; stepMs: number } {
  const text = (query.since ?? "hour").trim();
  const named = USAGE_RANGES[text as keyof typeof USAGE_RANGES];
  const back = named ?? duration(text);
  const since = back !== undefined ? now - back : /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(since) || since > now) {
    throw new InvalidInputError(
      "since",
      "a range (hour, day, week), a duration such as 90m, epoch ms or an ISO time in the past",
    );
  }
  if (query.step === undefined || query.step === "") return { since, until: now, stepMs: chooseStep(since, now) };
  const step = /^\d+$/.test(query.step) ? Number(query.step) : duration(query.step);
  if (step === undefined || !(step >= 1000)) {
    throw new InvalidInputError("step", "a bucket width of at least 1000 ms, as ms or a duration such as 10s");
  }
  if ((now - since) / step > 10_000)
    throw new InvalidInputError("step", "more than 10000 buckets: choose a wider step");
  return { since, until: now, stepMs: Math.round(step) };
}

/**
 * What in a slot's history deserves a mark on its chart: loads, restarts, crashes, unloads.
 * @example
 * usageMarks([{ time: "2026-12-01T10:00:00.000Z", event: "registered", slot: "0" }], "0", 0, Date.now())
 * // [{ t: 1764583200000, kind: "load", event: "registered" }]
 */
export function usageMarks(events: readonly HistoryEvent[], slot: string, since: number, until: number): UsageMark[] {
  const found: (UsageMark & { pid?: number | undefined })[] = [];
  for (const e of events) {
    if (e.slot !== slot) continue;
    const t = Date.parse(e.time);
    if (!(t >= since && t < until)) continue;
    const kind = markKind(e);
    if (kind) found.push({ t, kind, event: e.event, pid: e.pid, ...(e.reason ? { reason: e.reason } : {}) });
  }
  found.sort((a, b) => a.t - b.t);
  // One crash writes several events (the status change, then the removal or give-up): one mark each.
  const marks: UsageMark[] = [];
  let lastCrash: (typeof found)[number] | undefined;
  for (const { pid, ...mark } of found) {
    if (mark.kind === "crash") {
      const same = lastCrash && (pid !== undefined ? lastCrash.pid === pid : mark.t - lastCrash.t < 10_000);
      lastCrash = { ...mark, pid };
      if (same) continue;
    }
    marks.push(mark);
  }
  return marks;
}

function markKind(e: HistoryEvent): UsageMark["kind"] | undefined {
  switch (e.event) {
    case "registered":
      return "load";
    case "restarted":
      return "restart";
    case "crashed":
    case "crash":
    case "crash-report":
    case "give-up":
      return "crash";
    case "unregistered":
    case "killed":
      return "unload";
    case "status":
      return e.to === "exited" ? "crash" : undefined;
    default:
      return undefined;
  }
}

/**
 * The API's body for one slot: store rows as columns, with the marks.
 * @example
 * usageSeries({ slot: "0", since, until, stepMs, rows: metrics.usage("0", { since, until, stepMs }), marks: [] })
 */
export function usageSeries(input: {
  readonly slot: string;
  readonly since: number;
  readonly until: number;
  readonly stepMs: number;
  readonly rows: readonly UsageRow[];
  readonly marks: readonly UsageMark[];
}): UsageSeries {
  const { rows } = input;
  const round = (v: number | null, digits: number) => (v === null ? null : Number(v.toFixed(digits)));
  return {
    slot: input.slot,
    since: input.since,
    until: input.until,
    step_ms: input.stepMs,
    t: rows.map((r) => r.t),
    cpu_percent: rows.map((r) => round(r.cpu_percent, 2)),
    rss_bytes: rows.map((r) => round(r.rss_bytes, 0)),
    gpu_memory_mib: rows.map((r) => round(r.gpu_memory_mib, 1)),
    requests_per_s: rows.map((r) => round(r.requests_per_s, 3)),
    tokens_per_second: rows.map((r) => round(r.tokens_per_second, 2)),
    restarts: rows.map((r) => r.restarts),
    marks: [...input.marks],
  };
}

/**
 * The API's body for the GPUs: per GPU one time axis and a column per process (a tracked
 * server by its slot, any other program by its PID), null where it held nothing.
 * @example
 * gpuUsageSeries({ since, until, stepMs, rows: metrics.gpuUsage({ since, until, stepMs }) })
 */
export function gpuUsageSeries(input: {
  readonly since: number;
  readonly until: number;
  readonly stepMs: number;
  readonly rows: readonly GpuUsageRow[];
}): GpuUsage {
  const byGpu = new Map<number, GpuUsageRow[]>();
  for (const row of input.rows) {
    const list = byGpu.get(row.gpu);
    if (list) list.push(row);
    else byGpu.set(row.gpu, [row]);
  }
  const gpus = [...byGpu.entries()]
    .sort(([a], [b]) => a - b)
    .map(([index, rows]) => {
      const t = [...new Set(rows.map((r) => r.t))].sort((a, b) => a - b);
      const at = new Map(t.map((v, i) => [v, i]));
      const series = new Map<string, { label: string; slot?: string; pid?: number; mib: (number | null)[] }>();
      for (const r of rows) {
        const key = r.slot !== null ? `slot ${r.slot}` : `pid ${r.pid}`;
        let s = series.get(key);
        if (!s) {
          s = { label: key, ...(r.slot !== null ? { slot: r.slot } : { pid: r.pid }), mib: t.map(() => null) };
          series.set(key, s);
        }
        const i = at.get(r.t) ?? 0;
        s.mib[i] = Math.round(((s.mib[i] ?? 0) + r.mib) * 10) / 10;
      }
      return { index, t, series: [...series.values()] };
    });
  return { since: input.since, until: input.until, step_ms: input.stepMs, gpus };
}
