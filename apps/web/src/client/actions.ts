/** What the buttons do: each asks what it must, calls one endpoint and reports the outcome. */
import type { ApiClient } from "./api.ts";
import { confirmDialog, field, formDialog, logDialog, modelSelect } from "./dialogs.ts";
import { h } from "./dom.ts";
import { formatCommand } from "./format.ts";
import { toLogText, toModels, type GpuView, type OrphanView, type ProcessRow } from "./normalize.ts";
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
  readonly gpus: () => readonly GpuView[] | undefined;
}

/** All the page's actions, bound to a context. */
export interface Actions extends ProcessActions, OrphanActions {
  readonly load: () => void;
  readonly cleanup: (orphans: readonly OrphanView[]) => void;
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
  const attempt = async (what: string, task: () => Promise<string>) => {
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
      return toModels(await api.get("/api/v1/models"));
    } catch (error) {
      showError("Reading the models", error);
      return undefined;
    }
  };
  const gpuField = (value?: string) => {
    const known = ctx.gpus()?.map((g) => String(g.index)) ?? [];
    const list = h("datalist", { id: "gpu-choices" }, ...known.map((g) => h("option", { value: g })));
    const input = field("GPU(s)", "gpu_id", { required: true, value, list: "gpu-choices", pattern: "\\s*\\d{1,3}(\\s*,\\s*\\d{1,3})*\\s*", inputmode: "numeric" }, 'One index such as "0", or a list such as "0,1".');
    input.append(list);
    return input;
  };

  return {
    async load() {
      const choices = await models();
      if (!choices) return;
      if (choices.length === 0) return showError("Loading a model", new Error("no models are configured (add some to corral.yaml)"));
      const data = await formDialog({
        title: "Load a model",
        body: [modelSelect(choices), gpuField(choices[0]?.gpu), field("Port (optional)", "port", { type: "number", min: 1, max: 65535 }, "Left empty: the model's or GPU's configured port, else a free one.")],
        submitLabel: "Load",
      });
      if (!data) return;
      const model = text(data, "model_id");
      const gpu = text(data, "gpu_id");
      const port = text(data, "port");
      await attempt(`Loading ${model} on GPU ${gpu}`, async () => {
        await api.post("/api/v1/models/load", { model_id: model, gpu_id: gpuValue(gpu), ...(port ? { port: Number(port) } : {}) });
        return `Loaded ${model} on GPU ${gpu}`;
      });
    },
    async switchModel(row) {
      const choices = await models();
      if (!choices) return;
      const data = await formDialog({
        title: `Switch the model of slot ${row.slot}`,
        body: [h("p", {}, `${row.model} is unloaded, then the chosen model loads on GPU ${row.gpus}.`), modelSelect(choices.filter((m) => m.id !== row.model))],
        submitLabel: "Switch",
      });
      if (!data) return;
      const model = text(data, "model_id");
      await attempt(`Switching slot ${row.slot} to ${model}`, async () => {
        await api.post("/api/v1/models/switch", { model_id: model, gpu_id: gpuValue(row.gpus) });
        return `Slot ${row.slot} now runs ${model}`;
      });
    },
    unload: (row) =>
      attempt(`Unloading slot ${row.slot}`, async () => {
        await api.del(slotPath(row.slot));
        return `Unloaded slot ${row.slot} (${row.model})`;
      }),
    verify: (row) =>
      attempt(`Verifying slot ${row.slot}`, async () => {
        const result = (await api.post(`${slotPath(row.slot)}/verify`)) as Record<string, unknown> | undefined;
        const verdict = [result?.state ?? result?.status, result?.reason ?? result?.state_reason].filter((x) => typeof x === "string");
        return `Slot ${row.slot} verified${verdict.length > 0 ? `: ${verdict.join(" — ")}` : ""}`;
      }),
    async forceKill(row) {
      const ok = await confirmDialog(
        `Force kill slot ${row.slot}?`,
        [h("p", {}, `PID ${row.pid ?? "?"} (${row.model}) and its children get SIGKILL at once, without a chance to shut down cleanly.`)],
        "Force kill",
      );
      if (!ok) return;
      await attempt(`Force killing slot ${row.slot}`, async () => {
        await api.del(`${slotPath(row.slot)}?force=true`);
        return `Killed slot ${row.slot} (${row.model})`;
      });
    },
    log: (row: ProcessRow) =>
      logDialog({ slot: row.slot, fetchLog: async () => toLogText(await api.get(`/api/v1/logs?gpu_id=${encodeURIComponent(row.slot)}&lines=200`)) }),
    ...orphanActions(ctx, attempt),
  };
}

function orphanActions(ctx: ActionContext, attempt: (what: string, task: () => Promise<string>) => Promise<void>) {
  const { api } = ctx;
  const killOne = (pid: number) => api.post(`/api/v1/orphans/${pid}/kill`);
  return {
    async kill(orphan: OrphanView) {
      const ok = await confirmDialog(`Kill orphan PID ${orphan.pid}?`, [h("p", {}, "This process and its children are stopped:"), h("pre", { class: "command" }, formatCommand(orphan.command))], "Kill");
      if (ok) await attempt(`Killing orphan PID ${orphan.pid}`, async () => (await killOne(orphan.pid), `Killed orphan PID ${orphan.pid}`));
    },
    async adopt(orphan: OrphanView) {
      const data = await formDialog({
        title: `Adopt orphan PID ${orphan.pid}`,
        body: [h("p", {}, "corral tracks it from now on, like a process it started."), field("Slot (optional)", "slot", { pattern: "\\d{1,3}(,\\d{1,3})*" }, "Left empty: the GPU the process was started on.")],
        submitLabel: "Adopt",
      });
      if (!data) return;
      const slot = String(data.get("slot") ?? "").trim();
      await attempt(`Adopting PID ${orphan.pid}`, async () => {
        await api.post(`/api/v1/orphans/${orphan.pid}/adopt`, slot ? { slot } : {});
        return `Adopted PID ${orphan.pid}${slot ? ` into slot ${slot}` : ""}`;
      });
    },
    async cleanup(orphans: readonly OrphanView[]) {
      // Foreign ones are not ours to mass-kill: they stay listed, each with its own Kill button.
      const targets = orphans.filter((o) => o.verdict !== "foreign");
      if (targets.length === 0) return ctx.announce("No orphans of ours to clean up");
      const skipped = orphans.length - targets.length;
      const list = h("ul", { class: "targets" }, ...targets.map((o) => h("li", {}, h("strong", {}, `PID ${o.pid}`), ` ${o.model ?? formatCommand(o.command)}`)));
      const note = skipped > 0 ? h("p", {}, `${skipped} foreign process${skipped === 1 ? " is" : "es are"} left alone.`) : undefined;
      if (!(await confirmDialog(`Kill ${targets.length} orphan${targets.length === 1 ? "" : "s"}?`, [h("p", {}, "Exactly these processes will be killed:"), list, note], "Kill all listed"))) return;
      await attempt(`Cleaning up ${targets.length} orphans`, async () => {
        const results = await Promise.allSettled(targets.map((o) => killOne(o.pid)));
        const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`PID ${targets[i]?.pid}: ${(r.reason as Error).message}`] : []));
        if (failed.length > 0) throw new AggregateError([], `killed ${targets.length - failed.length} of ${targets.length}; ${failed.join("; ")}`);
        return `Killed ${targets.length} orphan${targets.length === 1 ? "" : "s"}`;
      });
    },
  };
}
