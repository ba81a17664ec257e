/** The orphans list, the GPU cards and the history timeline. */
import type { GpuCard, HistoryEvent, Orphan, ProcessStatus } from "@corral/core/views";
import { h, reconcile } from "./dom.ts";
import { formatCommand, formatTime, gpuMemory, NONE } from "./format.ts";
import { crashDetails } from "./view-crash.ts";

/** What the orphan buttons do. */
export interface OrphanActions {
  readonly kill: (orphan: Orphan) => void;
  readonly adopt: (orphan: Orphan) => void;
}

/** OS verdicts on rows whose process no longer exists, so they hold no GPU */
const GONE = new Set<ProcessStatus["state"]>(["exited", "pid-reused"]);

const currentOrphan = new WeakMap<HTMLElement, Orphan>();

/**
 * Renders the orphans with their evidence, keyed by PID.
 * @example
 * renderOrphans(byId("orphans", HTMLUListElement), orphans, { kill, adopt })
 */
export function renderOrphans(list: HTMLElement, orphans: readonly Orphan[], actions: OrphanActions): void {
  reconcile(
    list,
    orphans,
    (o) => String(o.pid),
    (o) => createOrphan(o, actions),
    (li, o) => fillOrphan(li, o),
  );
}

function createOrphan(orphan: Orphan, actions: OrphanActions): HTMLElement {
  const li = h("li", { class: "orphan card" });
  const act = (fn: (o: Orphan) => void) => () => fn(currentOrphan.get(li) ?? orphan);
  const evidence = h("div", { class: "evidence" });
  const buttons = h(
    "div",
    { class: "actions" },
    h(
      "button",
      { type: "button", class: "danger", "aria-label": `Kill orphan PID ${orphan.pid}`, onclick: act(actions.kill) },
      "Kill",
    ),
    h(
      "button",
      { type: "button", "aria-label": `Adopt orphan PID ${orphan.pid}`, onclick: act(actions.adopt) },
      "Adopt",
    ),
  );
  li.append(evidence, buttons);
  return li;
}

function fillOrphan(li: HTMLElement, orphan: Orphan): void {
  currentOrphan.set(li, orphan);
  const signature = JSON.stringify(orphan);
  if (li.dataset.signature === signature) return;
  li.dataset.signature = signature;
  const field = (label: string, value: Node | string) => [h("dt", {}, label), h("dd", {}, value)];
  const reasons =
    orphan.reasons.length > 0 ? h("ul", { class: "reasons" }, ...orphan.reasons.map((r) => h("li", {}, r))) : NONE;
  li.firstElementChild?.replaceChildren(
    h(
      "h3",
      {},
      `PID ${orphan.pid} `,
      h("span", { class: `badge verdict-${orphan.verdict.replace(/[^a-z-]/gi, "")}` }, orphan.verdict),
    ),
    h(
      "dl",
      {},
      ...field("User", orphan.user ?? (orphan.uid === undefined ? NONE : String(orphan.uid))),
      ...field("Model", orphan.model_path ?? NONE),
      ...field("Port", orphan.port === undefined ? NONE : String(orphan.port)),
      ...field("Command", h("code", {}, formatCommand(orphan.command_line))),
      ...field("Reasons", reasons),
    ),
  );
}

/**
 * Renders one card per GPU with its memory and the slots holding it (core joins GPUs and slots:
 * each card lists its slots; the rows give their models and whether their process still runs).
 * @example
 * renderGpus(byId("gpus", HTMLDivElement), gpus.gpus, processes)
 */
export function renderGpus(container: HTMLElement, gpus: readonly GpuCard[], rows: readonly ProcessStatus[]): void {
  container.replaceChildren(
    ...gpus.map((gpu) => {
      const memory = gpuMemory(gpu.memory_used_mib, gpu.memory_total_mib);
      const holders = rows.filter((r) => !GONE.has(r.state) && gpu.slots.includes(r.slot));
      const percent = memory.share === undefined ? undefined : Math.round(memory.share * 100);
      return h(
        "article",
        { class: "gpu card", "data-gpu": gpu.index },
        h("h3", {}, `GPU ${gpu.index}`, h("span", { class: "muted" }, gpu.name)),
        h(
          "div",
          {
            class: "bar",
            role: "meter",
            "aria-label": `GPU ${gpu.index} memory used`,
            "aria-valuemin": 0,
            "aria-valuemax": 100,
            "aria-valuenow": percent,
            "aria-valuetext": memory.text,
          },
          barFill(percent ?? 0),
        ),
        h("p", {}, memory.text),
        h(
          "p",
          { class: "muted" },
          holders.length > 0
            ? `Held by ${holders.map((r) => `slot ${r.slot} (${r.entry.model_id})`).join(", ")}`
            : "No tracked slot",
        ),
      );
    }),
  );
}

/**
 * Renders the history timeline in the order the API sends it (newest first).
 * @example
 * renderHistory(byId("history", HTMLOListElement), events)
 */
export function renderHistory(list: HTMLElement, items: readonly HistoryEvent[]): void {
  list.replaceChildren(
    ...items.map((item) => {
      const what = [
        item.slot !== undefined ? `slot ${item.slot}` : undefined,
        item.model_id,
        item.pid !== undefined ? `PID ${item.pid}` : undefined,
        item.from !== undefined || item.to !== undefined
          ? [item.from, item.to]
              .map((s) => s ?? "")
              .join(" → ")
              .trim()
          : undefined,
      ].filter(Boolean);
      return h(
        "li",
        {},
        h("time", { datetime: item.time }, formatTime(item.time)),
        h("strong", {}, item.event),
        what.length > 0 ? h("span", {}, what.join(" · ")) : undefined,
        item.reason ? h("span", { class: "muted" }, item.reason) : undefined,
        item.by ? h("span", { class: "muted" }, `by ${item.by}`) : undefined,
        item.report ? crashDetails(item.report) : undefined,
      );
    }),
  );
}

/** The filled part of a meter, sized through the CSSOM: the page's CSP (default-src 'self') refuses style attributes. */
function barFill(percent: number): HTMLElement {
  const span = h("span", {});
  span.style.width = `${percent}%`;
  return span;
}
