/**
 * The shapes of what the lifecycle reports (status rows, models, loads, unloads, switches,
 * recovery), as TypeBox schemas: the API declares them as its responses and the page imports
 * their static types. Only TypeBox here, so `@corral/core/views` stays free of Node and Bun APIs.
 */
import { type Static, Type } from "@sinclair/typebox";
import { PlacementReportSchema } from "../placement/views.ts";
import { ProbeStateSchema, ProcessUsageSchema } from "../process/views.ts";
import { HealthReportSchema } from "../server/views.ts";
import { ProcessEntrySchema } from "../store/schema.ts";

/**
 * One tracked process with everything known about it right now (the API's and CLI's row).
 * @example
 * const row: ProcessStatus = { slot: "0", entry, state: "running", state_reason: "same process",
 *   health: { ok: true, state: "ok", ms: 3 }, uptime_ms: 90_000, checked_at: "2026-11-26T12:01:30.000Z" }
 */
export const ProcessStatusSchema = Type.Object({
  slot: Type.String(),
  entry: ProcessEntrySchema,
  state: ProbeStateSchema,
  state_reason: Type.String(),
  health: Type.Optional(HealthReportSchema),
  uptime_ms: Type.Optional(Type.Number()),
  usage: Type.Optional(ProcessUsageSchema),
  checked_at: Type.String({ description: "ISO time these figures were taken" }),
});
/** @see ProcessStatusSchema */
export type ProcessStatus = Static<typeof ProcessStatusSchema>;

/**
 * `GET /api/v1/processes`.
 * @example
 * const body: ProcessList = { processes: [] }
 */
export const ProcessListSchema = Type.Object({ processes: Type.Array(ProcessStatusSchema) });
/** @see ProcessListSchema */
export type ProcessList = Static<typeof ProcessListSchema>;

/**
 * A configured model with where it is loaded now (core's `Controller.models()`).
 * @example
 * const model: ModelView = { id: "qwen", name: "Qwen 7B", path: "/m/q.gguf", gpu: "0", port: undefined, loaded_in: ["0"] }
 */
export const ModelViewSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  path: Type.String(),
  gpu: Type.Optional(Type.String({ description: "configured default slot" })),
  port: Type.Optional(Type.Integer()),
  loaded_in: Type.Array(Type.String(), { description: "slots it is loaded in now" }),
  parameter_count: Type.Optional(Type.String({ description: 'from the GGUF header, e.g. "7.6B"' })),
  quantization: Type.Optional(Type.String({ description: 'from the GGUF header, e.g. "Q4_K_M"' })),
});
/** @see ModelViewSchema */
export type ModelView = Static<typeof ModelViewSchema>;

/**
 * One configured model in `GET /api/v1/models`: the original controller's fields plus where
 * corral has it loaded.
 * @example
 * { id: "qwen", name: "Qwen 7B", path: "/m/q.gguf", status: "loaded", loaded: true, loaded_in: ["0"], … }
 */
export const ModelInfoSchema = Type.Object({
  ...ModelViewSchema.properties,
  status: Type.Union([Type.Literal("loaded"), Type.Literal("available")]),
  loaded: Type.Boolean(),
  description: Type.String(),
  parameter_count: Type.String(),
  quantization: Type.String(),
});
/** @see ModelInfoSchema */
export type ModelInfo = Static<typeof ModelInfoSchema>;

/**
 * `GET /api/v1/models`.
 * @example
 * const body: ModelList = { models: [] }
 */
export const ModelListSchema = Type.Object({ models: Type.Array(ModelInfoSchema) });
/** @see ModelListSchema */
export type ModelList = Static<typeof ModelListSchema>;

/**
 * The original controller's ModelStatus, filled from a registry entry.
 * @example
 * { model_id: "qwen", model_name: "Qwen 7B", status: "running", pid: 4242, port: 8081, server_url: "http://127.0.0.1:8081", … }
 */
export const ModelStatusSchema = Type.Object({
  model_id: Type.String(),
  model_name: Type.String(),
  status: Type.String(),
  loaded_at: Type.String(),
  pid: Type.Integer(),
  host: Type.Optional(Type.String()),
  port: Type.Integer(),
  server_url: Type.String(),
});
/** @see ModelStatusSchema */
export type ModelStatus = Static<typeof ModelStatusSchema>;

