import {
  EntryNotFoundError,
  ProcessListSchema,
  type ProcessStatus,
  ProcessStatusSchema,
  publicEntry,
  slotKey,
  UnloadViewSchema,
  VerifyViewSchema,
} from "@corral/core";
import { Elysia, t } from "elysia";
import type { RouteDeps } from "../deps.ts";
import { Slot, unloadBody } from "../schemas.ts";

const SlotParams = t.Object({ slot: Slot });

/**
 * The JSON body of `GET /processes`, made once per list of rows. With a supervisor every
 * request between two ticks gets the same array; checking it against the response schema and
 * serializing it again for each request took ~150 µs with 16 rows (~10 µs like this), which
 * held the server near 6,000 requests/s on 2 cores and churned its memory (`bun run bench`).
 * Returning a Response skips Elysia's response check, so the check is in the tests instead:
 * every api test that reads this route validates the body against `ProcessListSchema`, whose
 * static type is the `ProcessStatus` core builds the rows as (the schema stays declared here for
 * the OpenAPI document).
 */
const bodies = new WeakMap<readonly ProcessStatus[], string>();

function processesResponse(rows: readonly ProcessStatus[]): Response {
  let body = bodies.get(rows);
  if (body === undefined) {
    // A server's API key (server_api_key: auto) stays in the registry: never in a response.
    body = JSON.stringify({ processes: rows.map((r) => ({ ...r, entry: publicEntry(r.entry) })) });
    bodies.set(rows, body);
  }
  return new Response(body, { headers: { "content-type": "application/json;charset=utf-8" } });
}

/**
 * corral's own view of tracked processes: live status of each, identity check, unload.
 * With a supervisor the rows come from its latest tick (at most a second old), so many
 * browsers polling cost one process-table scan and one serialization.
 * @example
 * app.use(processRoutes(deps))
 */
export function processRoutes({ controller, supervisor }: Pick<RouteDeps, "controller" | "supervisor">) {
  const statuses = () => (supervisor ? supervisor.statuses(1000) : controller.status());
  return new Elysia({ prefix: "/api/v1", detail: { tags: ["processes"] } })
    .get("/processes", async () => processesResponse(await statuses()), {
      response: ProcessListSchema,
      detail: { summary: "Every tracked process with live status, health, uptime, CPU, memory and GPU memory" },
    })
    .get(
      "/processes/:slot",
      async ({ params }) => {
        const slot = slotKey(params.slot);
        const row = (await statuses()).find((s) => s.slot === slot);
        if (!row) throw new EntryNotFoundError(slot);
        return { ...row, entry: publicEntry(row.entry) };
      },
      { params: SlotParams, response: ProcessStatusSchema, detail: { summary: "One tracked process" } },
    )
    .post(
      "/processes/:slot/verify",
      async ({ params }) => {
        const { slot, entry, probe } = await controller.verify(slotKey(params.slot));
        const p = probe.process;
        return {
          slot,
          entry: publicEntry(entry),
          state: probe.state,
          reason: probe.reason,
          ...(p
            ? {
                process: {
                  pid: p.pid,
                  name: p.name,
                  ...(p.exe !== undefined ? { exe: p.exe } : {}),
                  ...(p.startTimeMs !== undefined ? { start_time_ms: p.startTimeMs } : {}),
                  ...(p.user !== undefined ? { user: p.user } : {}),
                },
              }
            : {}),
        };
      },
      {
        params: SlotParams,
        response: VerifyViewSchema,
        detail: { summary: "Check that the PID still belongs to the process that was registered" },
      },
    )
    .delete(
      "/processes/:slot",
      async ({ params, query, request, server }) => {
        server?.timeout(request, 0);
        return unloadBody(await controller.unload(slotKey(params.slot), { force: query.force }));
      },
      {
        params: SlotParams,
        query: t.Object({ force: t.Optional(t.Boolean({ default: false, error: "force: true or false" })) }),
        response: UnloadViewSchema,
        detail: { summary: "Unload (force: SIGKILL at once)" },
      },
    );
}
