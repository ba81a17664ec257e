import type { ProcessEntry } from "../../src/store/schema.ts";

/** A valid registry entry for tests; `over` replaces any field. */
export function storeEntry(slot: string, over: Partial<ProcessEntry> = {}): ProcessEntry {
  return {
    pid: 10_000 + Number.parseInt(slot, 10),
    model_id: `model-${slot}`,
    model_name: `Model ${slot}`,
    model_path: `/models/model-${slot}.gguf`,
    gpu_id: Number.parseInt(slot, 10) % 8,
    port: 20_000 + Number.parseInt(slot, 10),
    started_at: "2026-11-26T12:00:00.000Z",
    command_line: ["llama-server", "-m", `/models/model-${slot}.gguf`],
    status: "running",
    ...over,
  };
}
