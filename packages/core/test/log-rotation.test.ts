import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, readFileSync, statSync } from "node:fs";
import { createController } from "../src/lifecycle/controller.ts";
import { createSupervisor } from "../src/supervision/supervisor.ts";
import { killAll, makeHome, type TestHome } from "./helpers/home.ts";

const homes: TestHome[] = [];
const started = new Set<number>();

afterAll(() => {
  killAll(started);
  for (const t of homes) t.cleanup();
});

const MAX = 65_536;
const numbers = (text: string) => [...text.matchAll(/^fake log line (\d+)$/gm)].map((m) => Number(m[1]));

describe("log rotation", () => {
  it("keeps a server's log under logs.max_bytes by copy-and-truncate while it appends, and a follower loses no kept line", async () => {
    const t = await makeHome([{ id: "chatty", gpu: "0", args: ["--fake-log-every-ms", "1"] }], {
      logs: { max_bytes: MAX, keep: 2 },
    });
    homes.push(t);
    const controller = await createController({
      home: t.home,
      configFile: t.configFile,
      gpuQuery: async () => undefined,
    });
    const supervisor = createSupervisor(controller, { followHistory: false });
    const { entry } = await controller.load("chatty");
    started.add(entry.pid);
    const file = entry.log_file!;
    const followed: string[] = [];
    const follow = new AbortController();
    let ready!: () => void;
    const settled = new Promise<void>((resolve) => (ready = resolve));
    const following = controller.followLogs("0", (lines) => followed.push(...lines), follow.signal, { onReady: ready });
    await settled;
    let rotations = 0;
    while (rotations < 3) {
      await supervisor.tick();
      rotations = (await controller.history({ limit: 200 })).filter((e) => e.event === "log-rotated").length;
      await Bun.sleep(20);
    }
    // The server went on writing at the start of the truncated file (O_APPEND), not past a hole.
    const size = statSync(file).size;
    expect(size).toBeLessThan(MAX * 2);
    expect(readFileSync(file, "utf8").charCodeAt(0)).not.toBe(0);
    expect(existsSync(`${file}.1`)).toBe(true);
    expect(existsSync(`${file}.2`)).toBe(true);
    expect(existsSync(`${file}.3`)).toBe(false);
    // Every line still on disk (the two kept copies and the log), in order, was seen by the follower.
    const onDisk = numbers([`${file}.2`, `${file}.1`, file].map((f) => readFileSync(f, "utf8")).join(""));
    const last = onDisk.at(-1)!;
    await Bun.sleep(0);
    const deadline = Date.now() + 5000;
    while (!numbers(followed.join("\n")).includes(last) && Date.now() < deadline) await Bun.sleep(20);
    follow.abort();
    await following;
    const seen = numbers(followed.join("\n"));
    const seenSet = new Set(seen);
    const missed = onDisk.filter((n) => n >= (seen[0] ?? 0) && !seenSet.has(n));
    expect(missed).toEqual([]);
    // Strictly increasing: nothing read twice across a rotation.
    expect(seen.every((n, i) => i === 0 || n > seen[i - 1]!)).toBe(true);
    await controller.unload("0", { force: true });
  }, 60_000);
});
