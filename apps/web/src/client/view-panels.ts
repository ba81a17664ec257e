/** The orphans list, the GPU cards and the history timeline. */
import { h, reconcile } from "./dom.ts";
import { formatCommand, formatTime, gpuMemory, NONE } from "./format.ts";
import type { GpuView, HistoryItem, OrphanView, ProcessRow } from "./normalize.ts";

/** What the orphan buttons do. */
export interface OrphanActions {
  readonly kill: (orphan: OrphanView) => void;
  readonly adopt: (orphan: OrphanView) => void;
}

/** statuses of rows whose process no longer exists, so they hold no GPU */
const GONE = new Set(["exited", "pid-reused"]);

const currentOrphan = new WeakMap<HTMLElement, OrphanView>();

/**
 * Renders the orphans with their evidence, keyed by PID.
 * @example
 * renderOrphans(byId("orphans", HTMLUListElement), orphans, { kill, adopt })
 */
export function renderOrphans(list: HTMLElement, orphans: readonly OrphanView[], actions: OrphanActions): void {
  reconcile(
    list,
    orphans,
    (o) => String(o.pid),
    (o) => createOrphan(o, actions),
    (li, o) => fillOrphan(li, o),
  );
}

function createOrphan(orphan: OrphanView, actions: OrphanActions): HTMLElement {
  const li = h("li", { class: "orphan card" });
  const act = (fn: (o: OrphanView) => void) => () => fn(currentOrphan.get(li) ?? orphan);
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

function fillOrphan(li: HTMLElement, orphan: OrphanView): void {
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
      ...field("User", orphan.user ?? NONE),
      ...field("Model", orphan.model ?? NONE),
      ...field("Port", orphan.port === undefined ? NONE : String(orphan.port)),
      ...field("Command", h("code", {}, formatCommand(orphan.command))),
      ...field("Reasons", reasons),
    ),
  );
}

/**
 * Renders one card per GPU with its memory and the slots holding it.
 * @example
 * renderGpus(byId("gpus", HTMLDivElement), gpus, rows)
 */
export function renderGpus(container: HTMLElement, gpus: readonly GpuView[], rows: readonly ProcessRow[]): void {
  container.replaceChildren(
    ...gpus.map((gpu) => {
      const memory = gpuMemory(gpu.usedMib, gpu.totalMib);
      const onGpu = (r: ProcessRow) =>
        gpu.slots?.includes(r.slot) ??
        r.gpus
          .split(",")
          .map((g) => g.trim())
          .includes(String(gpu.index));
      const holders = rows.filter((r) => !GONE.has(r.status) && onGpu(r));
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
          h("span", { style: `width: ${percent ?? 0}%` }),
        ),
        h("p", {}, memory.text),
        h(
          "p",
          { class: "muted" },
          holders.length > 0
            ? `Held by ${holders.map((r) => `slot ${r.slot} (${r.model})`).join(", ")}`
            : "No tracked slot",
        ),
      );
    }),
  );
}

/**
 * Renders the history timeline, newest first.
 * @example
 * renderHistory(byId("history", HTMLOListElement), items)
 */
export function renderHistory(list: HTMLElement, items: readonly HistoryItem[]): void {
  list.replaceChildren(
    ...items.map((item) => {
      const what = [
        item.slot !== undefined ? `slot ${item.slot}` : undefined,
        item.model,
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
      );
    }),
  );
}
