import { afterEach, describe, expect, it } from "bun:test";
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnsafePathError } from "../errors.ts";
import { ensureSafeHome, readableByOthers, writePrivateFileAtomic } from "./secure-fs.ts";

const dirs: string[] = [];
function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), "corral-secure-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("ensureSafeHome", () => {
  it("creates a missing home 0700, parents too", () => {
    const home = join(temp(), "a", "corral");
    ensureSafeHome(home);
    expect(statSync(home).mode & 0o777).toBe(0o700);
    ensureSafeHome(home); // and accepts it from then on
  });

  it("refuses a home that its group or others can write, naming the path and the fix", () => {
    for (const mode of [0o770, 0o757, 0o777]) {
      const home = join(temp(), "home");
      mkdirSync(home);
      chmodSync(home, mode);
      const error = (() => {
        try {
          ensureSafeHome(home);
        } catch (e) {
          return e;
        }
      })() as UnsafePathError;
      expect(error).toBeInstanceOf(UnsafePathError);
      expect(error.path).toBe(home);
      expect(error.message).toContain(`chmod 700 ${home}`);
    }
  });

  it.skipIf(process.geteuid?.() !== 0)("refuses a home owned by another user", () => {
    const home = join(temp(), "home");
    mkdirSync(home, { mode: 0o700 });
    chownSync(home, 65534, 65534);
    expect(() => ensureSafeHome(home)).toThrow(/owned by uid 65534, not by you/);
  });

  it("refuses a file where the home should be", () => {
    const home = join(temp(), "file");
    writeFileSync(home, "");
    expect(() => ensureSafeHome(home)).toThrow(UnsafePathError);
  });
});

describe("readableByOthers", () => {
  it("is true for 0644 and 0640, false for 0600 and a missing file", () => {
    const file = join(temp(), "corral.yaml");
    writeFileSync(file, "server: { token: x }\n", { mode: 0o600 });
    expect(readableByOthers(file)).toBe(false);
    chmodSync(file, 0o644);
    expect(readableByOthers(file)).toBe(true);
    chmodSync(file, 0o640);
    expect(readableByOthers(file)).toBe(true);
    expect(readableByOthers(join(file, "..", "missing"))).toBe(false);
  });
});

describe("writePrivateFileAtomic", () => {
  it("replaces the file whole, 0600, leaving no temp file", () => {
    const dir = temp();
    const file = join(dir, "tokens.json");
    writeFileSync(file, "old\n", { mode: 0o644 });
    writePrivateFileAtomic(file, "new\n");
    expect(readFileSync(file, "utf8")).toBe("new\n");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["tokens.json"]);
  });

  it("replaces a symlink planted at the file's name instead of writing through it", () => {
    const dir = temp();
    const target = join(dir, "victim");
    writeFileSync(target, "keep\n");
    symlinkSync(target, join(dir, "learned.json"));
    writePrivateFileAtomic(join(dir, "learned.json"), "{}\n");
    expect(readFileSync(target, "utf8")).toBe("keep\n");
    expect(readFileSync(join(dir, "learned.json"), "utf8")).toBe("{}\n");
  });

  it("fails with the file system's error and leaves nothing behind where it cannot write", () => {
    const dir = temp();
    expect(() => writePrivateFileAtomic(join(dir, "missing", "ports.json"), "[]\n")).toThrow(/ENOENT/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
