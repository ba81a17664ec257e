import { afterEach, describe, expect, it } from "bun:test";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixtureDir, fixtureTrusted, standInServerIn } from "./fixtures/index.ts";

const roots: string[] = [];
function root(): string {
  const dir = mkdtempSync(join(tmpdir(), "corral-fixture-root-"));
  roots.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of roots.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const PLANTED = "#!/bin/sh\necho planted\n";

describe("the stand-in's build folder", () => {
  it("is made 0700 and trusted when it is ours", () => {
    const dir = fixtureDir(root(), "abc");
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(fixtureTrusted(dir)).toBe(true);
  });

  it("is not trusted when others can write it or the binary, and is replaced before use", () => {
    const r = root();
    const planted = join(r, "corral-fixture-abc");
    mkdirSync(planted);
    chmodSync(planted, 0o777);
    writeFileSync(join(planted, "llama-server"), PLANTED, { mode: 0o777 });
    expect(fixtureTrusted(planted)).toBe(false);
    const dir = fixtureDir(r, "abc");
    expect(fixtureTrusted(dir)).toBe(true);
    expect(() => readFileSync(join(dir, "llama-server"), "utf8")).toThrow(); // the planted binary is gone
  });

  it.skipIf(process.geteuid?.() !== 0)("is not trusted when another user owns it", () => {
    const r = root();
    const planted = join(r, "corral-fixture-abc");
    mkdirSync(planted, { mode: 0o700 });
    writeFileSync(join(planted, "llama-server"), PLANTED, { mode: 0o700 });
    chownSync(join(planted, "llama-server"), 65534, 65534);
    expect(fixtureTrusted(planted)).toBe(false);
    chownSync(planted, 65534, 65534);
    expect(fixtureTrusted(planted)).toBe(false);
    expect(fixtureTrusted(fixtureDir(r, "abc"))).toBe(true);
  });

  it("builds a real stand-in instead of running a planted one", async () => {
    const r = root();
    const real = await standInServerIn(r); // the hash path under this root
    const dir = join(real, "..");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    writeFileSync(real, PLANTED, { mode: 0o777 });
    const again = await standInServerIn(r);
    expect(readFileSync(again).subarray(0, 2).toString()).not.toBe("#!");
    expect(statSync(again).mode & 0o022).toBe(0);
  }, 120_000);
});
