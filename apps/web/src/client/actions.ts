/** What the buttons do: each asks what it must, calls one endpoint and reports the outcome. */
import type { GpuCard, ModelList, Orphan, ProcessStatus, VerifyView } from "@corral/core/views";
import { orphanActions } from "./actions-orphans.ts";
import type { ApiClient } from "./api.ts";
import { confirmDialog, field, formDialog, logDialog, modelSelect } from "./dialogs.ts";
import { h } from "./dom.ts";
import { followLog } from "./log-follow.ts";
import type { OrphanActions } from "./view-panels.ts";
import type { ProcessActions } from "./view-processes.ts";

/** What the actions need from the page. */
export interface ActionContext {
  readonly api: ApiClient;
  /** re-fetches everything soon (coalesced) */
  readonly refresh: () => void;
  /** a polite aria-live message */
  readonly announce: (message: string) => void;
  /** the error banner (role="alert") */
  readonly showError: (what: string, error: unknown) => void;
  readonly gpus: () => readonly GpuCard[] | undefined;
}

/** Runs one action: announces it, then its outcome or the error, and refreshes either way. */
export type Attempt = (what: string, task: () => Promise<string>) => Promise<void>;

/** All the page's actions, bound to a context. */
export interface Actions extends ProcessActions, OrphanActions {
  readonly load: () => void;
  readonly cleanup: (orphans: readonly Orphan[]) => void;
}

const slotPath = (slot: string) => `/api/v1/processes/${encodeURIComponent(slot)}`;
/** "1" → 1 (the original controller's clients send numbers), "0,1" stays a string. */
const gpuValue = (gpu: string): number | string => (/^\d+$/.test(gpu) ? Number(gpu) : gpu.replace(/\s+/g, ""));
const text = (data: FormData, name: string) => String(data.get(name) ?? "").trim();

/**
 * Binds the actions to a context.
 * @example
 * const actions = createActions({ api, refresh: () => refresh.schedule(), announce, showError, gpus: () => state.gpus })
 */
export function createActions(ctx: ActionContext): Actions {
  const { api, refresh, announce, showError } = ctx;
  const attempt: Attempt = async (what, task) => {
    announce(`${what}…`);
    try {
      announce(await task());
    } catch (error) {
      showError(what, error);
    } finally {
      refresh();
    }
  };
  const models = async () => {
    try {
      return (await api.get<ModelList>("/api/v1/models")).models;
    } catch (error) {
      showError("Reading the models", error);
      return undefined;
    }
  };

  return {
    async load() {
      const choices = await models();
      if (!choices) return;
      if (choices.length === 0)
        return showError("Loading a model", new Error("no models are configured (add some to corral.yaml)"));
      const data = await formDialog({
        title: "Load a model",
        body: [modelSelect(choices), gpuField(ctx.gpus(), choices[0]?.gpu), portField()],
        submitLabel: "Load",
      });
      if (!data) return;
      const [model, gpu, port] = [text(data, "model_id"), text(data, "gpu_id"), text(data, "port")];
      await attempt(`Loading ${model} on GPU ${gpu}`, async () => {
        await api.post("/api/v1/models/load", {
          model_id: model,
          gpu_id: gpuValue(gpu),
          ...(port ? { port: Number(port) } : {}),
        });
        return `Loaded ${model} on GPU ${gpu}`;
      });
    },
    async switchModel(row) {
      const current = row.entry.model_id;
      const choices = (await models())?.filter((m) => m.id !== current);
      if (!choices) return;
      if (choices.length === 0) return showError("Switching", new Error(`no model besides ${current} is configured`));
      const data = await formDialog({
        title: `Switch the model of slot ${row.slot}`,
        body: [
          h("p", {}, `${current} is unloaded, then the chosen model loads on GPU ${row.entry.gpu_id}.`),
          modelSelect(choices),
        ],
        submitLabel: "Switch",
      });
      if (!data) return;
      const model = text(data, "model_id");
      await attempt(`Switching slot ${row.slot} to ${model}`, async () => {
        await api.post("/api/v1/models/switch", { model_id: model, gpu_id: row.entry.gpu_id });
        return `Slot ${row.slot} now runs ${model}`;
      });
    },
    unload: (row) =>
      attempt(`Unloading slot ${row.slot}`, async () => {
        await api.del(slotPath(row.slot));
        return `Unloaded slot ${row.slot} (${row.entry.model_id})`;
      }),
    verify: (row) =>
      attempt(`Verifying slot ${row.slot}`, async () => {
        const { state, reason } = await api.post<VerifyView>(`${slotPath(row.slot)}/verify`);
        return `Slot ${row.slot} verified: ${reason ? `${state} — ${reason}` : state}`;
      }),
    async forceKill(row) {
      const { pid, model_id } = row.entry;
      const why = `PID ${pid} (${model_id}) and its children get SIGKILL at once, without a chance to shut down cleanly.`;
      if (!(await confirmDialog(`Force kill slot ${row.slot}?`, [h("p", {}, why)], "Force kill"))) return;
      await attempt(`Force killing slot ${row.slot}`, async () => {
        await api.del(`${slotPath(row.slot)}?force=true`);
        return `Killed slot ${row.slot} (${model_id})`;
      });
    },
    log: (row: ProcessStatus) => logDialog({ slot: row.slot, follow: (sink) => followLog(api, row.slot, sink) }),
    ...orphanActions(ctx, attempt),
  };
}

function gpuField(gpus: readonly GpuCard[] | undefined, value: string | undefined): HTMLElement {
  const input = field(
    "GPU(s)",
    "gpu_id",
    {
      required: true,
      value,
      list: "gpu-choices",
      inputmode: "numeric",
      pattern: "\\s*\\d{1,3}(\\s*,\\s*\\d{1,3})*\\s*",
    },
    'One index such as "0", or a list such as "0,1".',
  );
  input.append(
    h("datalist", { id: "gpu-choices" }, ...(gpus ?? []).map((g) => h("option", { value: String(g.index) }, g.name))),
  );
  return input;
}

function portField(): HTMLElement {
  const hint = "Left empty: the model's or GPU's configured port, else a free one.";
  return field("Port (optional)", "port", { type: "number", min: 1, max: 65535 }, hint);
}
