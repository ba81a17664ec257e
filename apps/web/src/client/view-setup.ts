/**
 * The first-run panel: shown while no model is configured. It says where the configuration file
 * is and which command writes one, scans a folder (and the usual places) for GGUF models with
 * their facts, and adds the chosen ones to corral.yaml through the API; they can be loaded at once.
 */
import type { FoundModel, SetupAdded, SetupScan } from "@corral/core/views";
import type { ApiClient } from "./api.ts";
import { byId, h, reconcile } from "./dom.ts";

/** What the panel needs from the page. */
export interface SetupDeps {
  readonly api: ApiClient;
  readonly announce: (message: string) => void;
  readonly showError: (what: string, error: unknown) => void;
  /** re-reads everything once models were added */
  readonly refresh: () => void;
}

const SOURCES: Readonly<Record<FoundModel["source"], string>> = {
  folder: "the folder given",
  models_dir: "models_dir",
  home: "~/models",
  huggingface: "the Hugging Face cache",
  lmstudio: "LM Studio",
  ollama: "Ollama",
};

/**
 * One line of a found model's facts.
 * @example
 * foundFacts(model) // "llama · 7.6B · Q4_K_M · context 32768 · 4.7 GB · from Ollama"
 */
export function foundFacts(m: FoundModel): string {
  const n = m.size_bytes;
  const size =
    n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${Math.round(n / 1e6)} MB` : `${Math.ceil(n / 1e3)} kB`;
  const facts = m.error
    ? ["header unreadable"]
    : [m.architecture, m.parameters, m.quantization, m.context_length ? `context ${m.context_length}` : undefined];
  return [...facts, size, m.parts > 1 ? `${m.parts} parts` : undefined, m.mmproj ? "with mmproj" : undefined]
    .filter(Boolean)
    .concat(`from ${SOURCES[m.source]}`)
    .join(" · ");
}

/**
 * Wires the panel's markup (#setup-*) and returns what the page calls on each refresh.
 * @example
 * const setup = setupPanel({ api, announce, showError, refresh })
 * setup.update(models.length)
 */
export function setupPanel(deps: SetupDeps): { update(configuredModels: number): void } {
  const el = {
    section: byId("setup-section", HTMLElement),
    config: byId("setup-config", HTMLParagraphElement),
    form: byId("setup-form", HTMLFormElement),
    folder: byId("setup-folder", HTMLInputElement),
    note: byId("setup-note", HTMLParagraphElement),
    found: byId("setup-found", HTMLUListElement),
    add: byId("setup-add", HTMLButtonElement),
    open: byId("setup-open", HTMLButtonElement),
  };
  let last: SetupScan | undefined;
  let scanned = false;

  const chosen = () =>
    Array.from(el.found.querySelectorAll<HTMLInputElement>("input[type=checkbox]:checked")).map((c) => c.value);
  const syncAdd = () => (el.add.disabled = chosen().length === 0);

  async function scan(): Promise<void> {
    const folder = el.folder.value.trim();
    el.note.textContent = "Looking for GGUF files…";
    try {
      last = await deps.api.get<SetupScan>(
        `/api/v1/setup/scan${folder ? `?folder=${encodeURIComponent(folder)}` : ""}`,
      );
    } catch (error) {
      el.note.textContent = "";
      return deps.showError("Scanning for models", error);
    }
    scanned = true;
    const fresh = last.models.filter((m) => !last?.configured.includes(m.id) && m.error === undefined);
    el.config.textContent = configLine(last);
    el.note.textContent =
      last.models.length === 0
        ? `No GGUF files found. Looked in ${last.searched.map((s) => s.root).join(", ")}.`
        : `Found ${last.models.length} model${last.models.length === 1 ? "" : "s"}.` +
          (last.llama_server
            ? ""
            : " No llama-server was found: `bun run llama:build` builds one for trying corral out.");
    reconcile(
      el.found,
      last.models,
      (m) => m.path,
      foundItem,
      (li, m) => fillItem(li, m, fresh.includes(m)),
    );
    syncAdd();
    deps.announce(el.note.textContent);
  }

  function foundItem(): HTMLElement {
    return h("li", { class: "card found" });
  }

  function fillItem(li: HTMLElement, m: FoundModel, selectable: boolean): void {
    const box = h("input", { type: "checkbox", value: m.path, disabled: !selectable, onchange: syncAdd });
    box.checked = selectable;
    li.replaceChildren(
      h(
        "label",
        { class: "found-label" },
        box,
        h("strong", {}, m.id),
        h("span", { class: "muted" }, last?.configured.includes(m.id) ? "already configured" : foundFacts(m)),
        h("code", { class: "found-path" }, m.path),
      ),
    );
  }

  async function add(): Promise<void> {
    const paths = chosen();
    if (paths.length === 0) return;
    el.add.disabled = true;
    try {
      const folder = el.folder.value.trim();
      const added = await deps.api.post<SetupAdded>("/api/v1/setup/models", { paths, ...(folder ? { folder } : {}) });
      deps.refresh();
      await scan();
      // After the scan, whose own line it replaces: the list now marks them "already configured".
      el.note.textContent = `${added.message}. Load one with "Load model".`;
      deps.announce(added.message);
    } catch (error) {
      deps.showError("Adding the models", error);
      syncAdd();
    }
  }

  el.form.addEventListener("submit", (event) => {
    event.preventDefault();
    void scan();
  });
  el.add.addEventListener("click", () => void add());
  el.open.addEventListener("click", () => {
    el.section.hidden = false;
    if (!scanned) void scan();
  });

  return {
    update(configuredModels) {
      if (configuredModels > 0) return;
      el.section.hidden = false;
      if (!scanned) void scan();
    },
  };
}

function configLine(scan: SetupScan): string {
  const count = scan.configured.length;
  const listed = count === 0 ? "lists no models yet" : `lists ${count} model${count === 1 ? "" : "s"}`;
  const where = `${scan.config_file} ${scan.config_exists ? listed : "does not exist yet"}`;
  return `The configuration: ${where}. In a terminal, \`${scan.init_command}\` writes it from the models found; or pick them here.`;
}
