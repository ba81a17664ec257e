import { Elysia } from "elysia";
import { HttpError } from "./errors.ts";
import { readLimited } from "./read-limited.ts";
import { isGatewayPath } from "./routes/gateway-shared.ts";

/**
 * Largest request body accepted: every request corral takes is a few short fields.
 * @example
 * createApp({ controller, bodyLimitBytes: DEFAULT_BODY_LIMIT_BYTES / 4 })
 */
export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024;

function tooLarge(limit: number): HttpError {
  return new HttpError(413, "PAYLOAD_TOO_LARGE", `request bodies are limited to ${limit} bytes`);
}

/** Reads a body as UTF-8, at most `limit` bytes of it (see {@link readLimited}). */
async function readText(request: Request, limit: number): Promise<string> {
  const chunks = await readLimited(request, limit, () => tooLarge(limit));
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new HttpError(400, "INVALID_JSON", "the request body is not UTF-8 text");
  }
}

/**
 * Every request body is read as JSON, at most `limitBytes` long: larger bodies get 413, bad JSON
 * gets 400, and an empty body counts as `{}` so routes whose fields are all optional need none.
 * The browser guard (guard.ts) runs first and refuses a body that is not `application/json` with
 * 415: a text/plain or form body is what a cross-site page can send without a preflight.
 * @default limitBytes = DEFAULT_BODY_LIMIT_BYTES (64 KiB)
 * @example
 * new Elysia().use(jsonBody({ limitBytes: 16 * 1024 }))
 */
export function jsonBody(options: { readonly limitBytes?: number } = {}) {
  const limit = options.limitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  return new Elysia()
    .onRequest(({ request }) => {
      // The gateway's routes read their own (larger) bodies and forward them unparsed.
      if (isGatewayPath(new URL(request.url).pathname)) return;
      const declared = Number(request.headers.get("content-length"));
      if (declared > limit) throw tooLarge(limit);
    })
    .onParse({ as: "global" }, async ({ request }) => {
      if (isGatewayPath(new URL(request.url).pathname)) return {};
      const text = await readText(request, limit);
      if (text.trim() === "") return {};
      try {
        return JSON.parse(text) as unknown;
      } catch (error) {
        throw new HttpError(400, "INVALID_JSON", `the request body is not valid JSON: ${(error as Error).message}`);
      }
    });
}

/**
 * Route option for routes with a body. At run time the global parser above has already read the
 * body, so Elysia's own JSON parser never runs; the option only tells the OpenAPI document that
 * the body is `application/json` (it lists no content type for a custom parser).
 * @example
 * app.post("/x", handler, { ...JSON_BODY, body: t.Object({}) })
 */
export const JSON_BODY = { parse: "json" } as const;