/**
 * `POST /api/v1/models/load`, once the server answers `/health` with 200.
 * @example
 * { success: true, model_id: "qwen", message: "loaded qwen in slot 0 …", status, slot: "0", ready_ms: 812, entry }
 */
export const LoadResponseSchema = Type.Object({
  success: Type.Boolean(),
  model_id: Type.String(),
  message: Type.String(),
  status: ModelStatusSchema,
  slot: Type.String(),
  ready_ms: Type.Number({ description: "ms from spawn to the first 200 from /health" }),
  entry: ProcessEntrySchema,
  placement: Type.Optional(PlacementReportSchema),
});
/** @see LoadResponseSchema */
export type LoadResponse = Static<typeof LoadResponseSchema>;

/**
 * `POST /api/v1/models/switch`: the slot's old model unloaded, the new one ready.
 * @example
 * { success: true, old_model_id: "qwen", new_model_id: "llama", message: "slot 0: qwen → llama in 900 ms", … }
 */
export const SwitchResponseSchema = Type.Object({
  success: Type.Boolean(),
  old_model_id: Type.Optional(Type.String({ description: "absent where the slot was empty" })),
  new_model_id: Type.String(),
  message: Type.String(),
  status: ModelStatusSchema,
  slot: Type.String(),
  ready_ms: Type.Number(),
  entry: ProcessEntrySchema,
});
/** @see SwitchResponseSchema */
export type SwitchResponse = Static<typeof SwitchResponseSchema>;

/**
 * An unload's outcome in the API's snake_case (`DELETE /api/v1/processes/:slot`).
 * @example
 * { slot: "0", pid: 4242, model_id: "qwen", signalled: true, escalated: false, ms: 40, port_freed: true, reason: "unload requested" }
 */
export const UnloadViewSchema = Type.Object({
  slot: Type.String(),
  pid: Type.Integer(),
  model_id: Type.String(),
  signalled: Type.Boolean({ description: "false when the process was already gone" }),
  escalated: Type.Boolean({ description: "SIGTERM was not enough and SIGKILL followed" }),
  ms: Type.Number(),
  port_freed: Type.Boolean({ description: "the port answered no more connections before unload returned" }),
  gpu_released: Type.Optional(
    Type.Boolean({ description: "GPU memory the PID held was seen released (absent: no GPU figures)" }),
  ),
  reason: Type.String(),
});
/** @see UnloadViewSchema */
export type UnloadView = Static<typeof UnloadViewSchema>;

/**
 * `POST /api/v1/models/unload`, the original controller's shape around {@link UnloadViewSchema}.
 * @example
 * { success: true, message: "unloaded qwen from slot 0 (pid 4242) in 40 ms", slot: "0", pid: 4242, … }
 */
export const UnloadResponseSchema = Type.Object({
  success: Type.Boolean(),
  message: Type.String(),
  ...UnloadViewSchema.properties,
});
/** @see UnloadResponseSchema */
export type UnloadResponse = Static<typeof UnloadResponseSchema>;

/**
 * One slot's outcome in `Controller.recover`.
 * @example
 * const r: RecoveredSlot = { slot: "0", pid: 4242, model_id: "qwen", outcome: "running", reason: "same process, /health ok" }
 */
export const RecoveredSlotSchema = Type.Object({
  slot: Type.String(),
  pid: Type.Integer(),
  model_id: Type.String(),
  outcome: Type.Union([
    Type.Literal("running"),
    Type.Literal("loading"),
    Type.Literal("unhealthy"),
    Type.Literal("removed"),
    Type.Literal("stopped"),
    Type.Literal("adopted"),
    Type.Literal("killed-duplicate"),
    Type.Literal("kept"),
  ]),
  reason: Type.String(),
});
/** @see RecoveredSlotSchema */
export type RecoveredSlot = Static<typeof RecoveredSlotSchema>;

/**
 * `GET /api/v1/health`: corral itself, in the original controller's health shape.
 * @example
 * { healthy: true, status: "running", message: "corral is running", uptime_seconds: 12.3 }
 */
export const ServiceHealthSchema = Type.Object({
  healthy: Type.Boolean(),
  status: Type.String({ description: '"running" while the server answers' }),
  message: Type.String(),
  uptime_seconds: Type.Number(),
});
/** @see ServiceHealthSchema */
export type ServiceHealth = Static<typeof ServiceHealthSchema>;
