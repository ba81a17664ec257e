import {
  AdoptViewSchema,
  CorralError,
  NotOurProcessError,
  OrphanKillViewSchema,
  OrphanListSchema,
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
  const { registry } = controller;
  return new Elysia({ prefix: "/api/v1", detail: { tags: ["orphans"] } })
    .get("/orphans", async () => ({ orphans: await registry.findOrphans() }), {
      response: OrphanListSchema,
      detail: { summary: "Running llama-servers the registry does not track, with evidence and a verdict" },
    })
    .post(
      "/orphans/:pid/adopt",
      async ({ params, body }) => {
        const entry = await controller.adopt(params.pid, {
          ...(body.slot !== undefined ? { slot: slotKey(body.slot) } : {}),
          ...(body.model_id !== undefined ? { modelId: body.model_id } : {}),
        });
        return { slot: slotKey(entry.gpu_id), entry };
      },
      {
        params: PidParams,
        ...JSON_BODY,
        body: t.Object({ slot: t.Optional(Slot), model_id: t.Optional(ModelId) }),
        response: AdoptViewSchema,
        detail: { summary: "Track an orphan from now on (slot from its environment unless given)" },
      },
    )
    .post(
      "/orphans/:pid/kill",
      async ({ params: { pid }, query, request, server }) => {
        server?.timeout(request, 0);
        const orphan = (await registry.findOrphans()).find((o) => o.pid === pid);
        if (!orphan) {
          throw new CorralError(
            "NOT_FOUND",
            `pid ${pid} is not an orphaned llama-server (it is tracked, gone, or not a llama-server)`,
          );
        }
        if (orphan.verdict === "foreign" && !query.include_foreign) {
          throw new NotOurProcessError(
            pid,
            `${orphan.reasons.join("; ")}; pass include_foreign=true to kill it anyway`,
          );
        }
        const { tree } = await registry.killByPid(pid, {
          force: query.force,
          includeForeign: true,
          reason: `orphan kill requested (${orphan.verdict})`,
        });
        return {
          pid,
          verdict: orphan.verdict,
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
    );
}
