import { CleanupOrphanedSchema, type ProcessEntry, ProcessRegistrySchema } from "@corral/core";
import { Elysia, t } from "elysia";
import type { RouteDeps } from "../deps.ts";
import { Force } from "../schemas.ts";

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
        const processes: Record<string, ProcessEntry> = {};
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
