import { Elysia, t } from "elysia";
import type { RouteDeps } from "../deps.ts";
import { Force, ProcessEntrySchema } from "../schemas.ts";

/**
 * `GET /api/v1/process-registry`, the original controller's shape.
 * @example
 * { processes: { "0": { pid: 4242, model_id: "qwen", gpu_id: "0", port: 8081, status: "running", … } } }
 */
export const ProcessRegistrySchema = t.Object({
  processes: t.Record(t.String(), ProcessEntrySchema, { description: "entries keyed by slot" }),
});

/**
 * `POST /api/v1/cleanup-orphaned`, the original controller's shape.
 * @example
 * { success: true, orphaned_pids: [12346, 12347], killed_count: 2, message: "Cleaned up 2 orphaned processes" }
 */
export const CleanupOrphanedSchema = t.Object({
  success: t.Boolean({ description: "false when a kill that was attempted failed" }),
  orphaned_pids: t.Array(t.Integer(), { description: "every orphaned llama-server found" }),
  killed_count: t.Integer(),
  message: t.String(),
});

/**
 * The original controller's registry endpoints, same paths and shapes, so its clients keep working.
 * @example
 * app.use(registryCompatRoutes(deps))
 */
export function registryCompatRoutes({ controller }: Pick<RouteDeps, "controller">) {
  const { registry } = controller;
  return new Elysia({ prefix: "/api/v1", detail: { tags: ["compat"] } })
    .get(
      "/process-registry",
      async () => {
        const processes: Record<string, (typeof ProcessEntrySchema)["static"]> = {};
        for (const { slot, entry } of await registry.list()) processes[slot] = entry;
        return { processes };
      },
      { response: ProcessRegistrySchema, detail: { summary: "Every registered process, keyed by slot" } },
    )
    .post(
      "/cleanup-orphaned",
      async ({ query: { force, include_foreign }, request, server }) => {
        server?.timeout(request, 0);
        const results = await registry.cleanupOrphans({ force, includeForeign: include_foreign });
        const killed = results.filter((r) => r.killed);
        const skipped = results.filter((r) => !r.killed && r.verdict === "foreign" && !include_foreign);
        const failed = results.filter((r) => !r.killed && !skipped.includes(r));
        const parts = [`Cleaned up ${killed.length} orphaned process${killed.length === 1 ? "" : "es"}`];
        if (skipped.length)
          parts.push(`left ${skipped.length} foreign (pids ${pids(skipped)}; pass include_foreign=true)`);
        if (failed.length)
          parts.push(`failed on ${failed.map((r) => `${r.pid} (${r.reason ?? "unknown"})`).join(", ")}`);
        return {
          success: failed.length === 0,
          orphaned_pids: results.map((r) => r.pid),
          killed_count: killed.length,
          message: parts.join("; "),
        };
      },
      {
        query: t.Object({
          force: t.Optional(Force),
          include_foreign: t.Optional(t.Boolean({ default: false, error: "include_foreign: true or false" })),
        }),
        response: CleanupOrphanedSchema,
        detail: { summary: "Kill every orphaned llama-server that is ours or likely ours" },
      },
    );
}

function pids(results: ReadonlyArray<{ pid: number }>): string {
  return results.map((r) => r.pid).join(", ");
}
