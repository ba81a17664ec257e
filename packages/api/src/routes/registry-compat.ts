import {
  CleanupOrphanedSchema,
  type ProcessEntry,
  ProcessRegistrySchema,
  publicEntry,
  summarizeCleanup,
} from "@corral/core";
import { Elysia, t } from "elysia";
import type { RouteDeps } from "../deps.ts";
import { Force } from "../schemas.ts";

/**
 * The original controller's registry endpoints, same paths and shapes, so its clients keep working.
 * @example
 * app.use(registryCompatRoutes(deps))
 */
export function registryCompatRoutes({ controller }: Pick<RouteDeps, "controller">) {
  return new Elysia({ prefix: "/api/v1", detail: { tags: ["compat"] } })
    .get(
      "/process-registry",
      async () => {
        const processes: Record<string, ProcessEntry> = {};
        for (const { slot, entry } of await controller.entries()) processes[slot] = publicEntry(entry);
        return { processes };
      },
      { response: ProcessRegistrySchema, detail: { summary: "Every registered process, keyed by slot" } },
    )
    .post(
      "/cleanup-orphaned",
      async ({ query: { force, include_foreign }, request, server }) => {
        server?.timeout(request, 0);
        const results = await controller.cleanupOrphans({ force, includeForeign: include_foreign });
        const { ok, message, counts } = summarizeCleanup(results);
        return {
          success: ok,
          orphaned_pids: results.filter((r) => r.outcome !== "not-orphan").map((r) => r.pid),
          killed_count: counts.killed,
          message,
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
