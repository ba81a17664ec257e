/**
 * Turns the API's JSON into the small view models the page renders. Lenient on purpose:
 * it accepts a bare array or one wrapped in an object, a slot-keyed record (the original
 * controller's `processes` shape) and flat entries, so a field the API adds or renames
 * degrades to "—" instead of a blank page.
 */

/** One row of the processes table. */
export interface ProcessRow {
  readonly slot: string;
  readonly model: string;
  readonly gpus: string;
  readonly port: number | undefined;
  readonly pid: number | undefined;
  /** what the registry says ("loading", "running" …), or the OS verdict where the process is gone */
  readonly status: string;
  /** why, where the API said */
  readonly reason: string | undefined;
  /** `/health` state: "ok", "loading", "error", "unreachable" */
  readonly health: string | undefined;
  readonly uptimeMs: number | undefined;
  readonly cpuPercent: number | undefined;
  readonly rssBytes: number | undefined;
  readonly gpuMib: number | undefined;
}

/** One orphaned llama-server with the evidence the API gathered. */
export interface OrphanView {
  readonly pid: number;
  readonly user: string | undefined;
  readonly command: readonly string[] | string | undefined;
  readonly model: string | undefined;
  readonly port: number | undefined;
  /** "ours", "likely-ours", "foreign" … */
  readonly verdict: string;
  readonly reasons: readonly string[];
}

/** One GPU card. */
export interface GpuView {
  readonly index: number;
  readonly name: string;
  readonly usedMib: number | undefined;
  readonly totalMib: number | undefined;
  /** tracked slots on this GPU, where the API says */
  readonly slots: readonly string[] | undefined;
}

/** A configured model for the load and switch forms. */
export interface ModelOption {
  readonly id: string;
  readonly name: string;
  readonly gpu: string | undefined;
  readonly port: number | undefined;
  readonly loadedIn: readonly string[];
}

/** One line of the history timeline. */
export interface HistoryItem {
  readonly time: string | undefined;
  readonly event: string;
  readonly slot: string | undefined;
  readonly pid: number | undefined;
  readonly model: string | undefined;
  readonly from: string | undefined;
  readonly to: string | undefined;
  readonly reason: string | undefined;
}

type Rec = Record<string, unknown>;

const rec = (x: unknown): Rec | undefined =>
  x !== null && typeof x === "object" && !Array.isArray(x) ? (x as Rec) : undefined;
const str = (x: unknown): string | undefined =>
  typeof x === "string" ? x : typeof x === "number" ? String(x) : undefined;
const num = (x: unknown): number | undefined => (typeof x === "number" && Number.isFinite(x) ? x : undefined);
const first = <T>(read: (x: unknown) => T | undefined, ...xs: unknown[]): T | undefined => {
  for (const x of xs) {
    const v = read(x);
    if (v !== undefined) return v;
  }
  return undefined;
};

/**
 * The items of a list response: `[…]`, `{ <key>: […] }`, or `{ <key>: { "<id>": {…} } }`
 * (each record item gets its id as `_key`).
 * @example
 * listOf({ processes: { "0": { pid: 1 } } }, "processes") // [{ pid: 1, _key: "0" }]
 */
export function listOf(json: unknown, key: string): Rec[] {
  const body = Array.isArray(json) ? json : rec(json)?.[key];
  if (Array.isArray(body)) return body.map(rec).filter((x): x is Rec => x !== undefined);
  const byKey = rec(body);
  if (!byKey) return [];
  return Object.entries(byKey).flatMap(([k, v]) => {
    const item = rec(v);
    return item ? [{ ...item, _key: k }] : [];
  });
}

/**
 * Rows of `GET /api/v1/processes` (core's `ProcessStatus`: `{ slot, entry, state, health, usage … }`,
 * or flat registry entries), sorted by slot.
 * @example
 * toProcessRows({ processes: [{ slot: "0", entry: { pid: 7, model_id: "m", gpu_id: 0, port: 8081, status: "running" } }] })
 */
export function toProcessRows(json: unknown): ProcessRow[] {
  return listOf(json, "processes")
    .map(toProcessRow)
    .sort((a, b) => a.slot.localeCompare(b.slot, undefined, { numeric: true }));
}

function toProcessRow(item: Rec): ProcessRow {
  const entry = rec(item.entry) ?? item;
  const usage = rec(item.usage) ?? {};
  const health = rec(item.health);
  const state = str(item.state);
  const gone = state === "exited" || state === "pid-reused";
  return {
    slot: first(str, item.slot, item._key, entry.gpu_id) ?? "?",
    model: first(str, entry.model_id, entry.model_name) ?? "?",
    gpus: first(str, entry.gpu_id, item.slot) ?? "?",
    port: num(entry.port),
    pid: num(entry.pid),
    status: (gone ? state : first(str, entry.status, state)) ?? "unknown",
    reason: first(str, item.state_reason, entry.status_reason),
    health: first(str, health?.state, typeof item.health === "string" ? item.health : undefined),
    uptimeMs: first(num, item.uptime_ms),
    cpuPercent: first(num, usage.cpu_percent, item.cpu_percent),
    rssBytes: first(num, usage.rss_bytes, item.rss_bytes),
    gpuMib: first(num, usage.gpu_memory_mib, item.gpu_memory_mib),
  };
}

