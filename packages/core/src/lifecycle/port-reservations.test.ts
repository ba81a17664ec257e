import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PortReservations } from "./port-reservations.ts";

const dir = mkdtempSync(join(tmpdir(), "corral-ports-"));
const sleeper = Bun.spawn(["sleep", "60"], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
afterAll(() => {
  sleeper.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("PortReservations", () => {
  it("shows a choice the ports other live processes reserved, records the choice, and gives it back", async () => {
    const file = join(dir, "a.json");
    // Another live process holds 9001; a gone one held 9002, and an hour-old reservation 9003.
    writeFileSync(
      file,
      JSON.stringify([
        { port: 9001, pid: sleeper.pid, slot: "1", at: Date.now() },
        { port: 9002, pid: 2 ** 22 + 7, slot: "2", at: Date.now() },
        { port: 9003, pid: sleeper.pid, slot: "3", at: Date.now() - 2 * 3_600_000 },
      ]),
    );
    const reservations = new PortReservations({ file });
    let seen: number[] = [];
    const port = await reservations.reserve("0", async (taken) => {
      seen = [...taken];
      return 9004;
    });
    expect([port, seen]).toEqual([9004, [9001]]);
    const ports = () => (JSON.parse(readFileSync(file, "utf8")) as { port: number }[]).map((r) => r.port);
    expect(ports()).toEqual([9001, 9004]);
    await reservations.release(9004);
    expect(ports()).toEqual([9001]);
  });

  it("lets a failing choice through without recording anything", async () => {
    const file = join(dir, "b.json");
    const reservations = new PortReservations({ file });
    await expect(reservations.reserve("0", async () => Promise.reject(new Error("no free port")))).rejects.toThrow(
      "no free port",
    );
    expect(await Bun.file(file).exists()).toBe(false);
  });
});
