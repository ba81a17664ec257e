import { describe, expect, it } from "bun:test";
import { type GpuSnapshot, parseComputeAppsCsv, parseGpuCsv, waitGpuReleased } from "./gpu.ts";

const U0 = "GPU-5a1f0e7c-3b2d-4c8e-9f10-2a6b7c8d9e01";
const U1 = "GPU-8c2e4d6f-7a9b-4e1c-b3d5-6f7a8b9c0d12";

describe("parseGpuCsv", () => {
  it("parses the 4-column form", () => {
    expect(parseGpuCsv("0, NVIDIA GeForce RTX 4090, 24564, 18734\n1, NVIDIA GeForce RTX 4090, 24564, 2\n")).toEqual([
      { index: 0, name: "NVIDIA GeForce RTX 4090", memory_total_mib: 24564, memory_used_mib: 18734 },
      { index: 1, name: "NVIDIA GeForce RTX 4090", memory_total_mib: 24564, memory_used_mib: 2 },
    ]);
  });

  it("parses the 5-column form with the uuid, CRLF line ends included", () => {
    expect(parseGpuCsv(`0, NVIDIA H100 80GB HBM3, 81559, 0, ${U0}\r\n`)).toEqual([
      { index: 0, name: "NVIDIA H100 80GB HBM3", memory_total_mib: 81559, memory_used_mib: 0, uuid: U0 },
    ]);
  });

  it("turns [N/A] and [Not Supported] figures into undefined", () => {
    expect(parseGpuCsv(`0, NVIDIA GB10, [N/A], [Not Supported], ${U0}\n1, Old Card, [N/A], 12\n`)).toEqual([
      { index: 0, name: "NVIDIA GB10", memory_total_mib: undefined, memory_used_mib: undefined, uuid: U0 },
      { index: 1, name: "Old Card", memory_total_mib: undefined, memory_used_mib: 12 },
    ]);
  });

  it("keeps a name that holds a comma and tells a [N/A] uuid from a [N/A] memory figure", () => {
    expect(
      parseGpuCsv("0, Card, Rev B, 8192, 100\n1, Card B, 8192, 100, [N/A]\n2, Card, Rev C, 8192, [N/A]\n"),
    ).toEqual([
      { index: 0, name: "Card, Rev B", memory_total_mib: 8192, memory_used_mib: 100 },
      { index: 1, name: "Card B", memory_total_mib: 8192, memory_used_mib: 100 },
      { index: 2, name: "Card, Rev C", memory_total_mib: 8192, memory_used_mib: undefined },
    ]);
  });

  it("skips lines that are not GPU rows", () => {
    expect(parseGpuCsv("No devices were found\n\n[N/A], x, 1, 2\n")).toEqual([]);
  });
});

describe("parseComputeAppsCsv", () => {
  const gpus = parseGpuCsv(`0, A, 24564, 1, ${U0}\n1, B, 24564, 1, ${U1}\n`);

  it("maps each process to its GPU index through the uuid, once per GPU it uses", () => {
    expect(parseComputeAppsCsv(`41001, 17850, ${U0}\n41002, 470, ${U0}\n41002, 8702, ${U1}\n`, gpus)).toEqual([
      { pid: 41001, used_memory_mib: 17850, gpu_uuid: U0, gpu_index: 0 },
      { pid: 41002, used_memory_mib: 470, gpu_uuid: U0, gpu_index: 0 },
      { pid: 41002, used_memory_mib: 8702, gpu_uuid: U1, gpu_index: 1 },
    ]);
  });

  it("parses the 2-column form without GPU indexes", () => {
    expect(parseComputeAppsCsv("41001, 17850\n")).toEqual([{ pid: 41001, used_memory_mib: 17850 }]);
  });

  it("keeps a process whose memory is [N/A] with 0 MiB and skips rows without a PID", () => {
    expect(parseComputeAppsCsv(`51234, [N/A], ${U1}\nNo running processes found\n[N/A], 3\n`, gpus)).toEqual([
      { pid: 51234, used_memory_mib: 0, gpu_uuid: U1, gpu_index: 1 },
    ]);
  });

  it("returns no processes for empty output", () => {
    expect(parseComputeAppsCsv("")).toEqual([]);
  });
});

const snapshot = (pids: number[]): GpuSnapshot => ({
  gpus: [{ index: 0, name: "A", memory_total_mib: 24564, memory_used_mib: 100 }],
  processes: pids.map((pid) => ({ pid, used_memory_mib: 50, gpu_index: 0 })),
  taken_at: new Date().toISOString(),
});

describe("waitGpuReleased", () => {
  it("answers undefined at once when there are no GPU figures", async () => {
    let calls = 0;
    const result = await waitGpuReleased(7, {
      query: async () => {
        calls++;
        return undefined;
      },
    });
    expect(result.released).toBeUndefined();
    expect(calls).toBe(1);
  });

  it("answers true once the PID is gone from the snapshot, riding over a failed query in between", async () => {
    const answers = [snapshot([7, 8]), undefined, snapshot([7]), snapshot([8])];
    let calls = 0;
    const result = await waitGpuReleased(7, { intervalMs: 1, timeoutMs: 10_000, query: async () => answers[calls++] });
    expect(result.released).toBe(true);
    expect(calls).toBe(4);
  });

  it("answers false when the PID still holds memory at the timeout", async () => {
    let calls = 0;
    const result = await waitGpuReleased(7, {
      intervalMs: 10,
      timeoutMs: 100,
      query: async () => {
        calls++;
        return snapshot([7]);
      },
    });
    expect(result.released).toBe(false);
    expect(result.ms).toBeGreaterThanOrEqual(100);
    expect(calls).toBeGreaterThan(1);
  });
});
