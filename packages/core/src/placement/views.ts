/**
 * What placement reports, as TypeBox schemas (the API's load response carries it; the page
 * imports the types). Only TypeBox here, so `@corral/core/views` stays free of Node and Bun APIs.
 */
import { type Static, Type } from "@sinclair/typebox";

/**
 * One GPU of a load's set, checked: what it needs and what it has free.
 * @example
 * const g: GpuFit = { gpu: 0, need_mib: 21914, free_mib: 9421, fits: false, state: "occupied" }
 */
export const GpuFitSchema = Type.Object({
  gpu: Type.Integer(),
  need_mib: Type.Number(),
  free_mib: Type.Optional(Type.Number({ description: "absent where the board reports no memory figures" })),
  fits: Type.Boolean(),
  state: Type.Union([Type.Literal("idle"), Type.Literal("ours"), Type.Literal("occupied"), Type.Literal("unknown")]),
});
/** @see GpuFitSchema */
export type GpuFit = Static<typeof GpuFitSchema>;

/**
 * What placement did before a load (`placement` of a load's result).
 * @example
 * const r: PlacementReport = { checked: false, slot: "0", message: "no GPU figures (nvidia-smi): no placement check" }
 */
export const PlacementReportSchema = Type.Object({
  checked: Type.Boolean({ description: "false: no check was made (no GPU figures, an unreadable model file)" }),
  slot: Type.String(),
  message: Type.String(),
  fits: Type.Optional(Type.Boolean()),
  forced: Type.Optional(Type.Boolean({ description: "it did not fit and force loaded it anyway" })),
  source: Type.Optional(
    Type.Union([Type.Literal("estimate"), Type.Literal("measured")], {
      description: "measured: figures of an earlier load (plus a margin) stood in for the estimate",
    }),
  ),
  gpus: Type.Optional(Type.Array(GpuFitSchema)),
  waited: Type.Optional(
    Type.Object(
      { pids: Type.Array(Type.Integer()), ms: Type.Number(), released: Type.Boolean() },
      { description: "memory of servers this home stopped that was still held when the load began" },
    ),
  ),
  timeout_ms: Type.Optional(Type.Number({ description: "load timeout from the last measured load time" })),
  expected_ready_ms: Type.Optional(
    Type.Number({ description: "spawn → ready of the last load of this model with these arguments" }),
  ),
});
/** @see PlacementReportSchema */
export type PlacementReport = Static<typeof PlacementReportSchema>;
