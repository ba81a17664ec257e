import { InvalidInputError, type KilledView, type KillOutcome, KillResponseSchema } from "@corral/core";
import { Elysia, t } from "elysia";
import { JSON_BODY } from "../body.ts";
import type { RouteDeps } from "../deps.ts";
import { Name, Pid } from "../schemas.ts";

/**
 * `POST /api/v1/kill` with `{ "pid" }` or `{ "name" }`: the users' own "kill it by pid or by
 * name", under core's one kill rule: a tracked model goes through its slot's unload, an untracked
 * llama-server only as an orphan, foreign ones (another user's, another corral home's) only with
 * `include_foreign`, anything that is not a llama-server never (403). A blank name is 422.
 * @example
 * app.use(killRoutes(deps))
 */
export function killRoutes({ controller }: Pick<RouteDeps, "controller">) {
  return new Elysia({ prefix: "/api/v1", detail: { tags: ["processes"] } }).post(
    "/kill",
    async ({ body, request, server }) => {
      if ((body.pid === undefined) === (body.name === undefined)) {
        throw new InvalidInputError("body", 'give exactly one of "pid" and "name"');
      }
      server?.timeout(request, 0);
      const options = {
        force: body.force,
        includeForeign: body.include_foreign,
        reason: "kill requested through the API",
      };
      const selector = body.pid !== undefined ? { pid: body.pid } : { name: body.name ?? "" };
      return { killed: (await controller.kill(selector, options)).map(render) };
    },
    {
      ...JSON_BODY,
      body: t.Object({
        pid: t.Optional(Pid),
        name: t.Optional(Name),
        force: t.Optional(t.Boolean({ error: "force: true or false" })),
        include_foreign: t.Optional(t.Boolean({ error: "include_foreign: true or false" })),
      }),
      response: KillResponseSchema,
      detail: { summary: "Kill a llama-server by PID, or every one with a model id or executable name" },
    },
  );
}

function render(o: KillOutcome): KilledView {
  return {
    pid: o.pid,
    ...(o.slot !== undefined ? { slot: o.slot } : {}),
    signalled: o.signalled,
    ...(o.tree ? { signal: o.tree.signal, escalated: o.tree.escalated, ms: o.tree.ms } : {}),
  };
}
