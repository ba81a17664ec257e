import { CorralError, NotOurProcessError, slotKey } from "@corral/core";
import { Elysia, t } from "elysia";
import { JSON_BODY } from "../body.ts";
import type { RouteDeps } from "../deps.ts";
import { ModelId, Pid, ProcessEntrySchema, Slot } from "../schemas.ts";

/**
 * An untracked llama-server with the evidence about it (core's Orphan).
 * @example
 * { pid: 4242, ppid: 1, user: "me", model_path: "/m/q.gguf", port: 8081, verdict: "likely-ours", reasons: ["…"], … }
 */
export const OrphanSchema = t.Object({
  pid: t.Integer(),
  ppid: t.Integer(),
  uid: t.Optional(t.Integer()),
  user: t.Optional(t.String()),
  executable: t.Optional(t.String()),
  command_line: t.Array(t.String()),
  model_path: t.Optional(t.String()),
  port: t.Optional(t.Integer()),
  host: t.Optional(t.String()),
  started_at: t.Optional(t.String()),
  marker: t.Optional(t.Object({ home_id: t.Optional(t.String()), instance_id: t.Optional(t.String()) })),
  marker_readable: t.Boolean(),
  verdict: t.String({ description: "ours | likely-ours | foreign" }),
  reasons: t.Array(t.String()),
});

const OrphanKillSchema = t.Object({
  pid: t.Integer(),
  verdict: t.String(),
  killed: t.Boolean(),
  signal: t.Optional(t.String({ description: "the strongest signal sent" })),
  escalated: t.Optional(t.Boolean()),
  ms: t.Optional(t.Number()),
});

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
      response: t.Object({ orphans: t.Array(OrphanSchema) }),
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
        response: t.Object({ slot: t.String(), entry: ProcessEntrySchema }),
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
        response: OrphanKillSchema,
        detail: { summary: "Kill one orphan (its whole tree); foreign ones only with include_foreign" },
      },
    );
}
