import {
  LoadResponseSchema,
  ModelListSchema,
  type ModelStatus,
  type ProcessEntry,
  publicEntry,
  SwitchResponseSchema,
  serverUrl,
  UnloadResponseSchema,
} from "@corral/core";
import { Elysia, t } from "elysia";
import { JSON_BODY } from "../body.ts";
import type { RouteDeps } from "../deps.ts";
import { GpuId, ModelId, Port, toSlot, unloadBody } from "../schemas.ts";

/** A load's `gpu_id` may also be "auto": placement picks the GPU (or set) with the most room. */
const LoadGpuId = t.Union([GpuId, t.Literal("auto")], {
  description: 'GPU index (0), list ("0,1"), "both", or "auto" (placement picks)',
  error: 'gpu_id: a GPU index such as 0, a list such as "0,1", "both" or "auto"',
});
const TimeoutMs = t.Integer({ minimum: 1, maximum: 3_600_000, error: "timeout_ms: an integer from 1 to 3600000" });

/**
 * The original controller's model endpoints: list, load, unload and switch, with `gpu_id` as
 * its clients send it (0, 1, "0,1" or "both").
 * @example
 * app.use(modelRoutes(deps))
 */
export function modelRoutes({ controller }: Pick<RouteDeps, "controller">) {
  return new Elysia({ prefix: "/api/v1", detail: { tags: ["models"] } })
    .get(
      "/models",
      async () => ({
        models: (await controller.models()).map((m) => ({
          id: m.id,
          name: m.name,
          path: m.path,
          status: m.loaded_in.length > 0 ? ("loaded" as const) : ("available" as const),
          loaded: m.loaded_in.length > 0,
          description: "",
          parameter_count: m.parameter_count ?? "",
          quantization: m.quantization ?? "",
          ...(m.gpu !== undefined ? { gpu: m.gpu } : {}),
          ...(m.port !== undefined ? { port: m.port } : {}),
          loaded_in: m.loaded_in,
        })),
      }),
      { response: ModelListSchema, detail: { summary: "The configured models" } },
    )
    .post(
      "/models/load",
      async ({ body, request, server }) => {
        server?.timeout(request, 0); // a load may take minutes; the idle timer must not cut it off
        const { slot, entry, readyMs, placement } = await controller.load(body.model_id, {
          gpu:
            body.gpu_id === "auto"
              ? "auto"
              : body.gpu_id !== undefined
                ? toSlot(body.gpu_id)
                : defaultGpu(controller, body.model_id),
          port: body.port,
          replace: body.replace,
          timeoutMs: body.timeout_ms,
          force: body.force,
        });
        return {
          success: true,
          model_id: entry.model_id,
          message:
            `loaded ${entry.model_id} in slot ${slot} on port ${entry.port} in ${Math.round(readyMs)} ms` +
            (placement ? `; placement: ${placement.message}` : ""),
          status: modelStatus(entry, controller.config.host),
          slot,
          ready_ms: readyMs,
          entry: publicEntry(entry),
          ...(placement ? { placement } : {}),
        };
      },
      {
        ...JSON_BODY,
        body: t.Object({
          model_id: ModelId,
          gpu_id: t.Optional(LoadGpuId),
          port: t.Optional(Port),
          replace: t.Optional(
            t.Boolean({
              description: "unload whatever holds an overlapping slot first",
              error: "replace: true or false",
            }),
          ),
          timeout_ms: t.Optional(TimeoutMs),
          force: t.Optional(
            t.Boolean({
              description: "load even when placement finds it does not fit in the free GPU memory",
              error: "force: true or false",
            }),
          ),
        }),
        response: LoadResponseSchema,
        detail: { summary: "Load a model; answers once its /health says ready" },
      },
    )
    .post(
      "/models/unload",
      async ({ body, request, server }) => {
        server?.timeout(request, 0);
        const r = await controller.unload(toSlot(body.gpu_id), { force: body.force, timeoutMs: body.timeout_ms });
        return {
          success: true,
          message: r.signalled
            ? `unloaded ${r.model_id} from slot ${r.slot} (pid ${r.pid}) in ${Math.round(r.ms)} ms`
            : `slot ${r.slot} was registered but its process was already gone (${r.reason}); the entry was removed`,
          ...unloadBody(r),
        };
      },
      {
        ...JSON_BODY,
        body: t.Object({
          gpu_id: GpuId,
          force: t.Optional(t.Boolean({ error: "force: true or false" })),
          timeout_ms: t.Optional(TimeoutMs),
        }),
        response: UnloadResponseSchema,
        detail: { summary: "Unload the model in a slot (SIGTERM, then SIGKILL after the timeout)" },
      },
    )
    .post(
      "/models/switch",
      async ({ body, request, server }) => {
        server?.timeout(request, 0);
        const slot = toSlot(body.gpu_id ?? 0);
        // The model it replaced comes from core, read inside the slot's queue: no check-then-act race.
        const result = await controller.switch(slot, body.model_id, { timeoutMs: body.timeout_ms, port: body.port });
        const old = result.previous;
        return {
          success: true,
          ...(old ? { old_model_id: old.model_id } : {}),
          new_model_id: result.entry.model_id,
          message: `slot ${result.slot}: ${old?.model_id ?? "nothing"} → ${result.entry.model_id} in ${Math.round(result.readyMs)} ms`,
          status: modelStatus(result.entry, controller.config.host),
          slot: result.slot,
          ready_ms: result.readyMs,
          entry: publicEntry(result.entry),
        };
      },
      {
        ...JSON_BODY,
        body: t.Object({
          model_id: ModelId,
          gpu_id: t.Optional(GpuId),
          port: t.Optional(Port),
          timeout_ms: t.Optional(TimeoutMs),
        }),
        response: SwitchResponseSchema,
        detail: { summary: "Unload a slot and load another model on the same GPUs" },
      },
    );
}

/**
 * No `gpu_id`: the model's configured GPU, else GPU 0 as in the original controller (whose
 * clients often leave `gpu_id` out).
 */
function defaultGpu(controller: RouteDeps["controller"], modelId: string): string | undefined {
  return controller.config.models.find((m) => m.id === modelId)?.gpu === undefined ? "0" : undefined;
}

function modelStatus(entry: ProcessEntry, configHost: string): ModelStatus {
  return {
    model_id: entry.model_id,
    model_name: entry.model_name,
    status: entry.status,
    loaded_at: entry.started_at,
    pid: entry.pid,
    ...(entry.host !== undefined ? { host: entry.host } : {}),
    port: entry.port,
    server_url: serverUrl(entry.host ?? configHost, entry.port),
  };
}
