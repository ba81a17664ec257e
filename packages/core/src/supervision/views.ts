/**
 * The shape of what the watcher reports about itself, as a TypeBox schema: the API declares it
 * as a response and the page imports its static type. Only TypeBox here.
 */
import { type Static, Type } from "@sinclair/typebox";

/**
 * `GET /api/v1/watcher`: whether the supervisor runs, and the latest error of its loop.
 * @example
 * { running: true, interval_ms: 5000, last_error: { where: "tick", code: "REGISTRY_CORRUPT", message: "…", at: "…" } }
 */
export const WatcherViewSchema = Type.Object({
  running: Type.Boolean({ description: "false when the server runs without a watcher" }),
  interval_ms: Type.Optional(Type.Integer()),
  last_error: Type.Optional(
    Type.Object(
      {
        where: Type.String({ description: "what the loop was doing: tick, history, status update, restart" }),
        code: Type.Optional(Type.String()),
        message: Type.String(),
        at: Type.String({ description: "ISO time" }),
      },
      { description: "the latest error of the watch loop; absent when there has been none" },
    ),
  ),
});
/** @see WatcherViewSchema */
export type WatcherView = Static<typeof WatcherViewSchema>;
