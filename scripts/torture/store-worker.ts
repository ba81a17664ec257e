// One writer of scenario 1: registers and unregisters entries in its own range of slots, forever,
// and appends to its acknowledgement file what it is about to do ("?+ slot id", "?- slot") and what
// `register`/`unregister` acknowledged ("+ slot id", "- slot"). Each line is one write(2), so a
// SIGKILL leaves whole lines only. On any error it writes "! …" and exits 3.
// usage: bun store-worker.ts <home> <worker> <incarnation> <ack file> <seed>
import { appendFileSync } from "node:fs";
import { createRegistry, type ProcessEntry } from "@corral/core";
import { Rng } from "./random.ts";

// Worker w owns slots w*100 … w*100+SLOTS_PER_WORKER-1; the parent tells a slot's worker by slot / 100.
const SLOTS_PER_WORKER = 40;

const [home, workerArg, incarnationArg, ackFile, seedArg] = process.argv.slice(2);
if (!home || !workerArg || !incarnationArg || !ackFile || !seedArg) {
  throw new Error("usage: store-worker.ts <home> <worker> <incarnation> <ack file> <seed>");
}
const worker = Number(workerArg);
const rng = new Rng(Number(seedArg));
const first = worker * 100;
const ack = (line: string) => appendFileSync(ackFile, `${line}\n`);
const registry = createRegistry({ home, lockTimeoutMs: 60_000 });

function entry(slot: string, id: string): ProcessEntry {
  return {
    pid: rng.int(1000, 4_000_000),
    model_id: `torture-${worker}`,
    model_name: `Torture ${worker}`,
    model_path: `/models/torture-${slot}.gguf`,
    gpu_id: slot,
    port: 20_000 + Number(slot),
    started_at: new Date().toISOString(),
    command_line: ["llama-server", "-m", `/models/torture-${slot}.gguf`, "--port", String(20_000 + Number(slot))],
    status: "running",
    // Given, so register() asks the OS nothing about these made-up PIDs.
    proc_start_ms: 1_700_000_000_000,
    executable: "/opt/llama/llama-server",
    instance_id: id,
  };
}

try {
  const mine = (slot: string) => Number(slot) >= first && Number(slot) < first + SLOTS_PER_WORKER;
  const present = new Set(Object.keys((await registry.snapshot()).entries).filter(mine));
  ack("start");
  for (let n = 0; ; n++) {
    const slot = String(first + rng.int(0, SLOTS_PER_WORKER - 1));
    if (present.has(slot)) {
      ack(`?- ${slot}`);
      await registry.unregister(slot, { reason: "torture" });
      present.delete(slot);
      ack(`- ${slot}`);
    } else {
      const id = `${worker}.${incarnationArg}.${n}`;
      ack(`?+ ${slot} ${id}`);
      await registry.register(slot, entry(slot, id), { reason: "torture" });
      present.add(slot);
      ack(`+ ${slot} ${id}`);
    }
  }
} catch (error) {
  const e = error as Error;
  ack(`! ${e.name}: ${e.message.split("\n")[0]}`);
  process.exit(3);
}
