/**
 * The token the scenarios' in-process apps take, and the header that carries it: the scenarios
 * call the API the way a user does (scenario 8, hostile clients, is the one about refusing).
 */

/** The in-process apps' server token. */
export const TORTURE_TOKEN = "torture-token-0123456789abcdefghijklmnopqrs";

/**
 * `authorization: Bearer <token>` plus `headers`.
 * @default token = TORTURE_TOKEN
 * @example
 * fetch(url, { headers: bearer({ "content-type": "application/json" }) })
 */
export function bearer(headers: Record<string, string> = {}, token: string = TORTURE_TOKEN): Record<string, string> {
  return { authorization: `Bearer ${token}`, ...headers };
}
