import { afterEach, describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnsafePathError } from "../errors.ts";
import { createTokenStore, ensureServerToken, hashSecret, parseDuration, TokenNotFoundError } from "./tokens.ts";

const dirs: string[] = [];
function home(): string {
  const dir = mkdtempSync(join(tmpdir(), "corral-tokens-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("ensureServerToken", () => {
  it("makes 32 random bytes, base64url, into <home>/token (0600), and reuses it afterwards", () => {
    const h = home();
    const token = ensureServerToken(h);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, "base64url")).toHaveLength(32);
    expect(statSync(join(h, "token")).mode & 0o777).toBe(0o600);
    expect(ensureServerToken(h)).toBe(token);
    expect(ensureServerToken(home())).not.toBe(token);
  });

  it("refuses a symlink planted where the token goes, and writes nothing through it", () => {
    const h = home();
    const target = join(h, "elsewhere");
    writeFileSync(target, "");
    symlinkSync(target, join(h, "token"));
    expect(() => ensureServerToken(h)).toThrow(UnsafePathError);
    expect(readFileSync(target, "utf8")).toBe("");
  });
});

describe("createTokenStore", () => {
  it("creates named, scoped tokens, keeps only their SHA-256 (0600), and tells them apart", async () => {
    const file = join(home(), "tokens.json");
    const store = createTokenStore({ file });
    const ci = await store.create("ci", "read");
    const ops = await store.create("ops", "control");
    expect(store.verify(ci.secret)).toEqual({ ok: true, name: "ci", scope: "read" });
    expect(store.verify(ops.secret)).toEqual({ ok: true, name: "ops", scope: "control" });
    expect(store.verify("not-a-token")).toEqual({ ok: false, reason: "unknown" });
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain(ci.secret);
    expect(text).toContain(hashSecret(ci.secret));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(store.list().map((t) => [t.name, t.scope])).toEqual([
      ["ci", "read"],
      ["ops", "control"],
    ]);
    expect(JSON.stringify(store.list())).not.toContain("hash");
  });

  it("refuses an expired token by name, and a revoked one at once, also through another store on the file", async () => {
    let now = Date.UTC(2026, 11, 1);
    const file = join(home(), "tokens.json");
    const store = createTokenStore({ file, now: () => now });
    const { secret, record } = await store.create("temp", "admin", { expiresInMs: parseDuration("30d") });
    expect(record.expires_at).toBe("2026-12-31T00:00:00.000Z");
    expect(store.verify(secret).ok).toBe(true);
    now += 31 * 86_400_000;
    expect(store.verify(secret)).toEqual({ ok: false, reason: "expired", name: "temp" });
    const kept = await store.create("kept", "read");
    const server = createTokenStore({ file });
    expect(server.verify(kept.secret).ok).toBe(true);
    await store.revoke("kept");
    expect(server.verify(kept.secret)).toEqual({ ok: false, reason: "unknown" });
    await expect(store.revoke("kept")).rejects.toBeInstanceOf(TokenNotFoundError);
  });

  it("refuses a name in use, a bad name and a bad scope", async () => {
    const store = createTokenStore({ file: join(home(), "tokens.json") });
    await store.create("ci", "read");
    await expect(store.create("ci", "admin")).rejects.toThrow('a token named "ci" exists');
    await expect(store.create("../x", "read")).rejects.toThrow("name:");
    await expect(store.create("   ", "read")).rejects.toThrow("name:");
    await expect(store.create("x", "root" as "read")).rejects.toThrow("scope:");
  });
});

describe("parseDuration", () => {
  it("reads s, m, h, d and w, and refuses anything else", () => {
    expect(parseDuration("45s")).toBe(45_000);
    expect(parseDuration("90m")).toBe(5_400_000);
    expect(parseDuration("12h")).toBe(43_200_000);
    expect(parseDuration("30d")).toBe(2_592_000_000);
    expect(parseDuration("2w")).toBe(1_209_600_000);
    for (const bad of ["", "30", "d", "-1d", "1.5d", "0d", "1y"]) expect(() => parseDuration(bad)).toThrow("expires");
  });
});
