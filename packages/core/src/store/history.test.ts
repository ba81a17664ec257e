import { afterEach, describe, expect, it } from "bun:test";
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidInputError } from "../errors.ts";
import { createHistory } from "./history.ts";

const dirs: string[] = [];
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "corral-history-"));
  dirs.push(dir);
  return join(dir, "home", "history.jsonl");
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function clock(): () => number {
  let t = Date.UTC(2026, 10, 26, 12, 0, 0);
  return () => (t += 1000);
}

describe("createHistory", () => {
  it("appends one JSON line per event, stamping the time, and reads them back newest first", async () => {
    const file = tempFile();
    const history = createHistory({ file, now: clock() });
    const first = await history.append({ event: "registered", slot: "0", pid: 4242, model_id: "qwen" });
    expect(first.time).toBe("2026-11-26T12:00:01.000Z");
    await history.append({ event: "status", slot: "0", from: "loading", to: "running" });
    await history.append({ event: "killed", slot: "1", pid: 99, time: "2020-01-01T00:00:00.000Z" });

    const lines = readFileSync(file, "utf8").split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe("");
    expect(JSON.parse(lines[0] as string)).toEqual(first);

    const events = await history.read();
    expect(events.map((e) => e.event)).toEqual(["killed", "status", "registered"]);
    expect(events[0]?.time).toBe("2020-01-01T00:00:00.000Z");
    expect(statSync(join(file, "..")).mode & 0o777).toBe(0o700);
  });

  it("reads nothing from a missing file", async () => {
    expect(await createHistory({ file: tempFile() }).read()).toEqual([]);
  });

  it("returns at most limit events, 100 by default", async () => {
    const file = tempFile();
    const history = createHistory({ file, now: clock() });
    for (let i = 0; i < 130; i++) await history.append({ event: "status", slot: String(i % 3), reason: `#${i}` });
    const all = await history.read();
    expect(all).toHaveLength(100);
    expect(all[0]?.reason).toBe("#129");
    expect(all[99]?.reason).toBe("#30");
    expect((await history.read({ limit: 2 })).map((e) => e.reason)).toEqual(["#129", "#128"]);
    expect(await history.read({ limit: 0 })).toEqual([]);
  });

  it("filters by slot before applying the limit", async () => {
    const file = tempFile();
    const history = createHistory({ file, now: clock() });
    for (let i = 0; i < 30; i++)
      await history.append({ event: "status", slot: i % 3 === 0 ? "0,1" : "2", reason: `#${i}` });
    const events = await history.read({ slot: "0,1", limit: 4 });
    expect(events.map((e) => e.reason)).toEqual(["#27", "#24", "#21", "#18"]);
    expect(events.every((e) => e.slot === "0,1")).toBe(true);
  });

  it("skips a line torn by a crash, and appends after it on a fresh line", async () => {
    const file = tempFile();
    const history = createHistory({ file, now: clock() });
    await history.append({ event: "registered", slot: "0" });
    appendFileSync(file, '{"time":"2026-11-26T12:00:02.000Z","event":"unreg');
    expect((await history.read()).map((e) => e.event)).toEqual(["registered"]);

    await history.append({ event: "killed", slot: "0" });
    expect((await history.read()).map((e) => e.event)).toEqual(["killed", "registered"]);
  });

  it("skips lines that are not events", async () => {
    const file = tempFile();
    const history = createHistory({ file, now: clock() });
    await history.append({ event: "registered", slot: "0" });
    appendFileSync(file, '\n[1,2]\n"text"\n{"time":5,"event":"x"}\nnot json\n\n');
    await history.append({ event: "killed", slot: "0" });
    expect((await history.read()).map((e) => e.event)).toEqual(["killed", "registered"]);
  });

  it("reads the tail of a large log across chunk boundaries, multi-byte characters included", async () => {
    const file = tempFile();
    const history = createHistory({ file, now: clock() });
    await history.append({ event: "registered", slot: "0" });
    const filler = `${JSON.stringify({ time: "2026-11-26T12:00:00.000Z", event: "status", reason: "ü€😀".repeat(700) })}\n`;
    appendFileSync(file, filler.repeat(2000)); // ~11 MB, lines of ~6 KB straddling every 64 KB chunk
    for (let i = 0; i < 5; i++) await history.append({ event: "status", slot: "0", reason: `näive-${i}` });
    const events = await history.read({ limit: 300 });
    expect(events).toHaveLength(300);
    expect(events.slice(0, 5).map((e) => e.reason)).toEqual(["näive-4", "näive-3", "näive-2", "näive-1", "näive-0"]);
    expect(events.slice(5).every((e) => e.reason === "ü€😀".repeat(700))).toBe(true);
    expect((await history.read({ slot: "0", limit: 10 })).at(-1)?.event).toBe("registered");
  }, 60_000);

  it("refuses an event that does not match the schema", async () => {
    const file = tempFile();
    const history = createHistory({ file });
    const bad = history.append({ event: "status", pid: 1.5 });
    await expect(bad).rejects.toBeInstanceOf(InvalidInputError);
    expect(existsSync(file)).toBe(false);
  });
});

describe("history rotation and safety", () => {
  it("rotates past max_bytes keeping three files, and reads follow the rotation", async () => {
    const file = tempFile();
    const history = createHistory({ file, now: clock(), maxBytes: 2_000 });
    for (let i = 0; i < 60; i++) await history.append({ event: "note", slot: String(i % 3), reason: `n${i}` });
    expect(statSync(file).size).toBeLessThanOrEqual(2_200);
    expect(existsSync(`${file}.1`)).toBe(true);
    expect(existsSync(`${file}.2`)).toBe(true);
    expect(existsSync(`${file}.3`)).toBe(false);
    const all = await history.read({ limit: 1000 });
    // Newest first, across the files, with nothing duplicated or out of order.
    const numbers = all.map((e) => Number(e.reason?.slice(1)));
    expect(numbers[0]).toBe(59);
    expect(numbers).toEqual([...numbers].sort((a, b) => b - a));
    expect(new Set(numbers).size).toBe(numbers.length);
    expect(numbers.length).toBeGreaterThan(20);
    const total = [file, `${file}.1`, `${file}.2`].reduce((n, f) => n + statSync(f).size, 0);
    expect(total).toBeLessThanOrEqual(3 * 2_200);
  });

  it("stops a filtered read at its time budget instead of scanning a huge file", async () => {
    const file = tempFile();
    const history = createHistory({ file, now: clock() });
    await history.append({ event: "note", slot: "0" });
    const line = `${JSON.stringify({ time: "2026-01-01T00:00:00.000Z", event: "note", slot: "1" })}\n`;
    appendFileSync(file, line.repeat(400_000)); // ~30 MB of another slot's events
    const started = performance.now();
    const found = await history.read({ slot: "999", limit: 10_000, budgetMs: 50 });
    expect(found).toEqual([]);
    expect(performance.now() - started).toBeLessThan(400); // the whole file takes ~800 ms here
  });

  it("never appends through a symlink planted in place of history.jsonl", async () => {
    const file = tempFile();
    const history = createHistory({ file });
    await history.append({ event: "note" });
    const target = join(file, "..", "victim");
    writeFileSync(target, "untouched\n");
    rmSync(file);
    symlinkSync(target, file);
    await expect(history.append({ event: "note" })).rejects.toThrow("symbolic link");
    expect(readFileSync(target, "utf8")).toBe("untouched\n");
  });
});
