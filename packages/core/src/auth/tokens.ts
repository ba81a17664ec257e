import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { closeSync, constants, statSync, writeSync } from "node:fs";
import { CorralError, InvalidInputError } from "../errors.ts";
import { corralPaths } from "../paths.ts";
import { withFileLock } from "../store/lock.ts";
import { openNoFollowSync, readPrivateFile, writePrivateFileAtomic } from "../store/secure-fs.ts";
import { TOKEN_SCOPES, type TokenScope } from "./scopes.ts";

/**
 * Tokens: the server's own (`<home>/token`, made on the first `corral serve`) and named, scoped
 * ones in `<home>/tokens.json`, kept only as SHA-256 hashes so a copy of the file grants nothing.
 */

/**
 * A fresh secret: 32 random bytes, base64url (43 characters).
 * @example
 * newSecret() // "pZ0u4…"
 */
export function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * SHA-256 of a secret, hex: what tokens.json stores.
 * @example
 * hashSecret("abc") // "ba7816bf…"
 */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/**
 * Compares two secrets in constant time (hashing first gives equal lengths, so neither the
 * contents nor the length leaks through timing).
 * @example
 * secretsMatch("s3cret", "s3cret") // true
 */
export function secretsMatch(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * The server's token in `<home>/token`: read when it is there, else created (0600, O_EXCL and
 * O_NOFOLLOW, so a planted symlink or a race never makes corral write elsewhere).
 * @throws UnsafePathError for a symlinked token file or one owned by someone else
 * @example
 * const token = ensureServerToken("/home/me/.local/state/corral")
 */
export function ensureServerToken(home: string): string {
  const file = corralPaths(home).token;
  const existing = readPrivateFile(file)?.trim();
  if (existing) return existing;
  const secret = newSecret();
  let fd: number;
  try {
    fd = openNoFollowSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL);
  } catch (error) {
    // Another start won the race: use its token.
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return readPrivateFile(file)?.trim() || secret;
    throw error;
  }
  try {
    writeSync(fd, `${secret}\n`);
  } finally {
    closeSync(fd);
  }
  return secret;
}

/**
 * No token goes by that name.
 * @example
 * if (e instanceof TokenNotFoundError) console.error(`no token named ${e.tokenName}`)
 */
export class TokenNotFoundError extends CorralError {
  readonly tokenName: string;
  constructor(name: string) {
    super("NOT_FOUND", `no token named "${name}"`);
    this.tokenName = name;
  }
}

/**
 * One named token as tokens.json keeps it (the secret itself is never stored).
 * @example
 * const t: TokenRecord = { name: "ci", scope: "read", hash: "ba78…", created_at: "2026-12-01T00:00:00.000Z" }
 */
export interface TokenRecord {
  readonly name: string;
  readonly scope: TokenScope;
  /** SHA-256 of the secret, hex */
  readonly hash: string;
  readonly created_at: string;
  /** ISO time after which the token is refused @default none (never expires) */
  readonly expires_at?: string;
}

/**
 * What a presented token turned out to be.
 * @example
 * const v = store.verify(secret); if (v.ok) console.log(v.name, v.scope)
 */
export type TokenCheck =
  | { readonly ok: true; readonly name: string; readonly scope: TokenScope }
  | { readonly ok: false; readonly reason: "unknown" | "expired"; readonly name?: string };

/**
 * Options of {@link createTokenStore}.
 * @example
 * createTokenStore({ file: "/h/tokens.json", now: () => 0 })
 */
