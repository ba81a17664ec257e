/**
 * The shapes of the usage history the API serves, as TypeBox schemas: the API declares them as
 * responses and the page imports their static types. Columns, not rows: each array holds one
 * value per time bucket, which is what a chart library plots without copying. Only TypeBox here.
 */
import { type Static, Type } from "@sinclair/typebox";

const Column = (description: string) => Type.Array(Type.Union([Type.Number(), Type.Null()]), { description });

/**
 * A moment on a usage chart worth a mark: a load, a restart, a crash, an unload.
 * @example
 * { t: 1764547200000, kind: "crash", reason: "exited with signal SIGKILL" }
 */
export const UsageMarkSchema = Type.Object({
  t: Type.Number({ description: "epoch ms" }),
  kind: Type.Union([Type.Literal("load"), Type.Literal("restart"), Type.Literal("crash"), Type.Literal("unload")]),
  event: Type.String({ description: "the history event it comes from" }),
  reason: Type.Optional(Type.String()),
});
/** @see UsageMarkSchema */
export type UsageMark = Static<typeof UsageMarkSchema>;

/**
 * `GET /api/v1/processes/:slot/usage`: one slot's samples, averaged per `step_ms` bucket.
 * @example
 * { slot: "0", since: 1764547200000, until: 1764550800000, step_ms: 10000, t: [1764547200000], cpu_percent: [3.5],
 *   rss_bytes: [81920000], gpu_memory_mib: [null], requests_per_s: [0.2], tokens_per_second: [41.5], restarts: [0], marks: [] }
 */
export const UsageSeriesSchema = Type.Object({
  slot: Type.String(),
  since: Type.Number({ description: "epoch ms of the first bucket asked for" }),
  until: Type.Number({ description: "epoch ms the range ends (now)" }),
  step_ms: Type.Integer({ minimum: 1, description: "width of one bucket" }),
  t: Type.Array(Type.Number(), { description: "start of each bucket that has samples, epoch ms" }),
  cpu_percent: Column("CPU, percent of one core (average of the bucket)"),
  rss_bytes: Column("resident memory, bytes"),
  gpu_memory_mib: Column("GPU memory of the process on all its GPUs, MiB; null without GPU figures"),
  requests_per_s: Column("requests the gateway finished per second; null without a gateway"),
  tokens_per_second: Column("speed of the last generation the gateway saw; null when none"),
  restarts: Column("restarts of the slot's model so far"),
  marks: Type.Array(UsageMarkSchema, { description: "loads, restarts, crashes and unloads in the range" }),
});
/** @see UsageSeriesSchema */
export type UsageSeries = Static<typeof UsageSeriesSchema>;

/**
 * `GET /api/v1/gpus/usage`: per GPU, the memory each process held over time, on one time axis.
 * @example
 * { since: 0, until: 1, step_ms: 60000, gpus: [{ index: 0, t: [0], series: [{ label: "slot 0", slot: "0", mib: [5120] }] }] }
 */
export const GpuUsageSchema = Type.Object({
  since: Type.Number(),
  until: Type.Number(),
  step_ms: Type.Integer({ minimum: 1 }),
  gpus: Type.Array(
    Type.Object({
      index: Type.Integer({ minimum: 0 }),
      t: Type.Array(Type.Number(), { description: "start of each bucket, epoch ms" }),
      series: Type.Array(
        Type.Object({
          label: Type.String({ description: '"slot 0" for a tracked server, "pid 4242" for any other process' }),
          slot: Type.Optional(Type.String()),
          pid: Type.Optional(Type.Integer()),
          mib: Column("GPU memory held in each bucket, MiB; null where the process held none"),
        }),
      ),
    }),
  ),
});
/** @see GpuUsageSchema */
export type GpuUsage = Static<typeof GpuUsageSchema>;
