import { describe, expect, it } from "bun:test";
import {
  formatBytes,
  formatCommand,
  formatMib,
  formatPercent,
  formatTime,
  formatUptime,
  gpuMemory,
  NONE,
} from "./format.ts";

describe("formatBytes", () => {
  it("picks the largest unit below 1024 with one decimal", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(1.5 * 2 ** 30)).toBe("1.5 GiB");
    expect(formatBytes(200 * 2 ** 20)).toBe("200 MiB");
  });

  it("shows a dash for a missing or nonsensical figure", () => {
    expect(formatBytes(undefined)).toBe(NONE);
    expect(formatBytes(Number.NaN)).toBe(NONE);
    expect(formatBytes(-1)).toBe(NONE);
  });
});

describe("formatMib", () => {
  it("reads nvidia-smi's MiB in the same units as bytes", () => {
    expect(formatMib(2048)).toBe("2.0 GiB");
    expect(formatMib(0)).toBe("0 B");
    expect(formatMib(undefined)).toBe(NONE);
  });
});

describe("formatUptime", () => {
  it("shows the two largest units", () => {
    expect(formatUptime(93_784_000)).toBe("1d 2h");
    expect(formatUptime(65_000)).toBe("1m 5s");
    expect(formatUptime(3_600_000)).toBe("1h 0m");
    expect(formatUptime(400)).toBe("0s");
  });

  it("shows a dash where the process has no uptime", () => {
    expect(formatUptime(undefined)).toBe(NONE);
  });
});

describe("formatPercent", () => {
  it("keeps one decimal below 100 and none above", () => {
    expect(formatPercent(12.345)).toBe("12.3 %");
    expect(formatPercent(180.4)).toBe("180 %");
    expect(formatPercent(undefined)).toBe(NONE);
  });
});

describe("gpuMemory", () => {
  it("gives the text and the share used", () => {
    expect(gpuMemory(4096, 8192)).toEqual({ text: "4.0 GiB / 8.0 GiB", share: 0.5 });
  });

  it("has no share where the total is unknown (unified-memory boards)", () => {
    expect(gpuMemory(1024, undefined)).toEqual({ text: `1.0 GiB / ${NONE}`, share: undefined });
  });
});

describe("formatTime", () => {
  it("shows a parseable time as local date and time", () => {
    expect(formatTime("2026-11-26T12:00:00.000Z")).toMatch(/^2026-11-2\d \d\d:\d\d:00$/);
  });

  it("returns an unparseable time unchanged", () => {
    expect(formatTime("yesterday")).toBe("yesterday");
    expect(formatTime(undefined)).toBe(NONE);
  });
});

describe("formatCommand", () => {
  it("quotes only the arguments that need it", () => {
    expect(formatCommand(["llama-server", "-m", "/models/my model.gguf"])).toBe(
      'llama-server -m "/models/my model.gguf"',
    );
    expect(formatCommand("llama-server --port 1")).toBe("llama-server --port 1");
  });
});
