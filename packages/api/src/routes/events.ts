import { Elysia } from "elysia";
import type { EventFeed, RouteDeps } from "../deps.ts";
import { sseResponse } from "../sse.ts";

/**
 * `GET /api/v1/events`: Server-Sent Events, one `data:` frame (a history event as JSON) per
 * state change as it happens, and a heartbeat comment every `heartbeatMs`. The subscription
 * ends when the client disconnects.
 * @example
 * app.use(eventRoutes(deps))
 */
export function eventRoutes({
  controller,
  supervisor,
  heartbeatMs,
  streams,
}: Pick<RouteDeps, "controller" | "supervisor" | "heartbeatMs" | "streams">) {
  // The supervisor relays the registry's events and those other processes (the CLI) append to
  // the history; subscribing to both would deliver this process's events twice.
  const feed: EventFeed = supervisor ?? controller;
  let sequence = 0;
  return new Elysia({ prefix: "/api/v1", detail: { tags: ["events"] } }).get(
    "/events",
    ({ request, server }) => {
      server?.timeout(request, 0);
      return sseResponse(request, (send) => feed.subscribe((event) => send({ data: event, id: String(++sequence) })), {
        heartbeatMs,
        streams,
      });
    },
    {
      detail: {
        summary: "Live events (text/event-stream): every registry and supervisor event as it happens",
        responses: {
          200: { description: "an event stream", content: { "text/event-stream": { schema: { type: "string" } } } },
        },
      },
    },
  );
}
