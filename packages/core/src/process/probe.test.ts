import { describe, expect, it } from "bun:test";
import { defaultProbe } from "./probe.ts";

describe("defaultProbe", () => {
  it("is one shared probe", () => {
    expect(defaultProbe()).toBe(defaultProbe());
  });

  it.if(process.platform === "linux")("reads /proc on Linux, with clock-tick precision and environments", async () => {
    const me = await defaultProbe().get(process.pid);
    expect(me?.startTimePrecisionMs).toBeLessThan(1000);
    expect(await defaultProbe().environ(process.pid)).toBeDefined();
  });
});
