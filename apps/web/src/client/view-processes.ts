/** The processes table: one keyed row per slot, updated in place so focus survives live updates. */
import { h, reconcile } from "./dom.ts";
import { formatBytes, formatMib, formatPercent, formatUptime, NONE } from "./format.ts";
import type { ProcessRow } from "./normalize.ts";

/** What the row buttons do. */
export interface ProcessActions {
  readonly log: (row: ProcessRow) => void;
  readonly verify: (row: ProcessRow) => void;
  readonly switchModel: (row: ProcessRow) => void;
  readonly unload: (row: ProcessRow) => void;
  readonly forceKill: (row: ProcessRow) => void;
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
  "Actions",
] as const;

/**
 * Renders the rows into the table body.
 * @example
 * renderProcesses(byId("processes-body", HTMLTableSectionElement), rows, actions)
 */
export function renderProcesses(
  tbody: HTMLTableSectionElement,
  rows: readonly ProcessRow[],
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
const current = new WeakMap<HTMLElement, ProcessRow>();

function createRow(row: ProcessRow, actions: ProcessActions): HTMLTableRowElement {
  const tr = h("tr");
  const button = (label: string, act: (r: ProcessRow) => void, cls = "") =>
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

function fillRow(tr: HTMLTableRowElement, row: ProcessRow): void {
  current.set(tr, row);
  tr.dataset.status = row.status;
  const values = [
    row.slot,
    row.model,
    row.gpus,
    row.port ?? NONE,
    row.pid ?? NONE,
    undefined,
    row.health ?? NONE,
    formatUptime(row.uptimeMs),
    formatPercent(row.cpuPercent),
    formatBytes(row.rssBytes),
    formatMib(row.gpuMib),
  ];
  values.forEach((value, i) => {
    const cell = tr.cells[i];
    if (cell && value !== undefined && cell.textContent !== String(value)) cell.textContent = String(value);
  });
  const status = tr.cells[5];
  if (status) fillStatus(status, row);
  tr.cells[6]?.setAttribute("data-health", row.health ?? "none");
}

function fillStatus(cell: HTMLTableCellElement, row: ProcessRow): void {
  const badge = h("span", { class: `badge status-${row.status.replace(/[^a-z-]/gi, "")}` }, row.status);
  const showReason = row.reason && row.status !== "running";
  const next = [badge, showReason ? h("small", { class: "reason" }, row.reason) : undefined];
  const signature = `${row.status}|${showReason ? row.reason : ""}`;
  if (cell.dataset.signature === signature) return;
  cell.dataset.signature = signature;
  cell.replaceChildren(...next.filter((n): n is HTMLElement => n !== undefined));
}

/**
 * Sentences for the status changes between two refreshes, for the aria-live region.
 * @example
 * statusChanges([{ slot: "0", status: "loading" }], [{ slot: "0", status: "running" }]) // ["Slot 0 (m) is now running"]
 */
export function statusChanges(
  before: ReadonlyArray<Pick<ProcessRow, "slot" | "status" | "model">>,
  after: ReadonlyArray<Pick<ProcessRow, "slot" | "status" | "model">>,
): string[] {
  const old = new Map(before.map((r) => [r.slot, r]));
  const now = new Set(after.map((r) => r.slot));
  const changes = after.flatMap((r) => {
    const prev = old.get(r.slot);
    if (!prev) return [`Slot ${r.slot} (${r.model}) appeared: ${r.status}`];
    return prev.status !== r.status || prev.model !== r.model ? [`Slot ${r.slot} (${r.model}) is now ${r.status}`] : [];
  });
  for (const r of before) if (!now.has(r.slot)) changes.push(`Slot ${r.slot} (${r.model}) is gone`);
  return changes;
}
