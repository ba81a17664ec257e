import {
  AdoptViewSchema,
  CleanupViewSchema,
  cleanupView,
  OrphanKillViewSchema,
  OrphanListSchema,
  publicEntry,
  slotKey,
} from "@corral/core";
import { Elysia, t } from "elysia";
import { JSON_BODY } from "../body.ts";
import type { RouteDeps } from "../deps.ts";
import { ModelId, Pid, Slot } from "../schemas.ts";

const PidParams = t.Object({ pid: Pid });

/**
 * Orphans: llama-servers nobody tracks, with evidence; adopt one into the registry or kill it.
 * @example
 * app.use(orphanRoutes(deps))
 */
export function orphanRoutes({ controller }: Pick<RouteDeps, "controller">) {
  return new Elysia({ prefix: "/api/v1", detail: { tags: ["orphans"] } })
    .get("/orphans", async () => ({ orphans: await controller.findOrphans() }), {
      response: OrphanListSchema,
      detail: { summary: "Running llama-servers the registry does not track, with evidence and a verdict" },
    })
    .post(
      "/orphans/:pid/adopt",
      async ({ params, body }) => {
        const entry = await controller.adopt(params.pid, {
          ...(body.slot !== undefined ? { slot: slotKey(body.slot) } : {}),
          ...(body.model_id !== undefined ? { modelId: body.model_id } : {}),
          ...(body.include_foreign ? { includeForeign: true } : {}),
        });
        return { slot: slotKey(entry.gpu_id), entry: publicEntry(entry) };
      },
      {
        params: PidParams,
        ...JSON_BODY,
        body: t.Object({
          slot: t.Optional(Slot),
          model_id: t.Optional(ModelId),
          include_foreign: t.Optional(
            t.Boolean({
              description: "adopt another user's or home's server",
              error: "include_foreign: true or false",
            }),
          ),
        }),
        response: AdoptViewSchema,
        detail: { summary: "Track an orphan from now on (slot from its environment unless given)" },
      },
    )
    .post(
      "/orphans/:pid/kill",
      async ({ params: { pid }, query, request, server }) => {
        server?.timeout(request, 0);
        const { verdict, tree } = await controller.killOrphan(pid, {
          force: query.force,
          includeForeign: query.include_foreign,
          reason: "orphan kill requested",
        });
        return {
          pid,
          verdict: verdict ?? "likely-ours",
          killed: true,
          ...(tree ? { signal: tree.signal, escalated: tree.escalated, ms: tree.ms } : {}),
        };
      },
      {
        params: PidParams,
        query: t.Object({
          force: t.Optional(t.Boolean({ default: false, error: "force: true or false" })),
          include_foreign: t.Optional(t.Boolean({ default: false, error: "include_foreign: true or false" })),
        }),
        response: OrphanKillViewSchema,
        detail: { summary: "Kill one orphan (its whole tree); foreign ones only with include_foreign" },
      },
    )
    .post(
      "/orphans/cleanup",
      async ({ body, request, server }) => {
        server?.timeout(request, 0);
        const results = await controller.cleanupOrphans({
          force: body.force,
          includeForeign: body.include_foreign,
          ...(body.pids ? { pids: body.pids } : {}),
        });
        return cleanupView(results);
      },
      {
        ...JSON_BODY,
        body: t.Object({
          pids: t.Optional(t.Array(Pid, { maxItems: 4096, description: "only these orphans @default every one" })),
          force: t.Optional(t.Boolean({ error: "force: true or false" })),
          include_foreign: t.Optional(t.Boolean({ error: "include_foreign: true or false" })),
        }),
        response: CleanupViewSchema,
        detail: {
          summary: "Kill orphans (every one that is ours or likely ours, or just pids); an outcome per PID",
        },
      },
    );
}