export interface TokenStoreOptions {
  /** path of tokens.json */
  readonly file: string;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * The named tokens of one home.
 * @example
 * const { secret } = await store.create("ci", "read", { expiresInMs: 30 * 86_400_000 })
 */
export interface TokenStore {
  readonly file: string;
  /** Makes a token; the secret is returned once and never again. A name already in use is refused. */
  create(
    name: string,
    scope: TokenScope,
    options?: { readonly expiresInMs?: number },
  ): Promise<{ readonly secret: string; readonly record: TokenRecord }>;
  /** Every token, without hashes. */
  list(): Omit<TokenRecord, "hash">[];
  /** Removes a token; the next request carrying it is refused. */
  revoke(name: string): Promise<void>;
  /** Which token a secret is, if any (constant time per comparison; re-reads the file when it changed). */
  verify(secret: string): TokenCheck;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * The named-token store over `<home>/tokens.json` (0600; written atomically under a lock;
 * re-read whenever its size, inode or mtime change, so the CLI's revoke reaches a running server).
 * @default options.now = Date.now
 * @example
 * const store = createTokenStore({ file: join(home, "tokens.json") })
 * const check = store.verify(bearer)
 */
export function createTokenStore(options: TokenStoreOptions): TokenStore {
  const { file } = options;
  const now = options.now ?? Date.now;
  let cache: { stamp: string; records: TokenRecord[] } | undefined;
  const load = (): TokenRecord[] => {
    const stamp = stampOf(file);
    if (cache && cache.stamp === stamp) return cache.records;
    const records = stamp === "missing" ? [] : parseTokens(file, readPrivateFile(file) ?? "");
    cache = { stamp, records };
    return records;
  };
  const change = (fn: (records: TokenRecord[]) => TokenRecord[]) =>
    withFileLock(`${file}.lock`, async () => {
      cache = undefined;
      writeTokens(file, fn(load()));
      cache = undefined;
    });
  return {
    file,
    async create(name, scope, createOptions = {}) {
      if (!NAME.test(name)) {
        throw new InvalidInputError(
          "name",
          "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        );
      }
      if (!TOKEN_SCOPES.includes(scope)) throw new InvalidInputError("scope", `one of ${TOKEN_SCOPES.join(", ")}`);
      const secret = newSecret();
      const created = now();
      const record: TokenRecord = {
        name,
        scope,
        hash: hashSecret(secret),
        created_at: new Date(created).toISOString(),
        ...(createOptions.expiresInMs !== undefined
          ? { expires_at: new Date(created + createOptions.expiresInMs).toISOString() }
          : {}),
      };
      await change((records) => {
        if (records.some((r) => r.name === name)) {
          throw new InvalidInputError("name", `a token named "${name}" exists; revoke it first`);
        }
        return [...records, record];
      });
      return { secret, record };
    },
    list: () => load().map(({ hash: _hash, ...rest }) => rest),
    async revoke(name) {
      await change((records) => {
        if (!records.some((r) => r.name === name)) throw new TokenNotFoundError(name);
        return records.filter((r) => r.name !== name);
      });
    },
    verify(secret) {
      const hash = Buffer.from(hashSecret(secret), "hex");
      for (const r of load()) {
        const stored = Buffer.from(r.hash, "hex");
        if (stored.length !== hash.length || !timingSafeEqual(stored, hash)) continue;
        if (r.expires_at !== undefined && Date.parse(r.expires_at) <= now()) {
          return { ok: false, reason: "expired", name: r.name };
        }
        return { ok: true, name: r.name, scope: r.scope };
      }
      return { ok: false, reason: "unknown" };
    },
  };
}

function stampOf(file: string): string {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return "missing";
  }
}

function parseTokens(file: string, text: string): TokenRecord[] {
  if (text.trim() === "") return [];
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new InvalidInputError("tokens", `${file} is not valid JSON: ${(error as Error).message}`);
  }
  const list = (doc as { tokens?: unknown }).tokens;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (r): r is TokenRecord =>
      typeof r?.name === "string" && typeof r?.hash === "string" && TOKEN_SCOPES.includes(r?.scope),
  );
}

function writeTokens(file: string, records: readonly TokenRecord[]): void {
  writePrivateFileAtomic(file, `${JSON.stringify({ version: 1, tokens: records }, null, 2)}\n`);
}

/**
 * Reads a duration such as `30d`, `12h`, `90m`, `45s` or `2w` as milliseconds.
 * @throws InvalidInputError for anything else
 * @example
 * parseDuration("30d") // 2592000000
 */
export function parseDuration(text: string): number {
  const match = /^(\d+)\s*(s|m|h|d|w)$/.exec(text.trim());
  if (!match) throw new InvalidInputError("expires", `"${text}" is not a duration like 30d, 12h, 90m or 2w`);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[match[2] as "s"];
  const ms = Number(match[1]) * unit;
  if (!(ms > 0)) throw new InvalidInputError("expires", "must be longer than nothing");
  return ms;
}
