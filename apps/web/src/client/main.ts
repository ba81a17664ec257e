/**
 * The page: fetches everything once, then re-fetches (coalesced) whenever the API's event
 * stream says something changed, plus a slow refresh while the tab is visible for the figures
 * that change without an event (CPU, memory, orphans started by hand).
 */
import { ApiError, createApiClient, takeTokenFromFragment } from "./api.ts";
import { createActions } from "./actions.ts";
import { tokenDialog } from "./dialogs.ts";
import { byId, h } from "./dom.ts";
import {
  toGpus,
  toHistory,
  toOrphans,
  toProcessRows,
  type GpuView,
  type OrphanView,
  type ProcessRow,
} from "./normalize.ts";
import { createCoalescer, openEventStream, type StreamState } from "./sse.ts";
import { renderGpus, renderHistory, renderOrphans } from "./view-panels.ts";
import { PROCESS_COLUMNS, renderProcesses, statusChanges } from "./view-processes.ts";

/** How often figures are re-read while the tab is visible and no event came. */
const SLOW_REFRESH_MS = 15_000;
/**
 * One more refresh this long after the last change: the API serves /processes from its
 * watcher's latest tick (up to 1 s old), so the refresh right after an event can still show
 * the state from before it.
 */
const SETTLE_MS = 1_500;

const el = {
  connection: byId("connection", HTMLParagraphElement),
  signIn: byId("sign-in", HTMLButtonElement),
  load: byId("load", HTMLButtonElement),
  announcer: byId("announcer", HTMLDivElement),
  error: byId("error", HTMLDivElement),
  errorText: byId("error-text", HTMLParagraphElement),
  errorDismiss: byId("error-dismiss", HTMLButtonElement),
  head: byId("processes-head", HTMLTableRowElement),
  body: byId("processes-body", HTMLTableSectionElement),
  processesNote: byId("processes-note", HTMLParagraphElement),
  gpus: byId("gpus", HTMLDivElement),
  gpusNote: byId("gpus-note", HTMLParagraphElement),
  orphans: byId("orphans", HTMLUListElement),
  orphansNote: byId("orphans-note", HTMLParagraphElement),
  orphansRefresh: byId("orphans-refresh", HTMLButtonElement),
  cleanup: byId("orphans-cleanup", HTMLButtonElement),
  history: byId("history", HTMLOListElement),
  historyNote: byId("history-note", HTMLParagraphElement),
};

const state: { rows: ProcessRow[]; gpus: GpuView[] | undefined; orphans: OrphanView[]; loaded: boolean } = {
  rows: [],
  gpus: undefined,
  orphans: [],
  loaded: false,
};

const pendingAnnouncements: string[] = [];
function announce(message: string): void {
  // Messages of one frame are read as one, or a screen reader would only catch the last.
  // Clearing first makes a repeat of the same text a change that is announced again.
  if (pendingAnnouncements.push(message) > 1) return;
  el.announcer.textContent = "";
  requestAnimationFrame(() => (el.announcer.textContent = pendingAnnouncements.splice(0).join(". ")));
}

function describe(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

function showError(what: string, error: unknown): void {
  el.errorText.textContent = `${what} failed: ${describe(error)}`;
  el.error.hidden = false;
}

// Before the first request: the link `corral serve` prints carries the token in its fragment.
takeTokenFromFragment(location, history, sessionStorage);
const api = createApiClient({ askToken: tokenDialog });

async function section<T>(
  note: HTMLElement,
  path: string,
  read: (json: unknown) => T,
  show: (value: T) => string,
): Promise<void> {
  try {
    note.textContent = show(read(await api.get(path)));
  } catch (error) {
    note.textContent = `Could not read ${path}: ${describe(error)}`;
  }
}

async function refreshAll(): Promise<void> {
  await Promise.all([
    section(el.processesNote, "/api/v1/processes", toProcessRows, (rows) => {
      if (state.loaded) for (const change of statusChanges(state.rows, rows)) announce(change);
      state.rows = rows;
      state.loaded = true;
      renderProcesses(el.body, rows, actions);
      return rows.length === 0 ? "No processes are tracked. Load a model to start one." : "";
    }),
    section(el.orphansNote, "/api/v1/orphans", toOrphans, (orphans) => {
      state.orphans = orphans;
      renderOrphans(el.orphans, orphans, actions);
      el.cleanup.disabled = !orphans.some((o) => o.verdict !== "foreign");
      return orphans.length === 0 ? "No orphaned llama-server processes." : "";
    }),
    section(el.gpusNote, "/api/v1/gpus", toGpus, (gpus) => {
      state.gpus = gpus;
      return gpus ? "" : "No GPU figures on this machine (nvidia-smi is not available).";
    }),
    section(el.historyNote, "/api/v1/history?limit=100", toHistory, (items) => {
      renderHistory(el.history, items);
      return items.length === 0 ? "Nothing has happened yet." : "";
    }),
  ]);
  // After both answers are in: a card names the models of the slots on its GPU.
  renderGpus(el.gpus, state.gpus ?? [], state.rows);
}

const refresh = createCoalescer(refreshAll, 250);
let settle: ReturnType<typeof setTimeout> | undefined;
function changed(): void {
  refresh.schedule();
  clearTimeout(settle);
  settle = setTimeout(() => refresh.schedule(), SETTLE_MS);
}
const actions = createActions({ api, refresh: changed, announce, showError, gpus: () => state.gpus });

function showStream(s: StreamState): void {
  el.connection.dataset.state = s.kind;
  el.signIn.hidden = s.kind !== "unauthorized";
  el.connection.textContent =
    s.kind === "open"
      ? "Live"
      : s.kind === "waiting"
        ? `Disconnected (${s.why}); retrying in ${Math.round(s.retryInMs / 1000)} s`
        : s.kind === "unauthorized"
          ? "Not signed in: live updates need the API token"
          : s.kind === "closed"
            ? "Closed"
            : "Connecting…";
  // Whatever happened while we were away is only in the registry now.
  if (s.kind === "open") refresh.schedule();
}

const stream = openEventStream({ request: api.request, onEvent: changed, onState: showStream });

el.head.replaceChildren(
  ...PROCESS_COLUMNS.map((label) =>
    h("th", { scope: "col" }, label === "Actions" ? h("span", { class: "visually-hidden" }, label) : label),
  ),
);
el.load.addEventListener("click", () => void actions.load());
el.orphansRefresh.addEventListener("click", changed);
el.cleanup.addEventListener("click", () => void actions.cleanup(state.orphans));
el.errorDismiss.addEventListener("click", () => (el.error.hidden = true));
el.signIn.addEventListener("click", async () => {
  if (await api.reauthenticate("Enter the API token to see live updates.")) stream.reconnect();
});
document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && refresh.schedule());
setInterval(() => document.visibilityState === "visible" && refresh.schedule(), SLOW_REFRESH_MS);
refresh.schedule();
