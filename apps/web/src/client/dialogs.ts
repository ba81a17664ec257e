/**
 * Modal dialogs built on `<dialog>`: the browser traps focus, closes on Escape and gives the
 * dialog role; we give focus back to whatever opened it.
 */

import type { ModelInfo } from "@corral/core/views";
import { type Child, h } from "./dom.ts";

/** Options of {@link formDialog}. */
export interface FormDialogOptions {
  readonly title: string;
  /** labels, inputs, explanations */
  readonly body: readonly Child[];
  readonly submitLabel: string;
  /** paints the submit button as destructive @default false */
  readonly danger?: boolean;
}

let dialogCount = 0;

/**
 * Shows a modal form; resolves with its data on submit, undefined on cancel or Escape.
 * @example
 * const data = await formDialog({ title: "Adopt", body: [slotField()], submitLabel: "Adopt" })
 */
export function formDialog(options: FormDialogOptions): Promise<FormData | undefined> {
  const { title, body, submitLabel, danger = false } = options;
  const titleId = `dialog-title-${++dialogCount}`;
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : undefined;
  const form = h(
    "form",
    { method: "dialog" },
    h("h2", { id: titleId }, title),
    ...body,
    h(
      "div",
      { class: "dialog-buttons" },
      h("button", { type: "submit", value: "cancel", formnovalidate: true }, "Cancel"),
      h("button", { type: "submit", value: "ok", class: danger ? "danger" : "primary" }, submitLabel),
    ),
  );
  const dialog = h("dialog", { "aria-labelledby": titleId }, form);
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok" ? new FormData(form) : undefined);
      dialog.remove();
      opener?.focus();
    });
    dialog.showModal();
  });
}

/**
 * Asks to confirm a destructive action.
 * @example
 * if (await confirmDialog("Force kill slot 0?", ["PID 4242 gets SIGKILL."], "Force kill")) await kill()
 */
export async function confirmDialog(title: string, body: readonly Child[], confirmLabel: string): Promise<boolean> {
  return (await formDialog({ title, body, submitLabel: confirmLabel, danger: true })) !== undefined;
}

/**
 * A labelled input for {@link formDialog}.
 * @example
 * field("Port", "port", { type: "number", min: 1, max: 65535 })
 */
export function field(
  label: string,
  name: string,
  attrs: Record<string, string | number | boolean | undefined> = {},
  hint?: string,
): HTMLElement {
  const id = `field-${name}-${++dialogCount}`;
  return h(
    "p",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, name, ...(hint ? { "aria-describedby": `${id}-hint` } : {}), ...attrs }),
    hint ? h("small", { id: `${id}-hint` }, hint) : undefined,
  );
}

/**
 * A labelled model picker.
 * @example
 * modelSelect(models, "qwen")
 */
export function modelSelect(models: readonly ModelInfo[], selected?: string): HTMLElement {
  const id = `field-model-${++dialogCount}`;
  const options = models.map((m) =>
    h(
      "option",
      { value: m.id, selected: m.id === selected },
      m.name === m.id ? m.id : `${m.name} (${m.id})`,
      m.loaded_in.length > 0 ? ` · loaded in ${m.loaded_in.join(", ")}` : "",
    ),
  );
  return h(
    "p",
    { class: "field" },
    h("label", { for: id }, "Model"),
    h("select", { id, name: "model_id", required: true }, ...options),
  );
}

/**
 * Asks for the API token (a password field; nothing is sent until submit).
 * @example
 * const token = await tokenDialog("401: a bearer token is required")
 */
export async function tokenDialog(message: string): Promise<string | undefined> {
  const data = await formDialog({
    title: "API token",
    body: [
      h("p", {}, message),
      field(
        "Token",
        "token",
        { type: "password", required: true, autocomplete: "off" },
        "Kept in this browser tab only (sessionStorage).",
      ),
    ],
    submitLabel: "Use token",
  });
  const token = data?.get("token");
  return typeof token === "string" && token.trim() ? token.trim() : undefined;
}

/** Where a log follower delivers to the dialog. */
export interface LogSink {
  /** new lines; `replace` starts the text over (a fresh connection sends the whole tail again) */
  lines(lines: readonly string[], replace: boolean): void;
  /** a short status: live, reconnecting, an error from the API */
  status(text: string): void;
}

/** Options of {@link logDialog}. */
export interface LogDialogOptions {
  readonly slot: string;
  /** starts following the log into the sink; the dialog closes it when "Follow" is unchecked or the dialog closes */
  readonly follow: (sink: LogSink) => { close(): void };
  /** older lines are dropped past this many @default 2000 */
  readonly maxLines?: number;
}

/**
 * Shows a process's log tail and, while "Follow" is checked and the dialog open, appends new
 * lines as the API streams them, keeping the view at the bottom unless the person scrolled up.
 * @example
 * logDialog({ slot: "0", follow: (sink) => followLog(api, "0", sink) })
 */
export function logDialog(options: LogDialogOptions): void {
  const { slot, follow, maxLines = 2000 } = options;
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : undefined;
  const titleId = `dialog-title-${++dialogCount}`;
  const pre = h("pre", { class: "log", tabindex: 0, "aria-label": `Log of slot ${slot}` }, "Loading…");
  const state = h("p", { class: "muted", role: "status" });
  const followBox = h("input", { type: "checkbox", id: `${titleId}-follow`, checked: true });
  const close = h("button", { type: "button", class: "primary" }, "Close");
  const dialog = h(
    "dialog",
    { "aria-labelledby": titleId, class: "wide" },
    h("h2", { id: titleId }, `Log of slot ${slot}`),
    h("p", { class: "field-inline" }, followBox, h("label", { for: followBox.id }, "Follow")),
    pre,
    state,
    h("div", { class: "dialog-buttons" }, close),
  );
  let kept: string[] = [];
  const sink: LogSink = {
    lines(lines, replace) {
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
      kept = (replace ? [...lines] : [...kept, ...lines]).slice(-maxLines);
      pre.textContent = kept.length > 0 ? kept.join("\n") : "(the log is empty)";
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    },
    status: (text) => (state.textContent = text),
  };
  let following: { close(): void } | undefined = follow(sink);
  followBox.addEventListener("change", () => {
    following?.close();
    following = followBox.checked ? follow(sink) : undefined;
    if (!followBox.checked) sink.status("Paused");
  });
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    following?.close();
    dialog.remove();
    opener?.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
}
