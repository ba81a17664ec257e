/** Tiny DOM helpers: the page is small enough that a framework would outweigh it. */

/** What {@link h} accepts as a child. Nullish and `false` children are skipped. */
export type Child = Node | string | number | null | undefined | false;

/** Attributes, and `on<event>` listeners, for {@link h}. `true` sets an empty attribute; `false`/undefined omit it. */
export type Props = Record<string, string | number | boolean | undefined | ((event: Event) => void)>;

/**
 * Creates an element with attributes, listeners and children.
 * @example
 * h("button", { type: "button", "aria-label": "Unload slot 0", onclick: () => unload("0") }, "Unload")
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else if (value !== undefined && value !== false) el.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false)
      el.append(typeof child === "number" ? String(child) : child);
  }
  return el;
}

/**
 * The element with this id, typed; throws when the page markup lacks it (a bug, not a state).
 * @example
 * const tbody = byId("processes-body", HTMLTableSectionElement)
 */
export function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`page markup lacks #${id} (${type.name})`);
  return el;
}

/**
 * Brings a keyed list of children in line with `items`: reuses the element of a key that is
 * still there (so a focused button keeps focus across live updates), creates new ones,
 * drops the rest, and keeps the order of `items`.
 * @example
 * reconcile(tbody, rows, (r) => r.slot, (r) => h("tr"), (tr, r) => fillRow(tr, r))
 */
export function reconcile<T>(
  parent: HTMLElement,
  items: readonly T[],
  key: (item: T) => string,
  create: (item: T) => HTMLElement,
  update: (el: HTMLElement, item: T) => void,
): void {
  const existing = new Map<string, HTMLElement>();
  for (const child of Array.from(parent.children)) {
    if (child instanceof HTMLElement && child.dataset.key !== undefined) existing.set(child.dataset.key, child);
  }
  let cursor: Element | null = parent.firstElementChild;
  for (const item of items) {
    const k = key(item);
    let el = existing.get(k);
    existing.delete(k);
    if (!el) {
      el = create(item);
      el.dataset.key = k;
    }
    update(el, item);
    if (el !== cursor) parent.insertBefore(el, cursor);
    else cursor = cursor.nextElementSibling;
  }
  for (const stale of existing.values()) stale.remove();
}
