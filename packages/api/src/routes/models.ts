import type { ProcessEntry } from "@corral/core";
import { Elysia, t } from "elysia";
import { JSON_BODY } from "../body.ts";
import type { RouteDeps } from "../deps.ts";
import { GpuId, ModelId, Port, ProcessEntrySchema, toSlot, unloadBody } from "../schemas.ts";

/**
 * One configured model: the original controller's fields plus where corral has it loaded.
 * @example
 * { id: "qwen", name: "Qwen 7B", path: "/m/q.gguf", status: "loaded", loaded: true, loaded_in: ["0"], … }
 */
export const ModelInfoSchema = t.Object({
  id: t.String(),
  name: t.String(),
  path: t.String(),
  status: t.String({ description: '"loaded" or "available"' }),
  loaded: t.Boolean(),
  description: t.String(),
  parameter_count: t.String(),
  quantization: t.String(),
  gpu: t.Optional(t.String({ description: "configured default slot" })),
  port: t.Optional(t.Integer()),
  loaded_in: t.Array(t.String(), { description: "slots it is loaded in now" }),
});

/**
 * The original controller's ModelStatus, filled from a registry entry.
 * @example
 * { model_id: "qwen", model_name: "Qwen 7B", status: "running", pid: 4242, port: 8081, server_url: "http://127.0.0.1:8081", … }
 */
export const ModelStatusSchema = t.Object({
  model_id: t.String(),
  model_name: t.String(),
  status: t.String(),
  loaded_at: t.String(),
  pid: t.Integer(),
  host: t.Optional(t.String()),
  port: t.Integer(),
  server_url: t.String(),
});

const LoadResponse = t.Object({
  success: t.Boolean(),
  model_id: t.String(),
  message: t.String(),
  status: ModelStatusSchema,
  slot: t.String(),
  ready_ms: t.Number(),
  entry: ProcessEntrySchema,
});

const SwitchResponse = t.Object({
  success: t.Boolean(),
  old_model_id: t.Optional(t.String()),
  new_model_id: t.String(),
  message: t.String(),
  status: ModelStatusSchema,
  slot: t.String(),
  ready_ms: t.Number(),
  entry: ProcessEntrySchema,
});

const UnloadResponse = t.Object({
  success: t.Boolean(),
  message: t.String(),
  slot: t.String(),
  pid: t.Integer(),
  model_id: t.String(),
  signalled: t.Boolean({ description: "false when the process was already gone" }),
  escalated: t.Boolean({ description: "SIGTERM was not enough and SIGKILL followed" }),
  ms: t.Number(),
  port_freed: t.Boolean(),
  gpu_released: t.Optional(t.Boolean()),
  reason: t.String(),
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
          status: m.loaded_in.length > 0 ? "loaded" : "available",
          loaded: m.loaded_in.length > 0,
          description: "",
          parameter_count: "",
          quantization: "",
          ...(m.gpu !== undefined ? { gpu: m.gpu } : {}),
          ...(m.port !== undefined ? { port: m.port } : {}),
          loaded_in: m.loaded_in,
        })),
      }),
      { response: t.Object({ models: t.Array(ModelInfoSchema) }), detail: { summary: "The configured models" } },
    )
    .post(
      "/models/load",
      async ({ body, request, server }) => {
        server?.timeout(request, 0); // a load may take minutes; the idle timer must not cut it off
        const { slot, entry, readyMs } = await controller.load(body.model_id, {
          gpu: body.gpu_id !== undefined ? toSlot(body.gpu_id) : defaultGpu(controller, body.model_id),
          port: body.port,
          replace: body.replace,
          timeoutMs: body.timeout_ms,
        });
        return {
          success: true,
          model_id: entry.model_id,
          message: `loaded ${entry.model_id} in slot ${slot} on port ${entry.port} in ${Math.round(readyMs)} ms`,
          status: modelStatus(entry),
          slot,
          ready_ms: readyMs,
          entry,
        };
      },
      {
        ...JSON_BODY,
        body: t.Object({
          model_id: ModelId,
          gpu_id: t.Optional(GpuId),
          port: t.Optional(Port),
          replace: t.Optional(
            t.Boolean({
              description: "unload whatever holds an overlapping slot first",
              error: "replace: true or false",
            }),
          ),
          timeout_ms: t.Optional(TimeoutMs),
        }),
        response: LoadResponse,
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
        response: UnloadResponse,
        detail: { summary: "Unload the model in a slot (SIGTERM, then SIGKILL after the timeout)" },
      },
    )
    .post(
      "/models/switch",
      async ({ body, request, server }) => {
        server?.timeout(request, 0);
        const slot = toSlot(body.gpu_id ?? 0);
        const old = await controller.registry.get(slot);
        const result = await controller.switch(slot, body.model_id, { timeoutMs: body.timeout_ms });
        return {
          success: true,
          ...(old ? { old_model_id: old.model_id } : {}),
          new_model_id: result.entry.model_id,
          message: `slot ${result.slot}: ${old?.model_id ?? "nothing"} → ${result.entry.model_id} in ${Math.round(result.readyMs)} ms`,
          status: modelStatus(result.entry),
          slot: result.slot,
          ready_ms: result.readyMs,
          entry: result.entry,
        };
      },
      {
        ...JSON_BODY,
        body: t.Object({ model_id: ModelId, gpu_id: t.Optional(GpuId), timeout_ms: t.Optional(TimeoutMs) }),
        response: SwitchResponse,
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

function modelStatus(entry: ProcessEntry) {
  const host = entry.host ?? "127.0.0.1";
  return {
    model_id: entry.model_id,
    model_name: entry.model_name,
    status: entry.status,
    loaded_at: entry.started_at,
    pid: entry.pid,
    ...(entry.host !== undefined ? { host: entry.host } : {}),
    port: entry.port,
    server_url: `http://${host.includes(":") ? `[${host}]` : host}:${entry.port}`,
  };
}
