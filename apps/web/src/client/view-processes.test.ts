import { describe, expect, it } from "bun:test";
import type { ProcessStatus } from "@corral/core/views";
import { bySlot, shownStatus, statusChanges } from "./view-processes.ts";

const row = (slot: string, state: ProcessStatus["state"], status: string, model_id = "tiny"): ProcessStatus => ({
  slot,
  entry: {
    pid: 4242,
    model_id,
    model_name: model_id,
    model_path: `/m/${model_id}.gguf`,
    gpu_id: slot,
    port: 8081,
    started_at: "2026-11-26T12:00:00.000Z",
    command_line: ["llama-server"],
    status,
  },
  state,
  state_reason: "same process",
  checked_at: "2026-11-26T12:00:01.000Z",
});

describe("shownStatus", () => {
  it("shows the registry's status while the process runs, the OS's verdict once it is gone", () => {
    expect(shownStatus(row("0", "running", "loading"))).toBe("loading");
    expect(shownStatus(row("0", "access-denied", "running"))).toBe("running");
    expect(shownStatus(row("0", "exited", "running"))).toBe("exited");
    expect(shownStatus(row("0", "pid-reused", "running"))).toBe("pid-reused");
  });
});

describe("bySlot", () => {
  it("orders slots numerically, lists after their first GPU", () => {
    const slots = bySlot(["10", "2", "0,1", "1", "0"].map((s) => row(s, "running", "running"))).map((r) => r.slot);
    expect(slots).toEqual(["0", "0,1", "1", "2", "10"]);
  });
});

describe("statusChanges", () => {
  it("says what appeared, what changed status or model, and what is gone", () => {
    const before = [row("0", "running", "loading"), row("1", "running", "running"), row("2", "running", "running")];
    const after = [
      row("0", "running", "running"),
      row("1", "running", "running", "small"),
      row("3", "exited", "running"),
    ];
    expect(statusChanges(before, after)).toEqual([
      "Slot 0 (tiny) is now running",
      "Slot 1 (small) is now running",
      "Slot 3 (tiny) appeared: exited",
      "Slot 2 (tiny) is gone",
    ]);
    expect(statusChanges(after, after)).toEqual([]);
  });
});
