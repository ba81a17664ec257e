/**
 * The page: fetches everything once, then re-fetches (coalesced) whenever the API's event
 * stream says something changed, plus a slow refresh while the tab is visible for the figures
 * that change without an event (CPU, memory, orphans started by hand).
 */

import type {
  GpuCard,
  GpusView,
  HistoryList,
  ModelList,
  Orphan,
  OrphanList,
  ProcessList,
  ProcessStatus,
  WatcherView,
} from "@corral/core/views";
import { createActions } from "./actions.ts";
import { ApiError, createApiClient, takeTokenFromFragment } from "./api.ts";
import { createCharts } from "./charts.ts";
import { tokenDialog } from "./dialogs.ts";
import { byId, h } from "./dom.ts";
import { createCoalescer, openEventStream, type StreamState } from "./sse.ts";
import { type GatewayModelList, renderModels } from "./view-models.ts";
import { renderGpus, renderHistory, renderOrphans } from "./view-panels.ts";
import { bySlot, PROCESS_COLUMNS, renderProcesses, statusChanges } from "./view-processes.ts";
import { setupPanel } from "./view-setup.ts";

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
  watcherNote: byId("watcher-note", HTMLParagraphElement),
  models: byId("models", HTMLUListElement),
  modelsNote: byId("models-note", HTMLParagraphElement),
  gpus: byId("gpus", HTMLDivElement),
  gpusNote: byId("gpus-note", HTMLParagraphElement),
  orphans: byId("orphans", HTMLUListElement),
  orphansNote: byId("orphans-note", HTMLParagraphElement),
  orphansRefresh: byId("orphans-refresh", HTMLButtonElement),
  cleanup: byId("orphans-cleanup", HTMLButtonElement),
  history: byId("history", HTMLOListElement),
  historyNote: byId("history-note", HTMLParagraphElement),
};

const state: { rows: ProcessStatus[]; gpus: GpuCard[] | undefined; orphans: Orphan[]; loaded: boolean } = {
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

/** Reads one route (its body typed by core's schema, which the API's tests check it against) and shows it. */
async function section<T>(note: HTMLElement, path: string, show: (body: T) => string): Promise<void> {
  try {
    note.textContent = show(await api.get<T>(path));
  } catch (error) {
    note.textContent = `Could not read ${path}: ${describe(error)}`;
  }
}

/** Each model's parameter count and quantization by id; none where the list cannot be read. */
async function modelFacts(): Promise<Map<string, { parameter_count: string; quantization: string }>> {
  try {
    const { models } = await api.get<ModelList>("/api/v1/models");
    return new Map(models.map((m) => [m.id, { parameter_count: m.parameter_count, quantization: m.quantization }]));
  } catch {
    return new Map();
  }
}

async function refreshAll(): Promise<void> {
  await Promise.all([
    section<ProcessList>(el.processesNote, "/api/v1/processes", ({ processes }) => {
      const rows = bySlot(processes);
      if (state.loaded) for (const change of statusChanges(state.rows, rows)) announce(change);
      state.rows = rows;
      state.loaded = true;
      renderProcesses(el.body, rows, actions);
      charts.updateRows(el.body, rows);
      return rows.length === 0 ? "No processes are tracked. Load a model to start one." : "";
    }),
    section<OrphanList>(el.orphansNote, "/api/v1/orphans", ({ orphans }) => {
      state.orphans = orphans;
      renderOrphans(el.orphans, orphans, actions);
      el.cleanup.disabled = !orphans.some((o) => o.verdict !== "foreign");
      return orphans.length === 0 ? "No orphaned llama-server processes." : "";
    }),
    // Parameter count and quantization come from corral's own model list (the GGUF headers).
    modelFacts().then((facts) =>
      section<GatewayModelList>(el.modelsNote, "/v1/models", ({ data }) => {
        renderModels(
          el.models,
          data.map((d) => ({ ...d.corral, ...facts.get(d.id) })),
          api,
        );
        setup.update(data.length);
        return data.length === 0 ? "No models are configured yet: add some above, or run `corral init`." : "";
      }),
    ),
    section<GpusView>(el.gpusNote, "/api/v1/gpus", (view) => {
      state.gpus = view.available && view.gpus.length > 0 ? view.gpus : undefined;
      return state.gpus ? "" : "No GPU figures on this machine (nvidia-smi is not available).";
    }),
    // The watch loop outlives its errors (a corrupt registry, a lock timeout): the latest is shown here.
    section<WatcherView>(el.watcherNote, "/api/v1/watcher", ({ last_error: e }) =>
      e ? `The watcher's last error (${e.where}, ${new Date(e.at).toLocaleTimeString()}): ${e.message}` : "",
    ),
    section<HistoryList>(el.historyNote, "/api/v1/history?limit=100", ({ events }) => {
      renderHistory(el.history, events);
      return events.length === 0 ? "Nothing has happened yet." : "";
    }),
  ]);
  // After both answers are in: a card names the models of the slots on its GPU.
  renderGpus(el.gpus, state.gpus ?? [], state.rows);
  if (state.gpus) charts.updateGpus();
}

const refresh = createCoalescer(refreshAll, 250);
let settle: ReturnType<typeof setTimeout> | undefined;
function changed(): void {
  refresh.schedule();
  clearTimeout(settle);
  settle = setTimeout(() => refresh.schedule(), SETTLE_MS);
}
const actions = createActions({ api, refresh: changed, announce, showError, gpus: () => state.gpus });
// The usage panel goes right after the processes section; the GPU charts under the GPU cards.
const charts = createCharts({
  api,
  after: el.body.closest("section") ?? document.body,
  gpuSection: byId("gpus-section", HTMLElement),
  showError,
});
const setup = setupPanel({ api, announce, showError, refresh: changed });

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
