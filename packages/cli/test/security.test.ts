import { afterAll, describe, expect, it } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { corral, makeHome, readUntil, spawnCorral, type TestHome } from "./helpers.ts";

const homes: TestHome[] = [];
afterAll(async () => {
  for (const h of homes) await h.cleanup();
});

describe("corral token", () => {
  it("creates a scoped token once, lists it without its secret, and revokes it", async () => {
    const home = await makeHome();
    homes.push(home);
    const made = await corral(home, ["token", "create", "ci", "--scope", "read", "--expires", "30d", "--json"]);
    expect(made.code).toBe(0);
    const created = JSON.parse(made.stdout) as { name: string; scope: string; token: string; expires_at: string };
    expect(created).toMatchObject({ name: "ci", scope: "read" });
    expect(created.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const file = join(home.dir, "tokens.json");
    expect(readFileSync(file, "utf8")).not.toContain(created.token);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const listed = await corral(home, ["token", "ls"]);
    expect(listed.stdout).toContain("ci");
    expect(listed.stdout).toContain("read");
    expect(listed.stdout).not.toContain(created.token);
    expect((await corral(home, ["token", "revoke", "ci"])).code).toBe(0);
    expect((await corral(home, ["token", "ls", "--json"])).stdout.trim()).toBe("[]");
    const again = await corral(home, ["token", "revoke", "ci"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('no token named "ci"');
  });

  it("refuses a missing or unknown scope and a bad duration as usage errors", async () => {
    const home = await makeHome();
    homes.push(home);
    expect((await corral(home, ["token", "create", "x"])).code).toBe(2);
    expect((await corral(home, ["token", "create", "x", "--scope", "root"])).code).toBe(2);
    const bad = await corral(home, ["token", "create", "x", "--scope", "read", "--expires", "soon"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("30d");
  });
});

describe("the home", () => {
  it("is refused (exit 1, the path and the fix) when its group or others can write it", async () => {
    const parent = mkdtempSync(join(tmpdir(), "corral-cli-home-"));
    try {
      const dir = join(parent, "home");
      mkdirSync(dir);
      chmodSync(dir, 0o777);
      const run = await corral({ dir }, ["ls"]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(dir);
      expect(run.stderr).toContain(`chmod 700 ${dir}`);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it("is created 0700 by whichever command first uses it", async () => {
    const parent = mkdtempSync(join(tmpdir(), "corral-cli-home-"));
    try {
      const dir = join(parent, "fresh", "corral");
      expect((await corral({ dir }, ["history"])).code).toBe(0);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});

describe("corral serve", () => {
  it("prints the page's link with the token it made, which the API then wants", async () => {
    const home = await makeHome();
    homes.push(home);
    const proc = spawnCorral(home, ["serve", "--port", "0"]);
    try {
      const out = await readUntil(proc.stdout, /open the page: (http:\/\/\S+)/);
      const link = /open the page: (http:\/\/\S+)/.exec(out)?.[1] ?? "";
      const token = readFileSync(join(home.dir, "token"), "utf8").trim();
      expect(link).toEndWith(`/#token=${token}`);
      const api = new URL("api/v1/processes", link);
      expect((await fetch(api)).status).toBe(401);
      expect((await fetch(api, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      proc.kill("SIGINT");
      expect(await proc.exited).toBe(0);
    } finally {
      proc.kill("SIGKILL");
    }
  }, 60_000);

  it("with --no-auth wants no token, and still refuses a foreign page's POST", async () => {
    const home = await makeHome();
    homes.push(home);
    const proc = spawnCorral(home, ["serve", "--port", "0", "--no-auth"]);
    try {
      const out = await readUntil(proc.stdout, /serving on (http:\/\/\S+)/);
      const url = /serving on (http:\/\/\S+)/.exec(out)?.[1] ?? "";
      expect(out).not.toContain("#token=");
      expect((await fetch(new URL("api/v1/processes", url))).status).toBe(200);
      const csrf = await fetch(new URL("api/v1/cleanup-orphaned?force=true", url), {
        method: "POST",
        headers: { origin: "http://evil.example" },
      });
      expect(csrf.status).toBe(403);
    } finally {
      proc.kill("SIGKILL");
    }
  }, 60_000);
});