/**
 * Orphans of `GET /api/v1/orphans`, with their evidence.
 * @example
 * toOrphans({ orphans: [{ pid: 99, verdict: "ours", reasons: ["marker matches"] }] })
 */
export function toOrphans(json: unknown): OrphanView[] {
  return listOf(json, "orphans").flatMap((o) => {
    const info = rec(o.process) ?? {};
    const pid = first(num, o.pid, info.pid);
    if (pid === undefined) return [];
    const command = [o.command_line, o.cmdline, info.cmdline, o.command].find(
      (c): c is string[] | string =>
        typeof c === "string" || (Array.isArray(c) && c.every((a) => typeof a === "string")),
    );
    const reasons = Array.isArray(o.reasons)
      ? o.reasons.map(String)
      : first(str, o.reason) !== undefined
        ? [String(o.reason)]
        : [];
    return [
      {
        pid,
        user: first(str, o.user, info.user, o.uid, info.uid),
        command,
        model: first(str, o.model_id, o.model, o.model_path),
        port: first(num, o.port),
        verdict: first(str, o.verdict) ?? "unknown",
        reasons,
      },
    ];
  });
}

/**
 * GPU cards of `GET /api/v1/gpus`; `undefined` where the machine has no GPU figures
 * (`[]`, `{ available: false }` or a snapshot with no GPUs).
 * @example
 * toGpus({ gpus: [{ index: 0, name: "H100", memory_used_mib: 1024, memory_total_mib: 81559 }] })
 */
export function toGpus(json: unknown): GpuView[] | undefined {
  if (rec(json)?.available === false) return undefined;
  const gpus = listOf(json, "gpus").flatMap((g, i) => {
    const index = first(num, g.index, g.id, g.gpu_id) ?? i;
    return [
      {
        index,
        name: first(str, g.name) ?? `GPU ${index}`,
        usedMib: first(num, g.memory_used_mib, g.used_memory_mib, g.memory_used),
        totalMib: first(num, g.memory_total_mib, g.total_memory_mib, g.memory_total),
        slots: Array.isArray(g.slots) ? g.slots.map(String) : undefined,
      },
    ];
  });
  return gpus.length > 0 ? gpus : undefined;
}

/**
 * Configured models of `GET /api/v1/models` (objects, or bare ids as the original sometimes gave).
 * @example
 * toModels({ models: [{ id: "qwen", name: "Qwen 7B", loaded_in: ["0"] }] })
 */
export function toModels(json: unknown): ModelOption[] {
  const raw = Array.isArray(json) ? json : rec(json)?.models;
  const items = Array.isArray(raw) ? raw.map((m) => (typeof m === "string" ? { id: m } : m)) : listOf(json, "models");
  return items.flatMap((item) => {
    const m = rec(item);
    const id = m && first(str, m.id, m.model_id, m._key);
    if (!m || id === undefined) return [];
    const loaded = Array.isArray(m.loaded_in) ? m.loaded_in.map(String) : [];
    return [
      {
        id,
        name: first(str, m.name, m.model_name) ?? id,
        gpu: first(str, m.gpu),
        port: first(num, m.port),
        loadedIn: loaded,
      },
    ];
  });
}

/**
 * History events of `GET /api/v1/history`, newest first.
 * @example
 * toHistory({ events: [{ time: "2026-11-26T12:00:00Z", event: "registered", slot: "0" }] })
 */
export function toHistory(json: unknown): HistoryItem[] {
  const items = listOf(json, rec(json)?.history !== undefined ? "history" : "events").map((e) => ({
    time: first(str, e.time),
    event: first(str, e.event, e.type) ?? "event",
    slot: first(str, e.slot),
    pid: first(num, e.pid),
    model: first(str, e.model_id),
    from: first(str, e.from),
    to: first(str, e.to),
    reason: first(str, e.reason),
  }));
  return items.sort((a, b) => (b.time ?? "").localeCompare(a.time ?? ""));
}

/**
 * The lines of `GET /api/v1/logs` (`{ logs: [...] }`, a follow frame `{ lines: [...] }`, or plain text).
 * @example
 * toLogLines({ logs: ["a", "b"], total_lines: 2 }) // ["a", "b"]
 */
export function toLogLines(json: unknown): string[] {
  const body = rec(json);
  const value =
    Array.isArray(json) || typeof json === "string" ? json : (body?.logs ?? body?.lines ?? body?.log ?? body?.content);
  if (Array.isArray(value)) return value.map(String);
  return typeof value === "string" && value !== "" ? value.split(/\r?\n/) : [];
}
