/**
 * What a configuration reload answers (`POST /api/v1/config/reload`, `corral reload`), as a
 * TypeBox schema: only TypeBox here, so `@corral/core/views` stays free of Node and Bun APIs.
 */
import { type Static, Type } from "@sinclair/typebox";
import { ReloadSummarySchema } from "../store/schema.ts";

/**
 * One server restarted by `reload --restart-changed`.
 * @example
 * const r: ReloadRestart = { slot: "0", model_id: "qwen", outcome: "restarted", pid: 4343 }
 */
export const ReloadRestartSchema = Type.Object({
  slot: Type.String(),
  model_id: Type.String(),
  outcome: Type.Union([Type.Literal("restarted"), Type.Literal("failed")]),
  pid: Type.Optional(Type.Integer()),
  error: Type.Optional(Type.String()),
});
/** @see ReloadRestartSchema */
export type ReloadRestart = Static<typeof ReloadRestartSchema>;

/**
 * The answer of a reload: what changed, which running servers are now stale, what was restarted.
 * @example
 * const body: ReloadResult = { file: "/h/corral.yaml", changed: ["webhooks"], added: ["llama-8b"], removed: [],
 *   changed_models: ["qwen"], stale: ["0"], restart_needed: [], restarted: [] }
 */
export const ReloadResultSchema = Type.Composite([
  ReloadSummarySchema,
  Type.Object({ restarted: Type.Array(ReloadRestartSchema) }),
]);
/** @see ReloadResultSchema */
export type ReloadResult = Static<typeof ReloadResultSchema>;
