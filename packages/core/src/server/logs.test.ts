import { afterEach, beforeEach, describe, expect, it } from "bun:test";
import {
  appendFileSync,
  chownSync,
  closeSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnsafePathError } from "../errors.ts";
import { followFile, logFileFor, openLogForAppend, tailFile } from "./logs.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "corral-logs-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

describe("logFileFor", () => {
  it("names the file by slot, model and UTC start time", () => {
    const at = Date.UTC(2026, 10, 26, 12, 15, 0, 123);
    expect(logFileFor("/h/logs", "0,1", "qwen", at)).toBe("/h/logs/slot-0_1-qwen-20261126T121500Z.log");
    expect(logFileFor("/h/logs", "0", "Qwen2.5-7B_q4", at)).toBe("/h/logs/slot-0-Qwen2.5-7B_q4-20261126T121500Z.log");
  });

  it("replaces characters that are unsafe in file names", () => {
    const file = logFileFor("/h/logs", "0", "../x y/z", 0);
    expect(file).toBe("/h/logs/slot-0-.._x_y_z-19700101T000000Z.log");
  });
});

describe("tailFile", () => {
  it("returns the last lines of a big file", async () => {
    const file = join(dir, "big.log");
    const fd = openSync(file, "w");
    // ~24 MB of lines whose lengths vary, so lines straddle chunk boundaries.
    const total = 300_000;
    for (let start = 0; start < total; start += 10_000) {
      let block = "";
      for (let i = start; i < start + 10_000; i++) block += `line ${i} ${"x".repeat(i % 137)}\n`;
      writeSync(fd, block);
    }
    closeSync(fd);
    const last = await tailFile(file, 3);
    expect(last).toEqual([299_997, 299_998, 299_999].map((i) => `line ${i} ${"x".repeat(i % 137)}`));
    const many = await tailFile(file, 2000);
    expect(many.length).toBe(2000);
    expect(many[0]).toStartWith("line 298000 ");
  });

  it("handles a missing final newline, CRLF and multi-byte characters across chunks", async () => {
    const file = join(dir, "mixed.log");
    const long = "é".repeat(40_000); // 80 000 bytes: a chunk boundary falls inside this line
    writeFileSync(file, `first\r\n${long}\r\nlast without newline`);
    expect(await tailFile(file, 2)).toEqual([long, "last without newline"]);
    expect(await tailFile(file, 10)).toEqual(["first", long, "last without newline"]);
  });

  it("returns every line of a short file and nothing for a missing one", async () => {
    const file = join(dir, "short.log");
    writeFileSync(file, "a\nb\n");
    expect(await tailFile(file, 100)).toEqual(["a", "b"]);
    expect(await tailFile(file, 0)).toEqual([]);
    expect(await tailFile(join(dir, "missing.log"), 5)).toEqual([]);
  });
});

describe("followFile", () => {
  function follow(file: string, options: { fromEnd?: boolean; backLines?: number } = {}) {
    const seen: string[] = [];
    const stop = new AbortController();
    let ready = false;
    const done = followFile(file, (lines) => seen.push(...lines), {
      signal: stop.signal,
      intervalMs: 10,
      onReady: () => {
        ready = true;
      },
      ...options,
    });
    const end = async () => {
      stop.abort();
      return await done;
    };
    /** Once the follower has settled where it starts, so what is written next is "after it starts". */
    const started = () => waitFor(() => ready, "the follower to start");
    return { seen, done, stop: end, started };
  }

  it("reports lines appended after it starts, not the ones before", async () => {
    const file = join(dir, "app.log");
    writeFileSync(file, "old 1\nold 2\n");
    const f = follow(file);
    await f.started();
    appendFileSync(file, "new 1\nnew 2\n");
    await waitFor(() => f.seen.length >= 2, "two new lines");
    appendFileSync(file, "new 3\n");
    await waitFor(() => f.seen.length >= 3, "a third line");
    await f.stop();
    expect(f.seen).toEqual(["new 1", "new 2", "new 3"]);
  });

  it("starts some lines back when asked, so a tail and a follow lose nothing between them", async () => {
    const file = join(dir, "back.log");
    writeFileSync(file, "l1\nl2\nl3\nl4\nhalf");
    const f = follow(file, { backLines: 2 });
    await waitFor(() => f.seen.length >= 2, "the two lines before the end");
    appendFileSync(file, " done\nl6\n");
    await waitFor(() => f.seen.length >= 4, "the finished line and the next");
    await f.stop();
    expect(f.seen).toEqual(["l3", "l4", "half done", "l6"]);
    const all = follow(file, { backLines: 50 });
    await waitFor(() => all.seen.length >= 6, "every line of a shorter file");
    await all.stop();
    expect(all.seen).toEqual(["l1", "l2", "l3", "l4", "half done", "l6"]);
  });

  it("holds a partial line until its newline arrives", async () => {
    const file = join(dir, "partial.log");
    writeFileSync(file, "done\nhalf of ");
    const f = follow(file);
    await f.started();
    appendFileSync(file, "a line");
    appendFileSync(file, " and more\nnext");
    await waitFor(() => f.seen.length >= 1, "the completed line");
    expect(f.seen).toEqual(["half of a line and more"]);
    // "next" is still open: it comes whole with its newline (had a piece of it been reported, a second piece would follow).
    appendFileSync(file, " line\n");
    await waitFor(() => f.seen.length >= 2, "the next line");
    await f.stop();
    // The unfinished line already in the file at the start is reported whole.
    expect(f.seen).toEqual(["half of a line and more", "next line"]);
  });

  it("reads from the start when asked, and when the file appears later", async () => {
    const file = join(dir, "later.log");
    const f = follow(file);
    await f.started();
    writeFileSync(file, "one\ntwo\n");
    await waitFor(() => f.seen.length >= 2, "lines of the new file");
    await f.stop();
    expect(f.seen).toEqual(["one", "two"]);
    const g = follow(file, { fromEnd: false });
    await waitFor(() => g.seen.length >= 2, "existing lines");
    await g.stop();
    expect(g.seen).toEqual(["one", "two"]);
  });

  it("starts again from the top after the file is truncated", async () => {
    const file = join(dir, "trunc.log");
    writeFileSync(file, "before 1\nbefore 2\n");
    const f = follow(file);
    await f.started();
    truncateSync(file, 0);
    // Shorter than what was there, so the follower sees the file shrink however late it looks.
    appendFileSync(file, "after\n");
    await waitFor(() => f.seen.length >= 1, "the line written after truncation");
    await f.stop();
    expect(f.seen).toEqual(["after"]);
  });

  it("follows a file that is deleted and recreated under the same name", async () => {
    const file = join(dir, "rotated.log");
    writeFileSync(file, "a long first generation of the log\n");
    const f = follow(file);
    await f.started();
    unlinkSync(file);
    writeFileSync(file, "second generation, longer than the first one\n");
    await waitFor(() => f.seen.length >= 1, "the recreated file's line");
    await f.stop();
    expect(f.seen).toEqual(["second generation, longer than the first one"]);
  });

  it("resolves at once when the signal is already aborted", async () => {
    const file = join(dir, "x.log");
    writeFileSync(file, "x\n");
    const seen: string[] = [];
    await followFile(file, (lines) => seen.push(...lines), { signal: AbortSignal.abort(), fromEnd: false });
    expect(seen).toEqual([]);
  });
});

