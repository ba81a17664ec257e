import { type LogBatch, type LogTail, LogTailSchema } from "@corral/core";
import { Elysia, t } from "elysia";
import type { RouteDeps } from "../deps.ts";
import { GpuIdQuery, Lines, toSlot } from "../schemas.ts";
import { sseResponse } from "../sse.ts";

/**
 * `GET /api/v1/logs?gpu_id=&lines=`: the original controller's `{ logs, total_lines }`. With
 * `follow=true` it is an event stream instead: the last `lines` lines as one frame, then each
 * batch of new lines as it is written (`{ "lines": [...] }` per frame).
 * @example
 * app.use(logRoutes(deps))
 */
export function logRoutes({
  controller,
  heartbeatMs,
  streams,
}: Pick<RouteDeps, "controller" | "heartbeatMs" | "streams">) {
  return new Elysia({ prefix: "/api/v1", detail: { tags: ["compat"] } }).get(
    "/logs",
    // Not async: a Promise of the tail or a Response (the stream), which Elysia types apart.
    ({ query, request, server }) => {
      const slot = toSlot(query.gpu_id ?? "0");
      const lines = query.lines ?? 100;
      if (!query.follow) return logTail(controller, slot, lines);
      server?.timeout(request, 0);
      return sseResponse(
        request,
        (send, close) => {
          const stop = new AbortController();
          // The tail comes through the follow itself, so no line falls between the two.
          controller
            .followLogs(slot, (batch) => send({ data: { lines: batch } satisfies LogBatch }), stop.signal, {
              tail: lines,
            })
            .catch((error: Error) => {
              send({
                event: "error",
                data: { error: { code: (error as { code?: string }).code ?? "INTERNAL", message: error.message } },
              });
              close();
            });
          return () => stop.abort();
        },
        { heartbeatMs, streams },
      );
    },
    {
      query: t.Object({
        gpu_id: t.Optional(GpuIdQuery),
        lines: t.Optional(Lines),
        follow: t.Optional(t.Boolean({ default: false, error: "follow: true or false" })),
      }),
      // The event stream is a Response, which Elysia passes on unchecked (its frames are LogBatch);
      // a declared response replaces `detail.responses` in the OpenAPI document, so the stream is
      // described in words.
      response: LogTailSchema,
      detail: {
        summary:
          "The last lines of a slot's llama-server log (gpu_id defaults to 0, lines to 100); follow=true streams",
        description:
          "With follow=true the answer is text/event-stream instead: the last `lines` lines as one frame, then each " +
          "batch of new lines, every frame's data `{ lines: string[] }`; an `error` event carries `{ error }`.",
      },
    },
  );
}

async function logTail(controller: RouteDeps["controller"], slot: string, lines: number): Promise<LogTail> {
  const tail = await controller.logs(slot, lines);
  return { logs: tail, total_lines: tail.length };
}
