import { afterEach, describe, expect, it } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LockTimeoutError } from "../errors.ts";
import { type LockMethod, withFileLock } from "./lock.ts";

const dirs: string[] = [];
function tempLock(): string {
  const dir = mkdtempSync(join(tmpdir(), "corral-lock-"));
  dirs.push(dir);
  return join(dir, "processes.json.lock");
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A pid that certainly belonged to a process and is now dead: a child we started and reaped. */
async function deadPid(): Promise<number> {
  const child = Bun.spawn(["true"]);
  await child.exited;
  return child.pid;
}

for (const method of ["flock", "pidfile"] as LockMethod[]) {
  describe(`withFileLock with ${method}`, () => {
    it("runs callers of one process one at a time, in order", async () => {
      const file = tempLock();
      const log: string[] = [];
      let inside = 0;
      const task = (name: string) =>
        withFileLock(
          file,
          async () => {
            inside++;
            expect(inside).toBe(1);
            log.push(`${name}:start`);
            await Bun.sleep(5);
            log.push(`${name}:end`);
            inside--;
            return name;
          },
          { method },
        );
      expect(await Promise.all([task("a"), task("b"), task("c")])).toEqual(["a", "b", "c"]);
      expect(log).toEqual(["a:start", "a:end", "b:start", "b:end", "c:start", "c:end"]);
    });

    it("releases the lock when fn throws", async () => {
      const file = tempLock();
      await expect(withFileLock(file, async () => Promise.reject(new Error("boom")), { method })).rejects.toThrow(
        "boom",
      );
      expect(await withFileLock(file, async () => "again", { method, timeoutMs: 2000 })).toBe("again");
    });

    it("times out a same-process caller with LockTimeoutError naming this pid", async () => {
      const file = tempLock();
      let release!: () => void;
      const held = withFileLock(file, () => new Promise<void>((done) => (release = done)), { method });
      await Bun.sleep(10);
      const error = await withFileLock(file, async () => "never", { method, timeoutMs: 50 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect((error as LockTimeoutError).holderPid).toBe(process.pid);
      release();
      await held;
      // The caller that gave up must not have left a hole in the queue.
      expect(await withFileLock(file, async () => "after", { method, timeoutMs: 2000 })).toBe("after");
    });
  });
}

describe("withFileLock with flock", () => {
  it.skipIf(process.platform === "win32")(
    "is the default where libc can be loaded, leaving a persistent lock file",
    async () => {
      const file = tempLock();
      await withFileLock(file, async () => {});
      expect(readFileSync(file, "utf8")).toBe(`${process.pid}\n`);
    },
  );

  it("is not blocked by a lock file that is merely present", async () => {
    const file = tempLock();
    writeFileSync(file, "99999999\n");
    expect(await withFileLock(file, async () => "ok", { method: "flock", timeoutMs: 2000 })).toBe("ok");
    expect(readFileSync(file, "utf8")).toBe(`${process.pid}\n`);
    expect(existsSync(file)).toBe(true);
  });
});

describe("withFileLock with pidfile", () => {
  it("removes its lock file on release", async () => {
    const file = tempLock();
    await withFileLock(
      file,
      async () => {
        expect(JSON.parse(readFileSync(file, "utf8")).pid).toBe(process.pid);
      },
      { method: "pidfile" },
    );
    expect(existsSync(file)).toBe(false);
  });

  it("takes over a lock file whose pid is dead", async () => {
    const file = tempLock();
    writeFileSync(file, JSON.stringify({ pid: await deadPid(), since: new Date().toISOString() }));
    expect(await withFileLock(file, async () => "taken", { method: "pidfile", timeoutMs: 2000 })).toBe("taken");
  });

  it("waits for a lock file whose pid is alive, then names it", async () => {
    const file = tempLock();
    const sleeper = Bun.spawn(["sleep", "30"]);
    try {
      writeFileSync(file, JSON.stringify({ pid: sleeper.pid, since: new Date().toISOString() }));
      const error = await withFileLock(file, async () => "never", { method: "pidfile", timeoutMs: 100 }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect((error as LockTimeoutError).holderPid).toBe(sleeper.pid);
      expect(existsSync(file)).toBe(true);
    } finally {
      sleeper.kill("SIGKILL");
      await sleeper.exited;
    }
  });
});

describe("withFileLock and planted files", () => {
  it("never truncates or writes a file through a symlink planted as the lock file", async () => {
    const file = tempLock();
    const victim = join(file, "..", "victim");
    writeFileSync(victim, "precious\n");
    symlinkSync(victim, file);
    await expect(withFileLock(file, async () => "ran", { method: "flock" })).rejects.toThrow("symbolic link");
    expect(readFileSync(victim, "utf8")).toBe("precious\n");
  });
});