describe("openLogForAppend", () => {
  it("creates the folder and appends to an existing log instead of truncating it", () => {
    const file = join(dir, "nested", "logs", "slot-0.log");
    const first = openLogForAppend(file);
    writeSync(first, "first spawn\n");
    closeSync(first);
    const second = openLogForAppend(file);
    writeSync(second, "second spawn\n");
    closeSync(second);
    expect(readFileSync(file, "utf8")).toBe("first spawn\nsecond spawn\n");
  });
});

describe("logs never widen access", () => {
  it("creates logs 0600 in a 0700 folder, and never appends through a planted symlink", () => {
    const file = join(dir, "logs", "slot-0.log");
    closeSync(openLogForAppend(file));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "logs")).mode & 0o777).toBe(0o700);
    const victim = join(dir, "victim");
    writeFileSync(victim, "untouched\n");
    const planted = join(dir, "logs", "slot-1.log");
    symlinkSync(victim, planted);
    expect(() => openLogForAppend(planted)).toThrow(UnsafePathError);
    expect(readFileSync(victim, "utf8")).toBe("untouched\n");
  });

  it("refuses to tail or follow a symlink, a hard link or another user's file, saying why", async () => {
    const secret = join(dir, "secret");
    writeFileSync(secret, "root:$6$hash:19000:0:99999:7:::\n");
    const link = join(dir, "link.log");
    symlinkSync(secret, link);
    await expect(tailFile(link, 10)).rejects.toThrow("symbolic link");
    await expect(followFile(link, () => undefined, { signal: AbortSignal.timeout(1000) })).rejects.toThrow(
      "symbolic link",
    );
    const hard = join(dir, "hard.log");
    linkSync(secret, hard);
    await expect(tailFile(hard, 10)).rejects.toThrow("hard links");
    const foreign = join(dir, "foreign.log");
    writeFileSync(foreign, "someone else's\n");
    if (process.geteuid?.() === 0) {
      chownSync(foreign, 65534, 65534);
      await expect(tailFile(foreign, 10)).rejects.toThrow("owned by uid 65534");
      // ... unless that user is the one whose server writes it.
      expect(await tailFile(foreign, 10, [65534])).toEqual(["someone else's"]);
    }
    mkdirSync(join(dir, "a-folder.log"));
    await expect(tailFile(join(dir, "a-folder.log"), 10)).rejects.toThrow("not a regular file");
  });

  it("hands a backlog to a follower in bounded slices instead of one huge batch", async () => {
    const file = join(dir, "big.log");
    writeFileSync(file, "");
    const batches: number[] = [];
    const stop = new AbortController();
    let ready = false;
    const done = followFile(file, (lines) => batches.push(lines.join("\n").length), {
      signal: stop.signal,
      intervalMs: 20,
      onReady: () => {
        ready = true;
      },
    });
    await waitFor(() => ready, "the follower to start");
    appendFileSync(file, `${"x".repeat(99)}\n`.repeat(40_000)); // 4 MB at once
    await waitFor(() => batches.reduce((a, b) => a + b, 0) >= 3_990_000, "the whole backlog");
    stop.abort();
    await done;
    expect(batches.length).toBeGreaterThanOrEqual(15);
    // A slice is 256 KiB, plus the line that straddled the previous slice's end.
    expect(Math.max(...batches)).toBeLessThanOrEqual(256 * 1024 + 200);
  });
});
