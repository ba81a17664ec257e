import {
  InvalidInputError,
  parseDuration,
  TokenCreatedSchema,
  TokenListSchema,
  TokenRevokedSchema,
  type TokenScope,
  TokenScopeSchema,
  type TokenStore,
} from "@corral/core";
import { Elysia, t } from "elysia";
import { JSON_BODY } from "../body.ts";
import { HttpError } from "../errors.ts";

/**
 * `GET /api/v1/tokens`, `POST /api/v1/tokens` `{ name, scope, expires? }` and
 * `DELETE /api/v1/tokens/:name`: the named tokens of `<home>/tokens.json`, for `admin` tokens only
 * (auth refuses the others). A new token's secret is in the POST's answer and nowhere else.
 * @example
 * app.use(tokenRoutes({ tokens: createTokenStore({ file: paths.tokens }) }))
 */
export function tokenRoutes({ tokens }: { readonly tokens?: TokenStore }) {
  const store = (): TokenStore => {
    if (!tokens) throw new HttpError(404, "NOT_FOUND", "this server keeps no named tokens (it runs with auth: none)");
    return tokens;
  };
  return new Elysia({ prefix: "/api/v1", detail: { tags: ["tokens"] } })
    .get("/tokens", () => ({ tokens: store().list() }), {
      response: TokenListSchema,
      detail: { summary: "The named tokens (names, scopes, expiry; never the secrets)" },
    })
    .post(
      "/tokens",
      async ({ body }) => {
        const expiresInMs = body.expires === undefined ? undefined : parseDuration(body.expires);
        const { secret, record } = await store().create(body.name, body.scope as TokenScope, { expiresInMs });
        const { hash: _hash, ...info } = record;
        return { ...info, token: secret };
      },
      {
        ...JSON_BODY,
        body: t.Object({
          name: t.String({ minLength: 1, maxLength: 64, error: "name: 1 to 64 characters" }),
          scope: TokenScopeSchema,
          expires: t.Optional(t.String({ description: "30d, 12h, 90m, 2w …", error: "expires: a duration like 30d" })),
        }),
        response: TokenCreatedSchema,
        detail: { summary: "Make a named token; its secret is shown in this answer only" },
      },
    )
    .delete(
      "/tokens/:name",
      async ({ params }) => {
        if (params.name.trim() === "") throw new InvalidInputError("name", "must not be blank");
        await store().revoke(params.name);
        return { revoked: params.name };
      },
      {
        params: t.Object({ name: t.String({ minLength: 1, maxLength: 64 }) }),
        response: TokenRevokedSchema,
        detail: { summary: "Revoke a named token: the next request carrying it is refused" },
      },
    );
}
