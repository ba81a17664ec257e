import { describe, expect, it } from "bun:test";
import type { GpuState } from "./gpu-state.ts";
import { planRoom, type RoomCandidate } from "./room.ts";

const ours = (pid: number, used_mib: number, slot: string) => ({
  pid,
  used_mib,
  command: "llama-server",
  holder: { kind: "ours" as const, slot, model_id: `m${pid}` },
});
/** GPU 0: 24 GiB, 2 GiB free, three of our models holding 6, 8 and 8 GiB. GPU 1: idle. */
const states: GpuState[] = [
  {
    index: 0,
    name: "RTX 4090",
    total_mib: 24564,
    used_mib: 22528,
    free_mib: 2036,
    others_mib: 0,
    state: "ours",
    held: [ours(1, 6144, "0"), ours(2, 8192, "0"), ours(3, 8192, "0")],
  },
  {
    index: 1,
    name: "RTX 4090",
    total_mib: 24564,
    used_mib: 1,
    free_mib: 24563,
    others_mib: 0,
    state: "idle",
    held: [],
  },
];
const candidate = (pid: number, last_used: number, extra: Partial<RoomCandidate> = {}): RoomCandidate => ({
  slot: "0",
  pid,
  model_id: `m${pid}`,
  last_used,
  pinned: false,
  busy: false,
  ...extra,
});

describe("planRoom", () => {
  it("unloads the least recently used models on that GPU, only as many as the load needs", () => {
    const plan = planRoom(new Map([[0, 7000]]), states, [candidate(1, 300), candidate(2, 100), candidate(3, 200)]);
    expect(plan.unload.map((c) => c.pid)).toEqual([2]);
    expect(plan.fits).toBe(true);
  });

  it("passes over pinned and busy models, and models holding nothing on the short GPU", () => {
    const plan = planRoom(new Map([[0, 7000]]), states, [
      candidate(2, 100, { pinned: true }),
      candidate(3, 150, { busy: true }),
      candidate(9, 50),
      candidate(1, 300),
    ]);
    expect(plan.unload.map((c) => c.pid)).toEqual([1]);
    expect(plan.fits).toBe(true);
  });

  it("says what is still missing when even every candidate is not enough", () => {
    const plan = planRoom(new Map([[0, 30000]]), states, [candidate(1, 1), candidate(2, 2)]);
    expect(plan.unload.map((c) => c.pid)).toEqual([1, 2]);
    expect(plan).toMatchObject({ fits: false, short_mib: { "0": 30000 - (2036 + 6144 + 8192) } });
  });

  it("unloads nothing when the load already fits", () => {
    expect(planRoom(new Map([[1, 20000]]), states, [candidate(1, 1)])).toEqual({
      unload: [],
      fits: true,
      short_mib: {},
    });
  });
});
