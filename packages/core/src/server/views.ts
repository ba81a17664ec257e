/**
 * The shapes of what one llama-server and the GPUs report, as TypeBox schemas: the API declares
 * them as its responses and the page imports their static types. Only TypeBox here, so
 * `@corral/core/views` stays free of Node and Bun APIs.
 */
import { type Static, Type } from "@sinclair/typebox";

/**
 * `/health` of one server, as seen now.
 * @example
 * const report: HealthReport = { ok: false, state: "loading", httpStatus: 503, ms: 2.1 }
 */
export const HealthReportSchema = Type.Object({
  ok: Type.Boolean(),
  state: Type.Union([Type.Literal("ok"), Type.Literal("loading"), Type.Literal("error"), Type.Literal("unreachable")], {
    description: "ok | loading | error | unreachable",
  }),
  httpStatus: Type.Optional(Type.Integer()),
  ms: Type.Number(),
  error: Type.Optional(Type.String()),
});
/** @see HealthReportSchema */
export type HealthReport = Static<typeof HealthReportSchema>;

/**
 * One GPU as nvidia-smi reports it.
 * @example
 * const gpu: GpuInfo = { index: 0, name: "NVIDIA H100", memory_total_mib: 81_559, memory_used_mib: 600 }
 */
export const GpuInfoSchema = Type.Object({
  index: Type.Integer(),
  name: Type.String(),
  memory_total_mib: Type.Optional(
    Type.Number({ description: 'absent where nvidia-smi says "[N/A]" (unified-memory boards such as GB10 do)' }),
  ),
  memory_used_mib: Type.Optional(Type.Number()),
  uuid: Type.Optional(Type.String({ description: '"GPU-…", where it was queried' })),
});
/** @see GpuInfoSchema */
export type GpuInfo = Static<typeof GpuInfoSchema>;

/**
 * One process holding memory on one GPU. A process on several GPUs appears once per GPU.
 * @example
 * const p: GpuProcess = { pid: 4242, used_memory_mib: 512, gpu_index: 0 }
 */
export const GpuProcessSchema = Type.Object({
  pid: Type.Integer({
    description: "as the driver sees it: in a container without the host's PID namespace this is the host PID",
  }),
  used_memory_mib: Type.Number({
    description:
      '0 where nvidia-smi says "[N/A]" (Windows WDDM, some MIG setups): the process is there, its figure is not',
  }),
  gpu_index: Type.Optional(Type.Integer()),
  gpu_uuid: Type.Optional(Type.String()),
});
/** @see GpuProcessSchema */
export type GpuProcess = Static<typeof GpuProcessSchema>;

/**
 * Everything nvidia-smi told in one query.
 * @example
 * const snapshot: GpuSnapshot = { gpus: [], processes: [], taken_at: "2026-11-26T12:00:00.000Z" }
 */
export const GpuSnapshotSchema = Type.Object({
  gpus: Type.Array(GpuInfoSchema),
  processes: Type.Array(GpuProcessSchema),
  taken_at: Type.String({ description: "ISO time of the query" }),
});
/** @see GpuSnapshotSchema */
export type GpuSnapshot = Static<typeof GpuSnapshotSchema>;

/**
 * One GPU with the tracked slots on it and the processes holding its memory (`GET /api/v1/gpus`).
 * @example
 * const card: GpuCard = { index: 0, name: "H100", slots: ["0"], processes: [{ pid: 4242, used_memory_mib: 512, slot: "0" }] }
 */
export const GpuCardSchema = Type.Object({
  ...GpuInfoSchema.properties,
  slots: Type.Array(Type.String(), { description: "tracked slots that include this GPU" }),
  processes: Type.Array(
    Type.Object({
      pid: Type.Integer(),
      used_memory_mib: Type.Number(),
      slot: Type.Optional(Type.String({ description: "set when corral tracks the PID" })),
    }),
  ),
});
/** @see GpuCardSchema */
export type GpuCard = Static<typeof GpuCardSchema>;

/**
 * Every GPU with its slots, or `available: false` where nvidia-smi is missing (`GET /api/v1/gpus`).
 * @example
 * const none: GpusView = { available: false, gpus: [] }
 */
export const GpusViewSchema = Type.Object({
  available: Type.Boolean({ description: "false where nvidia-smi is missing" }),
  taken_at: Type.Optional(Type.String()),
  gpus: Type.Array(GpuCardSchema),
});
/** @see GpusViewSchema */
export type GpusView = Static<typeof GpusViewSchema>;

/**
 * The last lines of a slot's log, in the original controller's shape (`GET /api/v1/logs`).
 * @example
 * const tail: LogTail = { logs: ["main: server is listening"], total_lines: 1 }
 */
export const LogTailSchema = Type.Object({
  logs: Type.Array(Type.String()),
  total_lines: Type.Integer(),
});
/** @see LogTailSchema */
export type LogTail = Static<typeof LogTailSchema>;

/**
 * One frame of a followed log (`GET /api/v1/logs?follow=true`): the tail first, then each batch.
 * @example
 * const frame: LogBatch = { lines: ["slot 0: prompt done"] }
 */
export const LogBatchSchema = Type.Object({ lines: Type.Array(Type.String()) });
/** @see LogBatchSchema */
export type LogBatch = Static<typeof LogBatchSchema>;
