import { describe, expect, it } from "bun:test";
import { bytes, clip, colorEnabled, duration, table, visibleWidth } from "./render.ts";

describe("colorEnabled", () => {
  it("turns colour off whenever NO_COLOR is set and not empty, even when forced", () => {
    expect(colorEnabled({ NO_COLOR: "1", FORCE_COLOR: "1" }, true)).toBe(false);
    expect(colorEnabled({ NO_COLOR: "" }, true)).toBe(true);
  });

  it("colours a terminal but not a pipe, unless forced", () => {
    expect(colorEnabled({}, true)).toBe(true);
    expect(colorEnabled({}, false)).toBe(false);
    expect(colorEnabled({ FORCE_COLOR: "1" }, false)).toBe(true);
    expect(colorEnabled({ TERM: "dumb" }, true)).toBe(false);
  });
});

describe("table", () => {
  it("aligns columns by their visible width and right-aligns numbers", () => {
    const rows = [
      { name: "a", n: 5 },
      { name: "longer", n: 12345 },
    ];
    const lines = table(rows, [
      { header: "NAME", cell: (r) => r.name },
      { header: "N", cell: (r) => String(r.n), align: "right" },
    ]);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the ANSI colour sequences, which start with ESC
    expect(lines.map((l) => l.replace(/\u001b\[[0-9;]*m/g, ""))).toEqual([
      "NAME        N",
      "a           5",
      "longer  12345",
    ]);
  });

  it("measures text without its colour codes", () => {
    expect(visibleWidth("\u001b[32mok\u001b[39m")).toBe(2);
  });
});

describe("formatting", () => {
  it("writes durations as a person reads them", () => {
    expect(duration(850)).toBe("850ms");
    expect(duration(2500)).toBe("2.5s");
    expect(duration(125_000)).toBe("2m 5s");
    expect(duration(3_723_000)).toBe("1h 2m");
    expect(duration(undefined)).toBe("-");
  });

  it("writes sizes in binary units", () => {
    expect(bytes(512)).toBe("512 B");
    expect(bytes(1_572_864)).toBe("1.5 MiB");
    expect(bytes(undefined)).toBe("-");
  });

  it("clips long text from the left, keeping the end", () => {
    expect(clip("/very/long/path/model.gguf", 12)).toBe("…/model.gguf");
    expect(clip("short", 12)).toBe("short");
  });
});
