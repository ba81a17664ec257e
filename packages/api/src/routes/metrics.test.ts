import { describe, expect, it } from "bun:test";
import type { GpuSnapshot, ProcessStatus } from "@corral/core";
import { prometheusText } from "./metrics.ts";

const entry = {
  pid: 4242,
  model_id: 'qwen "7b"',
  model_name: "Qwen",
  model_path: "/m/q.gguf",
  gpu_id: "0",
  port: 8081,
  started_at: "2026-11-26T12:00:00.000Z",
  command_line: ["llama-server"],
  status: "running",
  restarts: 2,
};

const healthy: ProcessStatus = {
  slot: "0",
  entry,
  state: "running",
  state_reason: "same process",
  health: { ok: true, state: "ok", ms: 3 },
  uptime_ms: 90_000,
  usage: { cpu_percent: 12.5, rss_bytes: 1_000_000, gpu_memory_mib: 512 },
  checked_at: "2026-11-26T12:01:30.000Z",
};

const gone: ProcessStatus = {
  ...healthy,
  slot: "1",
  entry: { ...entry, model_id: "llama", pid: 4343, restarts: undefined },
  state: "exited",
  health: undefined,
  uptime_ms: undefined,
  usage: undefined,
};

const gpu: GpuSnapshot = {
  gpus: [
    { index: 0, name: "NVIDIA H100", memory_total_mib: 81_559, memory_used_mib: 600 },
    { index: 1, name: "GB10", memory_total_mib: undefined, memory_used_mib: undefined },
  ],
  processes: [{ pid: 4242, used_memory_mib: 512, gpu_index: 0 }],
  taken_at: "2026-11-26T12:01:30.000Z",
};

describe("prometheusText", () => {
  it("reports each slot as up or down, with restarts, CPU, memory and GPU memory in bytes", () => {
    const text = prometheusText([healthy, gone], gpu);
    expect(text).toContain('corral_process_up{slot="0",model="qwen \\"7b\\""} 1');
    expect(text).toContain('corral_process_up{slot="1",model="llama"} 0');
    expect(text).toContain('corral_process_restarts_total{slot="0",model="qwen \\"7b\\""} 2');
    expect(text).toContain('corral_process_restarts_total{slot="1",model="llama"} 0');
    expect(text).toContain('corral_process_cpu_percent{slot="0",model="qwen \\"7b\\""} 12.5');
    expect(text).toContain('corral_process_resident_memory_bytes{slot="0",model="qwen \\"7b\\""} 1000000');
    expect(text).toContain(`corral_process_gpu_memory_bytes{slot="0",model="qwen \\"7b\\""} ${512 * 1024 * 1024}`);
    expect(text).toContain("corral_processes_tracked 2");
    // A dead process has no usage figures: no sample rather than a made-up zero.
    expect(text).not.toContain('corral_process_cpu_percent{slot="1"');
  });

  it("gives per-GPU memory only where nvidia-smi reported it", () => {
    const text = prometheusText([], gpu);
    expect(text).toContain(`corral_gpu_memory_total_bytes{gpu="0",name="NVIDIA H100"} ${81_559 * 1024 * 1024}`);
    expect(text).not.toContain('gpu="1"');
  });

  it("declares a HELP and TYPE line for every family and ends with a newline", () => {
    const text = prometheusText([healthy], undefined);
    const families = [...text.matchAll(/^# TYPE (\S+) (gauge|counter)$/gm)].map((m) => m[1]);
    expect(families).toContain("corral_process_up");
    expect(families).toContain("corral_process_restarts_total");
    for (const name of families) expect(text).toContain(`# HELP ${name} `);
    expect(text.endsWith("\n")).toBe(true);
  });
});
