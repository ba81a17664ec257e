import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LearnedFigures, learnedKey, loadTimeoutFrom } from "./learned.ts";

const dir = mkdtempSync(join(tmpdir(), "corral-learned-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("LearnedFigures", () => {
  it("records figures per model, argument set and GPU set, and reads them back", async () => {
    const learned = new LearnedFigures({ file: join(dir, "a.json"), now: () => Date.UTC(2026, 11, 1) });
    const key = learnedKey("qwen", "/m/q.gguf", ["-c", "8192"], "0");
    expect(await learned.get(key)).toBeUndefined();
    await learned.record(key, { peak_mib: { "0": 5230 }, ready_ms: 8200 });
    await learned.record(learnedKey("qwen", "/m/q.gguf", ["-c", "4096"], "0"), { peak_mib: {}, ready_ms: 1 });
    expect(await learned.get(key)).toEqual({
      peak_mib: { "0": 5230 },
      ready_ms: 8200,
      measured_at: "2026-12-01T00:00:00.000Z",
    });
    expect(Object.keys(JSON.parse(readFileSync(join(dir, "a.json"), "utf8")))).toHaveLength(2);
  });

  it("keeps every record when many are written at once", async () => {
    const learned = new LearnedFigures({ file: join(dir, "b.json") });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => learned.record(`k${i}`, { peak_mib: { "0": i }, ready_ms: i })),
    );
    expect(Object.keys(JSON.parse(readFileSync(join(dir, "b.json"), "utf8")))).toHaveLength(20);
  });

  it("reads an unreadable file as no figures", async () => {
    writeFileSync(join(dir, "c.json"), "{ not json");
    expect(await new LearnedFigures({ file: join(dir, "c.json") }).get("k")).toBeUndefined();
  });
});

describe("loadTimeoutFrom", () => {
  const figure = (ready_ms: number) => ({ ready_ms, peak_mib: {}, measured_at: "" });
  it("is 4x the last load time, at least 60 s, and the configured timeout before any load", () => {
    expect(loadTimeoutFrom(undefined, 300_000)).toBe(300_000);
    expect(loadTimeoutFrom(figure(120_000), 300_000)).toBe(480_000);
    expect(loadTimeoutFrom(figure(2_000), 300_000)).toBe(60_000);
    expect(loadTimeoutFrom(figure(100), 15_000)).toBe(15_000);
  });
});
