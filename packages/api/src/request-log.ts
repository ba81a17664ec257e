import { Elysia } from "elysia";
import type { Logger } from "./deps.ts";

/**
 * One line per request: method, path (never the query, which may carry a token), status and
 * time taken. 5xx are errors, 4xx warnings, the rest info.
 * @example
 * new Elysia().use(requestLog((level, line) => console.log(level, line)))
 */
export function requestLog(logger: Logger) {
  const started = new WeakMap<Request, number>();
  return new Elysia()
    .onRequest(({ request }) => {
      started.set(request, performance.now());
    })
    .onAfterResponse({ as: "global" }, ({ request, set }) => {
      const status = typeof set.status === "number" ? set.status : 200;
      const begun = started.get(request);
      const ms = begun === undefined ? 0 : performance.now() - begun;
      const level = status >= 500 ? "error" : status >= 400 ? "warn" : "info";
      logger(level, `${request.method} ${new URL(request.url).pathname} ${status} ${ms.toFixed(1)}ms`);
    });
}
