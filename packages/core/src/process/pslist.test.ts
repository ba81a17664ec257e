import { describe, expect, it } from "bun:test";
import { fromDescriptor, psListProbe } from "./pslist.ts";

describe("fromDescriptor", () => {
  it("converts a ps-list descriptor with whole-second start time precision", () => {
    const startTime = new Date("2026-11-26T12:00:00Z");
    const info = fromDescriptor(
      {
        pid: 10,
        ppid: 1,
        name: "llama-server",
        cmd: "/opt/llama-server -m /m/a.gguf",
        path: "/opt/llama-server",
        uid: 1000,
        startTime,
      },
      new Map([[1000, "alice"]]),
    );
    expect(info).toEqual({
      pid: 10,
      ppid: 1,
      name: "llama-server",
      exe: "/opt/llama-server",
      cmdline: ["/opt/llama-server", "-m", "/m/a.gguf"],
      startTimeMs: startTime.getTime(),
      startTimePrecisionMs: 1000,
      uid: 1000,
      user: "alice",
      state: undefined,
      accessDenied: false,
    });
  });

  it("marks a <defunct> process as a zombie", () => {
    const info = fromDescriptor({ pid: 11, ppid: 10, name: "sleep", cmd: "[sleep] <defunct>", path: "" }, new Map());
    expect(info).toMatchObject({ state: "Z", exe: undefined, cmdline: [] });
  });

  it("copes with Windows descriptors that carry only pid, ppid and name", () => {
    const info = fromDescriptor({ pid: 12, ppid: 4, name: "llama-server.exe" }, new Map());
    expect(info).toMatchObject({
      name: "llama-server.exe",
      exe: undefined,
      cmdline: [],
      startTimeMs: undefined,
      uid: undefined,
    });
  });
});

describe("psListProbe", () => {
  it("uses the lister it is given for list and get, and never reads environments", async () => {
    const probe = psListProbe({
      list: async () => [
        { pid: 5, ppid: 1, name: "a" },
        { pid: 6, ppid: 5, name: "b" },
      ],
      platform: "win32",
    });
    expect((await probe.list()).map((p) => p.pid)).toEqual([5, 6]);
    expect((await probe.get(6))?.name).toBe("b");
    expect(await probe.get(7)).toBeUndefined();
    expect(await probe.environ(5)).toBeUndefined();
  });

  it("finds this test process through the real ps", async () => {
    const me = await psListProbe().get(process.pid);
    expect(me?.ppid).toBe(process.ppid);
    expect(me?.startTimePrecisionMs).toBe(1000);
    expect(me?.startTimeMs).toBeLessThanOrEqual(Date.now());
  });
});
