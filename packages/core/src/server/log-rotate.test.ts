import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pruneSpawnLogs, rotateLog } from "./log-rotate.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const folder = () => {
  const d = mkdtempSync(join(tmpdir(), "corral-logs-"));
  dirs.push(d);
  return d;
};

describe("rotateLog", () => {
  it("leaves a log under its cap alone and rotates one past it into .1, shifting older copies up to keep", async () => {
    const dir = folder();
    const file = join(dir, "slot-0-tiny-20261126T120000Z.log");
    writeFileSync(file, "small\n");
    expect((await rotateLog(file, { maxBytes: 100, keep: 2 })).rotated).toBe(false);
    for (const round of [1, 2, 3]) {
      writeFileSync(file, `round ${round}\n`.repeat(20));
      const result = await rotateLog(file, { maxBytes: 100, keep: 2 });
      expect(result).toMatchObject({ rotated: true, copied: result.bytes });
    }
    expect(readdirSync(dir).sort()).toEqual([
      "slot-0-tiny-20261126T120000Z.log",
      "slot-0-tiny-20261126T120000Z.log.1",
      "slot-0-tiny-20261126T120000Z.log.2",
    ]);
    expect(Bun.file(`${file}.1`).size).toBe(160);
    expect(await Bun.file(`${file}.2`).text()).toStartWith("round 2");
    expect(Bun.file(file).size).toBe(0);
  });

  it("says nothing was rotated for a missing log", async () => {
    expect(await rotateLog(join(folder(), "gone.log"), { maxBytes: 1, keep: 1 })).toEqual({ rotated: false, bytes: 0 });
  });
});

describe("pruneSpawnLogs", () => {
  it("keeps the newest logs per slot and any a tracked entry names, removing the others with their copies", async () => {
    const dir = folder();
    const log = (slot: string, n: number) => {
      const file = join(dir, `slot-${slot}-tiny-2026112${n}T120000Z.log`);
      writeFileSync(file, "x\n");
      utimesSync(file, n * 1000, n * 1000);
      return file;
    };
    const old = [1, 2, 3, 4, 5].map((n) => log("0", n));
    writeFileSync(`${old[0]}.1`, "rotated\n");
    const other = log("0_1", 1);
    writeFileSync(join(dir, "corral-serve.log"), "not a spawn log\n");
    const removed = await pruneSpawnLogs(dir, new Set([old[1]]), 2);
    expect(removed.sort()).toEqual([old[0]!, `${old[0]}.1`, old[2]!].sort());
    expect(existsSync(old[1]!)).toBe(true); // in use, however old
    expect(existsSync(old[3]!) && existsSync(old[4]!) && existsSync(other)).toBe(true);
    expect(existsSync(join(dir, "corral-serve.log"))).toBe(true);
  });
});
