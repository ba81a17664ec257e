import type { Controller } from "./controller.ts";

/** What {@link autostartModels} did for one model with `autostart: true`. */
export interface AutostartOutcome {
  readonly model_id: string;
  readonly outcome: "loaded" | "already-running" | "skipped" | "failed";
  readonly slot?: string;
  readonly pid?: number;
  readonly reason?: string;
}

/**
 * Loads every model with `autostart: true` that is not running yet, in configuration order and one
 * at a time (one GPU set at a time: a boot never starts every model at once). Run it after
 * `recover()`, so the servers that outlived corral count as running. A failure is reported and the
 * next model still starts.
 * @example
 * await controller.recover()
 * for (const o of await autostartModels(controller)) console.log(o.model_id, o.outcome, o.reason ?? "")
 */
export async function autostartModels(controller: Controller): Promise<AutostartOutcome[]> {
  const outcomes: AutostartOutcome[] = [];
  for (const model of controller.config.models.filter((m) => m.autostart)) {
    const running = (await controller.entries()).find(({ entry }) => entry.model_id === model.id);
    if (running) {
      outcomes.push({ model_id: model.id, outcome: "already-running", slot: running.slot, pid: running.entry.pid });
      continue;
    }
    if (model.gpu === undefined) {
      outcomes.push({ model_id: model.id, outcome: "skipped", reason: "it has no gpu in the configuration" });
      continue;
    }
    try {
      const { slot, entry } = await controller.load(model.id, { reason: "autostart" });
      outcomes.push({ model_id: model.id, outcome: "loaded", slot, pid: entry.pid });
    } catch (error) {
      outcomes.push({ model_id: model.id, outcome: "failed", reason: (error as Error).message.split("\n")[0] });
    }
  }
  return outcomes;
}
