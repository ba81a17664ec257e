/**
 * `corral init --from-llamacontroller DIR` through the real CLI: the file it writes loads, the
 * models keep the original's flags, tokens are printed once per user, the original's folder is
 * untouched, and a second run without --force changes nothing.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "@corral/core";
import { corral } from "./helpers.ts";

const FIXTURE = join(import.meta.dir, "..", "..", "core", "test", "fixtures", "llamacontroller", "full");
const scratch = mkdtempSync(join(tmpdir(), "corral-init-lc-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("corral init --from-llamacontroller", () => {
  it("writes a corral.yaml that loads, prints a token per user and what it could not carry over", async () => {
    const dir = join(scratch, "lc");
    cpSync(FIXTURE, dir, { recursive: true });
    const original = readFileSync(join(dir, "config", "models-config.yaml"), "utf8");
    const home = { dir: join(scratch, "home") };
    const run = await corral(home, ["init", "--from-llamacontroller", dir, "--json"]);
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.tokens.map((t: { name: string; scope: string }) => `${t.name}:${t.scope}`)).toEqual([
      "admin:admin",
      "alice:control",
      "bob:read",
      "carol-smith:control",
    ]);
    expect(out.tokens.every((t: { secret?: string }) => typeof t.secret === "string" && t.secret.length > 20)).toBe(
      true,
    );
    expect(out.not_carried.map((n: { key: string }) => n.key)).toContain("authentication.users[].password");
    expect(out.servers).toEqual([]);
    const config = await loadConfig({ file: out.file });
    expect(config.models.map((m) => [m.id, m.gpu])).toEqual([
      ["phi-4-reasoning", "0"],
      ["qwen-coder", "0,1"],
      ["tiny", "1"],
    ]);
    expect(config.models[0]!.args.slice(0, 4)).toEqual(["-c", "16384", "-ngl", "99"]);
    expect(config.gpu.occupied_mb).toBe(30);
    expect(config.server_api_key).toBe("auto");
    expect(readFileSync(join(dir, "config", "models-config.yaml"), "utf8")).toBe(original);

    const text = await corral(home, ["init", "--from-llamacontroller", dir]);
    expect(text.code).not.toBe(0);
    expect(text.stdout + text.stderr).toContain("already exists");
  });
});
