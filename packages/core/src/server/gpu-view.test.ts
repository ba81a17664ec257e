import { describe, expect, it } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { gpusView } from "./gpu-view.ts";
import { type GpuSnapshot, GpusViewSchema } from "./views.ts";

const snapshot: GpuSnapshot = {
  gpus: [
    { index: 0, name: "NVIDIA H100", memory_total_mib: 81_559, memory_used_mib: 1_112, uuid: "GPU-0" },
    { index: 1, name: "GB10", memory_total_mib: undefined, memory_used_mib: undefined },
  ],
  processes: [
    { pid: 4242, used_memory_mib: 600, gpu_index: 0 },
    { pid: 4242, used_memory_mib: 500, gpu_index: 1 },
    { pid: 999, used_memory_mib: 12, gpu_index: 0 },
  ],
  taken_at: "2026-11-26T12:00:00.000Z",
};

describe("gpusView", () => {
  it("puts each slot on every GPU of its gpu_id and marks the processes corral tracks", () => {
    const view = gpusView(snapshot, [
      { slot: "0,1", entry: { pid: 4242, gpu_id: "0,1" } },
      { slot: "2", entry: { pid: 5151, gpu_id: 2 } },
    ]);
    expect(view).toEqual({
      available: true,
      taken_at: snapshot.taken_at,
      gpus: [
        {
          index: 0,
          name: "NVIDIA H100",
          memory_total_mib: 81_559,
          memory_used_mib: 1_112,
          uuid: "GPU-0",
          slots: ["0,1"],
          processes: [
            { pid: 4242, used_memory_mib: 600, slot: "0,1" },
            { pid: 999, used_memory_mib: 12 },
          ],
        },
        // No figure from nvidia-smi ("[N/A]") is no key at all, not a null or a zero.
        { index: 1, name: "GB10", slots: ["0,1"], processes: [{ pid: 4242, used_memory_mib: 500, slot: "0,1" }] },
      ],
    });
    expect(Value.Check(GpusViewSchema, JSON.parse(JSON.stringify(view)))).toBe(true);
  });

  it("says no GPU figures are available without a snapshot", () => {
    const view = gpusView(undefined, [{ slot: "0", entry: { pid: 4242, gpu_id: 0 } }]);
    expect(view).toEqual({ available: false, gpus: [] });
    expect(Value.Check(GpusViewSchema, view)).toBe(true);
  });
});
