/** The processes table: one keyed row per slot, updated in place so focus survives live updates. */
import type { ProcessStatus } from "@corral/core/views";
import { h, reconcile } from "./dom.ts";
import { formatBytes, formatMib, formatPercent, formatUptime, NONE } from "./format.ts";

/** What the row buttons do. */
export interface ProcessActions {
  readonly log: (row: ProcessStatus) => void;
  readonly verify: (row: ProcessStatus) => void;
  readonly switchModel: (row: ProcessStatus) => void;
  readonly unload: (row: ProcessStatus) => void;
  readonly forceKill: (row: ProcessStatus) => void;
}

/**
 * What the Status column shows: the OS's verdict where the process is gone (exited, PID reused),
 * else what the registry says ("loading", "running" …).
 * @example
 * shownStatus({ state: "exited", entry: { status: "running", model_id: "tiny" } }) // "exited"
 */
export function shownStatus(row: Pick<StatusLike, "state" | "entry">): string {
  return row.state === "exited" || row.state === "pid-reused" ? row.state : row.entry.status;
}

/**
 * The rows in slot order ("0", "1", "0,1", "2", "10").
 * @example
 * renderProcesses(tbody, bySlot(processes), actions)
 */
export function bySlot<T extends { readonly slot: string }>(rows: readonly T[]): T[] {
  return [...rows].sort((a, b) => a.slot.localeCompare(b.slot, undefined, { numeric: true }));
}

/**
 * Column headers, also the labels the phone layout shows above each value.
 * @example
 * head.replaceChildren(...PROCESS_COLUMNS.map((label) => h("th", { scope: "col" }, label)))
 */
export const PROCESS_COLUMNS = [
  "Slot",
  "Model",
  "GPU(s)",
  "Port",
  "PID",
  "Status",
  "Health",
  "Uptime",
  "CPU",
  "Memory",
  "GPU memory",
  // The CPU sparkline (charts.ts fills it; a click opens the slot's chart).
  "Last hour",
  "Actions",
] as const;

/**
 * Renders the rows into the table body.
 * @example
 * renderProcesses(byId("processes-body", HTMLTableSectionElement), rows, actions)
 */
export function renderProcesses(
  tbody: HTMLTableSectionElement,
  rows: readonly ProcessStatus[],
  actions: ProcessActions,
): void {
  reconcile(
    tbody,
    rows,
    (row) => row.slot,
    (row) => createRow(row, actions),
    (tr, row) => fillRow(tr as HTMLTableRowElement, row),
  );
}

// Buttons read the current row from the element, so a reused row never acts on stale data.
const current = new WeakMap<HTMLElement, ProcessStatus>();

function createRow(row: ProcessStatus, actions: ProcessActions): HTMLTableRowElement {
  const tr = h("tr");
  const button = (label: string, act: (r: ProcessStatus) => void, cls = "") =>
    h(
      "button",
      {
        type: "button",
        class: cls,
        "aria-label": `${label} slot ${row.slot}`,
        onclick: () => act(current.get(tr) ?? row),
      },
      label,
    );
  const cells = PROCESS_COLUMNS.slice(0, -1).map((label, i) =>
    i === 0 ? h("th", { scope: "row", "data-label": label }) : h("td", { "data-label": label }),
  );
  const buttons = h(
    "div",
    { class: "actions" },
    button("Log", actions.log),
    button("Verify", actions.verify),
    button("Switch", actions.switchModel),
    button("Unload", actions.unload),
    button("Force kill", actions.forceKill, "danger"),
  );
  tr.append(...cells, h("td", { "data-label": "Actions", class: "actions-cell" }, buttons));
  return tr;
}

function fillRow(tr: HTMLTableRowElement, row: ProcessStatus): void {
  current.set(tr, row);
  tr.dataset.status = shownStatus(row);
  const { entry, usage } = row;
  const values = [
    row.slot,
    entry.model_id,
    String(entry.gpu_id),
    entry.port,
    entry.pid,
    undefined,
    row.health?.state ?? NONE,
    formatUptime(row.uptime_ms),
    formatPercent(usage?.cpu_percent),
    formatBytes(usage?.rss_bytes),
    formatMib(usage?.gpu_memory_mib),
  ];
  values.forEach((value, i) => {
    const cell = tr.cells[i];
    if (cell && value !== undefined && cell.textContent !== String(value)) cell.textContent = String(value);
  });
  const status = tr.cells[5];
  if (status) fillStatus(status, row);
  tr.cells[6]?.setAttribute("data-health", row.health?.state ?? "none");
}

/**
 * How far a load has come: elapsed since the spawn, against the time the last load of this model
 * with these arguments took (`expected_ready_ms`, which corral records on the loading entry).
 * @example
 * loadingProgress({ entry: { started_at: "…T12:00:00Z", expected_ready_ms: 40000 }, checked_at: "…T12:00:12Z" })
 * // "loading for 12 s of about 40 s expected"
 */
export function loadingProgress(row: {
  readonly entry: { readonly started_at: string; readonly expected_ready_ms?: number };
  readonly checked_at: string;
}): string {
  const elapsed = Math.max(0, Math.round((Date.parse(row.checked_at) - Date.parse(row.entry.started_at)) / 1000));
  const expected = row.entry.expected_ready_ms;
  return expected === undefined
    ? `loading for ${elapsed} s`
    : `loading for ${elapsed} s of about ${Math.max(1, Math.round(expected / 1000))} s expected`;
}

function fillStatus(cell: HTMLTableCellElement, row: ProcessStatus): void {
  const shown = shownStatus(row);
  const reason = shown === "loading" ? loadingProgress(row) : row.state_reason;
  const badge = h("span", { class: `badge status-${shown.replace(/[^a-z-]/gi, "")}` }, shown);
  const showReason = reason && shown !== "running";
  // Stale: it runs with settings a reload changed since, until it is restarted.
  const stale = row.entry.stale
    ? h("span", { class: "badge status-stale", title: row.entry.stale }, "stale")
    : undefined;
  const next = [badge, stale, showReason ? h("small", { class: "reason" }, reason) : undefined];
  const signature = `${shown}|${showReason ? reason : ""}|${row.entry.stale ?? ""}`;
  if (cell.dataset.signature === signature) return;
  cell.dataset.signature = signature;
  cell.replaceChildren(...next.filter((n): n is HTMLElement => n !== undefined));
}

/**
 * Sentences for the status changes between two refreshes, for the aria-live region.
 * @example
 * statusChanges([loadingRow], [runningRow]) // ["Slot 0 (tiny) is now running"]
 */
export function statusChanges(before: readonly StatusLike[], after: readonly StatusLike[]): string[] {
  const old = new Map(before.map((r) => [r.slot, r]));
  const now = new Set(after.map((r) => r.slot));
  const changes = after.flatMap((r) => {
    const prev = old.get(r.slot);
    const [model, status] = [r.entry.model_id, shownStatus(r)];
    if (!prev) return [`Slot ${r.slot} (${model}) appeared: ${status}`];
    const changed = shownStatus(prev) !== status || prev.entry.model_id !== model;
    return changed ? [`Slot ${r.slot} (${model}) is now ${status}`] : [];
  });
  for (const r of before) if (!now.has(r.slot)) changes.push(`Slot ${r.slot} (${r.entry.model_id}) is gone`);
  return changes;
}

/** The parts of a row {@link statusChanges} compares. */
export type StatusLike = Pick<ProcessStatus, "slot" | "state"> & {
  readonly entry: Pick<ProcessStatus["entry"], "status" | "model_id">;
};
