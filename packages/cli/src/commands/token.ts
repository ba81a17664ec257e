import { createTokenStore, parseDuration, TOKEN_SCOPES, type TokenScope } from "@corral/core";
import { stringFlag, UsageError } from "../args.ts";
import type { Command, Outcome } from "../context.ts";
import { style, table, when } from "../render.ts";

/**
 * `corral token create NAME --scope read|control|admin|inference [--expires 30d]`, `corral token ls`,
 * `corral token revoke NAME`: the named API tokens of this home (`<home>/tokens.json`, hashed). A
 * running server sees a change at its next request.
 * @example
 * corral token create ci --scope read --expires 30d
 */
export const command: Command = {
  name: "token",
  args: [
    { name: "action", description: "create, ls or revoke" },
    { name: "name", description: "the token's name (create, revoke)" },
  ],
  options: {
    scope: {
      type: "string",
      value: "SCOPE",
      description: "read (GET only), control (also load, kill, adopt), admin (also tokens), inference (model routes)",
    },
    expires: { type: "string", value: "DURATION", description: "refuse it after 30d, 12h, 90m, 2w … [default: never]" },
  },
  json: true,
  examples: ["corral token create ci --scope read --expires 30d", "corral token ls", "corral token revoke ci"],
  async run(ctx, input) {
    const store = createTokenStore({ file: (await ctx.controller()).paths.tokens });
    const action = input.args.action;
    const name = input.args.name;
    if (action === "ls" || action === "list") return listOutcome(store.list());
    if (action !== "create" && action !== "revoke") {
      throw new UsageError('give an action: "create NAME --scope S", "ls" or "revoke NAME"', "token");
    }
    if (!name) throw new UsageError(`missing <name>: name the token to ${action}`, "token");
    if (action === "revoke") {
      await store.revoke(name);
      return { data: { revoked: name }, lines: [`revoked ${name}: requests carrying it are refused from now on`] };
    }
    const scope = stringFlag(input, "scope");
    if (!scope || !TOKEN_SCOPES.includes(scope as TokenScope)) {
      throw new UsageError(`--scope: one of ${TOKEN_SCOPES.join(", ")}`, "token");
    }
    const expires = stringFlag(input, "expires");
    const expiresInMs = expires === undefined ? undefined : parseDuration(expires);
    const { secret, record } = await store.create(name, scope as TokenScope, { expiresInMs });
    const { hash: _hash, ...info } = record;
    return {
      data: { ...info, token: secret },
      lines: [
        `${style.bold(name)} (${scope}${record.expires_at ? `, expires ${when(record.expires_at)}` : ""}):`,
        secret,
        style.dim("shown this once: corral keeps only its hash. Send it as `Authorization: Bearer <token>`."),
      ],
      summary: `made token ${name}`,
    };
  },
};

function listOutcome(tokens: ReturnType<ReturnType<typeof createTokenStore>["list"]>): Outcome {
  if (tokens.length === 0) return { data: [], lines: ["no named tokens (corral token create NAME --scope S)"] };
  const lines = table(tokens, [
    { header: "NAME", cell: (t) => style.bold(t.name) },
    { header: "SCOPE", cell: (t) => t.scope },
    { header: "CREATED", cell: (t) => when(t.created_at) },
    { header: "EXPIRES", cell: (t) => (t.expires_at ? when(t.expires_at) : "never") },
  ]);
  return { data: tokens, lines, summary: `${tokens.length} token${tokens.length === 1 ? "" : "s"}` };
}
