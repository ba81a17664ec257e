import { type Static, Type } from "@sinclair/typebox";

/**
 * The token routes' shapes (`GET/POST /api/v1/tokens`, `DELETE /api/v1/tokens/:name`).
 * Only TypeBox here, so the page can import the types.
 */

/** A scope, as the API spells it. */
export const TokenScopeSchema = Type.Union(
  [Type.Literal("read"), Type.Literal("control"), Type.Literal("admin"), Type.Literal("inference")],
  {
    description:
      "read: GET only; control: also load, unload, kill, adopt; admin: also tokens; inference: the model routes only",
  },
);

/**
 * One named token, without its secret or hash.
 * @example
 * const t: TokenInfo = { name: "ci", scope: "read", created_at: "2026-12-01T00:00:00.000Z" }
 */
export const TokenInfoSchema = Type.Object(
  {
    name: Type.String(),
    scope: TokenScopeSchema,
    created_at: Type.String(),
    expires_at: Type.Optional(Type.String()),
  },
  { $id: "TokenInfo" },
);
/** @see TokenInfoSchema */
export type TokenInfo = Static<typeof TokenInfoSchema>;

/**
 * `GET /api/v1/tokens`.
 * @example
 * const body: TokenList = { tokens: [] }
 */
export const TokenListSchema = Type.Object({ tokens: Type.Array(TokenInfoSchema) });
/** @see TokenListSchema */
export type TokenList = Static<typeof TokenListSchema>;

/**
 * `POST /api/v1/tokens`: the new token with its secret, shown this once.
 * @example
 * const body: TokenCreated = { name: "ci", scope: "read", created_at: "…", token: "pZ0u4…" }
 */
export const TokenCreatedSchema = Type.Composite([TokenInfoSchema, Type.Object({ token: Type.String() })], {
  $id: "TokenCreated",
});
/** @see TokenCreatedSchema */
export type TokenCreated = Static<typeof TokenCreatedSchema>;

/**
 * `DELETE /api/v1/tokens/:name`.
 * @example
 * const body: TokenRevoked = { revoked: "ci" }
 */
export const TokenRevokedSchema = Type.Object({ revoked: Type.String() });
/** @see TokenRevokedSchema */
export type TokenRevoked = Static<typeof TokenRevokedSchema>;
