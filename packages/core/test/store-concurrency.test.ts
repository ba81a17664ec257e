import { afterEach, describe, expect, it } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LockTimeoutError } from "../src/errors.ts";
import { type LockMethod, withFileLock } from "../src/store/lock.ts";
import { createStore } from "../src/store/store.ts";
import { storeEntry } from "./helpers/store-entry.ts";

const helpers = join(import.meta.dir, "helpers");
const dirs: string[] = [];
const children: Bun.Subprocess[] = [];

function tempHome(): string {
  const dir = mkdtempSync(join(tmpdir(), "corral-concurrency-"));
  dirs.push(dir);
  return dir;
}

function spawnHelper(script: string, args: string[], wrap: string[] = []): Bun.Subprocess<"ignore", "pipe", "pipe"> {
  const child = Bun.spawn([...wrap, process.execPath, join(helpers, script), ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  children.push(child);
  return child;
}

afterEach(async () => {
  // Only the processes this file started, and only those still running.
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await child.exited;
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * Collects a child's stdout lines for as long as it runs (never cancelling the pipe, which could
 * make the child die of EPIPE instead of the signal a test sends). `until` waits for a condition.
 */
function lineReader(stream: ReadableStream<Uint8Array>) {
  const lines: string[] = [];
  let finished = false;
  let wake = () => {};
  const ended = (async () => {
    let pending = "";
    const decoder = new TextDecoder();
    const reader = stream.getReader();
    for (;;) {
      const { done, value: chunk } = await reader.read();
      if (done) break;
      const parts = (pending + decoder.decode(chunk, { stream: true })).split("\n");
      pending = parts.pop() ?? "";
      lines.push(...parts);
      wake();
    }
    if (pending) lines.push(pending);
    finished = true;
    wake();
  })();
  const until = async (condition: (seen: string[]) => boolean): Promise<void> => {
    while (!condition(lines)) {
      if (finished) throw new Error(`output ended without the expected line: ${lines.slice(-5).join(" | ")}`);
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  return { lines, ended, until };
}

describe("the store across processes", () => {
  it("shows a fresh bun process what this process registered", async () => {
    const file = join(tempHome(), "processes.json");
    await createStore({ file }).update((entries) => {
      entries["0,1"] = storeEntry("0", { gpu_id: "0,1", model_path: "C:\\models\\x.gguf" });
    });
    const reader = spawnHelper("store-reader.ts", [file]);
    const [out, code] = await Promise.all([new Response(reader.stdout).text(), reader.exited]);
    expect(code).toBe(0);
    expect(JSON.parse(out).entries).toEqual({
      "0,1": storeEntry("0", { gpu_id: "0,1", model_path: "C:\\models\\x.gguf" }),
    });
  });

  it("loses nothing when four processes add 50 entries each at once", async () => {
    const file = join(tempHome(), "processes.json");
    const writers = [0, 1, 2, 3].map((w) => spawnHelper("store-writer.ts", [file, String(w * 50), "50"]));
    const outputs = await Promise.all(writers.map((w) => new Response(w.stdout).text()));
    const codes = await Promise.all(writers.map((w) => w.exited));
    expect(codes).toEqual([0, 0, 0, 0]);
    expect(outputs.flatMap((o) => o.trim().split("\n"))).toHaveLength(200);

    const snapshot = await createStore({ file }).read();
    const slots = Object.keys(snapshot.entries)
      .map(Number)
      .sort((a, b) => a - b);
    expect(slots).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(snapshot.entries["137"]).toEqual(storeEntry("137"));
    expect(readdirSync(join(file, "..")).filter((name) => name.endsWith(".tmp"))).toEqual([]);
  }, 120_000);

  it("keeps every acknowledged entry of a writer SIGKILLed mid-loop, and its lock blocks nobody", async () => {
    const file = join(tempHome(), "processes.json");
    const writer = spawnHelper("store-writer.ts", [file, "0", "forever"]);
    const output = lineReader(writer.stdout);
    await output.until((lines) => lines.length >= 30);
    writer.kill("SIGKILL");
    await writer.exited;
    await output.ended;
    expect(writer.signalCode).toBe("SIGKILL");
    // Every slot printed before the kill, the last ones included, was acknowledged by `update`.
    const acknowledged = output.lines;
    expect(acknowledged.length).toBeGreaterThanOrEqual(30);

    const store = createStore({ file, lockTimeoutMs: 5000 });
    const snapshot = await store.read();
    for (const slot of acknowledged) expect(snapshot.entries[slot]).toEqual(storeEntry(slot));
    expect(snapshot.invalid).toEqual([]);
    await store.update((entries) => {
      entries["999"] = storeEntry("999");
    });
    expect((await store.read()).entries["999"]).toEqual(storeEntry("999"));
  }, 60_000);

  it("leaves the previous file intact, and no temp file, when the disk refuses the write", async () => {
    const file = join(tempHome(), "processes.json");
    await createStore({ file }).update((entries) => {
      entries["0"] = storeEntry("0");
    });
    const before = readFileSync(file);
    // A 4 KiB file-size limit makes the kernel refuse the temp file's write (EFBIG), as a full disk would;
    // SIGXFSZ is ignored so the write fails instead of killing the writer.
    const limit = ["bash", "-c", "trap '' XFSZ; ulimit -f 4; exec \"$@\"", "limit"];
    const writer = spawnHelper("store-writer.ts", [file, "1", "1", "20000"], limit);
    const [out, code] = await Promise.all([new Response(writer.stdout).text(), writer.exited]);
    expect(code).toBe(3);
    const reported = JSON.parse(out.trim().split("\n").at(-1) ?? "{}");
    expect(reported).toMatchObject({ error: "StoreWriteError", code: "STORE_WRITE_FAILED" });
    expect(reported.message).toContain(file);
    expect(readFileSync(file)).toEqual(before);
    expect(readdirSync(join(file, "..")).filter((name) => name.endsWith(".tmp"))).toEqual([]);
  }, 60_000);
});

for (const method of ["flock", "pidfile"] as LockMethod[]) {
  describe(`withFileLock (${method}) across processes`, () => {
    it("makes a waiter time out naming the live holder's pid", async () => {
      const lockFile = join(tempHome(), "processes.json.lock");
      const holder = spawnHelper("store-lock-holder.ts", [lockFile, method]);
      await lineReader(holder.stdout).until((lines) => lines.includes("locked"));
      const error = await withFileLock(lockFile, async () => "never", { method, timeoutMs: 200 }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect((error as LockTimeoutError).holderPid).toBe(holder.pid);
      expect((error as LockTimeoutError).message).toContain(String(holder.pid));
    }, 30_000);

    it("is free again once its holder is SIGKILLed", async () => {
      const lockFile = join(tempHome(), "processes.json.lock");
      const holder = spawnHelper("store-lock-holder.ts", [lockFile, method]);
      await lineReader(holder.stdout).until((lines) => lines.includes("locked"));
      holder.kill("SIGKILL");
      await holder.exited;
      expect(await withFileLock(lockFile, async () => "mine", { method, timeoutMs: 5000 })).toBe("mine");
    }, 30_000);
  });
}
