import { describe, expect, it } from "bun:test";
import { InvalidInputError } from "./errors.ts";
import { entryGpus, parseSlot, slotKey, slotsOverlap } from "./slots.ts";

describe("slots", () => {
  it("parses one GPU or a comma list", () => {
    expect(parseSlot("0")).toEqual([0]);
    expect(parseSlot("0,1")).toEqual([0, 1]);
    expect(parseSlot("10,2")).toEqual([10, 2]);
  });

  it("refuses path tricks, padding, duplicates and anything not canonical", () => {
    for (const bad of [
      "",
      "../0",
      "0/..",
      "%2e%2e",
      "00",
      "000",
      "01",
      "0,,1",
      "0,1,",
      " 0",
      "-1",
      "1e3",
      "0,0",
      "a",
      "0;1",
    ]) {
      expect(() => parseSlot(bad)).toThrow(InvalidInputError);
    }
  });

  it("normalises a GPU selection into one key", () => {
    expect(slotKey([1, 0])).toBe("0,1");
    expect(slotKey("1, 0")).toBe("0,1");
    expect(slotKey(3)).toBe("3");
    expect(() => slotKey(-1)).toThrow(InvalidInputError);
  });

  it("reads the GPUs of an entry whatever form gpu_id took", () => {
    expect(entryGpus({ gpu_id: 1 })).toEqual([1]);
    expect(entryGpus({ gpu_id: "0,1" })).toEqual([0, 1]);
    expect(entryGpus({ gpu_id: "both" })).toEqual([]);
  });

  it("sees overlap between GPU sets that share a GPU", () => {
    expect(slotsOverlap("0,1", "1")).toBe(true);
    expect(slotsOverlap("0", "1")).toBe(false);
    expect(slotsOverlap("2,3", "1,3")).toBe(true);
  });
});
