/**
 * The shapes of what the registry reports (entries by slot, identity checks, kills, orphans and
 * their clean-up), as TypeBox schemas: the API declares them as its responses and the page
 * imports their static types. Only TypeBox here, so `@corral/core/views` stays free of Node and
 * Bun APIs.
 */
import { type Static, Type } from "@sinclair/typebox";
import { OrphanSchema, OrphanVerdictSchema, ProbeStateSchema } from "../process/views.ts";
import { ProcessEntrySchema } from "../store/schema.ts";

/**
 * `GET /api/v1/process-registry`, the original controller's shape: entries keyed by slot.
 * @example
 * { processes: { "0": { pid: 4242, model_id: "qwen", gpu_id: "0", port: 8081, status: "running", … } } }
 */
export const ProcessRegistrySchema = Type.Object({
  processes: Type.Record(Type.String(), ProcessEntrySchema, { description: "entries keyed by slot" }),
});
/** @see ProcessRegistrySchema */
export type ProcessRegistry = Static<typeof ProcessRegistrySchema>;

/**
 * `POST /api/v1/processes/:slot/verify`: whether the PID still belongs to the registered process.
 * @example
 * { slot: "0", entry, state: "running", reason: "same process", process: { pid: 4242, name: "llama-server" } }
 */
export const VerifyViewSchema = Type.Object({
  slot: Type.String(),
  entry: ProcessEntrySchema,
  state: ProbeStateSchema,
  reason: Type.String(),
  process: Type.Optional(
    Type.Object(
      {
        pid: Type.Integer(),
        name: Type.String(),
        exe: Type.Optional(Type.String()),
        start_time_ms: Type.Optional(Type.Number()),
        user: Type.Optional(Type.String()),
      },
      { description: "the process holding the PID now, where there is one" },
    ),
  ),
});
/** @see VerifyViewSchema */
export type VerifyView = Static<typeof VerifyViewSchema>;

/**
 * One process a kill stopped (`POST /api/v1/kill`).
 * @example
 * { pid: 4242, slot: "0", signalled: true, signal: "SIGTERM", escalated: false, ms: 40 }
 */
export const KilledViewSchema = Type.Object({
  pid: Type.Integer(),
  slot: Type.Optional(Type.String({ description: "the slot it was tracked in, if it was" })),
  signalled: Type.Boolean({ description: "false when it had already exited" }),
  signal: Type.Optional(Type.String({ description: "the strongest signal sent" })),
  escalated: Type.Optional(Type.Boolean()),
  ms: Type.Optional(Type.Number()),
});
/** @see KilledViewSchema */
export type KilledView = Static<typeof KilledViewSchema>;

/**
 * `POST /api/v1/kill`.
 * @example
 * const body: KillResponse = { killed: [{ pid: 4242, signalled: true }] }
 */
export const KillResponseSchema = Type.Object({ killed: Type.Array(KilledViewSchema) });
/** @see KillResponseSchema */
export type KillResponse = Static<typeof KillResponseSchema>;

/**
 * `GET /api/v1/orphans`.
 * @example
 * const body: OrphanList = { orphans: [] }
 */
export const OrphanListSchema = Type.Object({ orphans: Type.Array(OrphanSchema) });
/** @see OrphanListSchema */
export type OrphanList = Static<typeof OrphanListSchema>;

/**
 * `POST /api/v1/orphans/:pid/adopt`: the new entry and its slot.
 * @example
 * { slot: "0", entry: { pid: 4242, model_id: "qwen", adopted: true, … } }
 */
export const AdoptViewSchema = Type.Object({ slot: Type.String(), entry: ProcessEntrySchema });
/** @see AdoptViewSchema */
export type AdoptView = Static<typeof AdoptViewSchema>;

/**
 * `POST /api/v1/orphans/:pid/kill`.
 * @example
 * { pid: 4242, verdict: "ours", killed: true, signal: "SIGTERM", escalated: false, ms: 35 }
 */
export const OrphanKillViewSchema = Type.Object({
  pid: Type.Integer(),
  verdict: OrphanVerdictSchema,
  killed: Type.Boolean(),
  signal: Type.Optional(Type.String({ description: "the strongest signal sent" })),
  escalated: Type.Optional(Type.Boolean()),
  ms: Type.Optional(Type.Number()),
});
/** @see OrphanKillViewSchema */
export type OrphanKillView = Static<typeof OrphanKillViewSchema>;

/**
 * `POST /api/v1/cleanup-orphaned`, the original controller's shape.
 * @example
 * { success: true, orphaned_pids: [12346, 12347], killed_count: 2, message: "Cleaned up 2 orphaned processes" }
 */
export const CleanupOrphanedSchema = Type.Object({
  success: Type.Boolean({ description: "false when a kill that was attempted failed" }),
  orphaned_pids: Type.Array(Type.Integer(), { description: "every orphaned llama-server found" }),
  killed_count: Type.Integer(),
  message: Type.String(),
});
/** @see CleanupOrphanedSchema */
export type CleanupOrphaned = Static<typeof CleanupOrphanedSchema>;

/**
 * What a cleanup did with one PID (core's `CleanupResult`, in the API's snake_case).
 * @example
 * { pid: 4242, verdict: "ours", outcome: "killed", signal: "SIGTERM", escalated: false, ms: 35 }
 */
export const CleanupItemViewSchema = Type.Object({
  pid: Type.Integer(),
  verdict: Type.Union([OrphanVerdictSchema, Type.Literal("unknown")]),
  outcome: Type.Union(
    [Type.Literal("killed"), Type.Literal("left-foreign"), Type.Literal("not-orphan"), Type.Literal("failed")],
    { description: "killed | left-foreign | not-orphan | failed" },
  ),
  reason: Type.Optional(Type.String({ description: "why it was left alone, or why the kill failed" })),
  signal: Type.Optional(Type.String({ description: "the strongest signal sent" })),
  escalated: Type.Optional(Type.Boolean()),
  ms: Type.Optional(Type.Number()),
});
/** @see CleanupItemViewSchema */
export type CleanupItemView = Static<typeof CleanupItemViewSchema>;

/**
 * `POST /api/v1/orphans/cleanup`: one outcome per PID, the counts, and a sentence.
 * @example
 * { ok: true, message: "Cleaned up 1 orphaned process; left 1 foreign (pid 4243)", counts: { killed: 1, … }, results: […] }
 */
export const CleanupViewSchema = Type.Object({
  ok: Type.Boolean({ description: "false when a kill that was attempted failed" }),
  message: Type.String(),
  counts: Type.Object({
    killed: Type.Integer(),
    "left-foreign": Type.Integer(),
    "not-orphan": Type.Integer(),
    failed: Type.Integer(),
  }),
  results: Type.Array(CleanupItemViewSchema),
});
/** @see CleanupViewSchema */
export type CleanupView = Static<typeof CleanupViewSchema>;
