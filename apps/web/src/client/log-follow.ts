/** Following a slot's log over the API's `follow=true` event stream. */
import type { LogBatch } from "@corral/core/views";
import type { ApiClient } from "./api.ts";
import type { LogSink } from "./dialogs.ts";
import { openEventStream, type StreamState } from "./sse.ts";

/**
 * Follows a slot's log through `GET /api/v1/logs?follow=true`: each connection's first frame is
 * the tail (it replaces the text), later frames are batches of new lines; an `error` frame
 * carries the API's `{ error }`. Reconnects with back-off like the event stream.
 * @example
 * const follower = followLog(api, "0", sink); follower.close()
 */
export function followLog(api: ApiClient, slot: string, sink: LogSink, lines = 200): { close(): void } {
  let fresh = true;
  return openEventStream({
    url: `/api/v1/logs?gpu_id=${encodeURIComponent(slot)}&lines=${lines}&follow=true`,
    request: api.request,
    onState(s) {
      if (s.kind === "open") fresh = true;
      sink.status(describe(s));
    },
    onEvent(message) {
      if (message.event === "error")
        return sink.status(`The log cannot be followed: ${errorMessage(message.data) ?? message.data}`);
      sink.lines((JSON.parse(message.data) as LogBatch).lines, fresh);
      fresh = false;
    },
  });
}

function describe(s: StreamState): string {
  if (s.kind === "open") return "Following";
  if (s.kind === "waiting") return `Disconnected (${s.why}); retrying in ${Math.round(s.retryInMs / 1000)} s`;
  if (s.kind === "unauthorized") return "Not signed in";
  return s.kind === "connecting" ? "Connecting…" : "";
}

/** The message of an `error` frame's `{ error: { code, message } }`. */
function errorMessage(data: string): string | undefined {
  try {
    return (JSON.parse(data) as { error?: { message?: string } }).error?.message;
  } catch {
    return undefined;
  }
}
