/** Registry entries for live processes, as corral itself would record them. */
import { identityOf, type ProcessEntry, type ProcessInfo, type ProcessProbe, type Registry } from "@corral/core";

/**
 * The entry corral would write for a process it started in `slot`, with its full identity
 * (start time, executable, uid), so verifying it needs no upgrade write.
 * @example
 * entryFor(await probe.get(pid), "3")
 */
export function entryFor(info: ProcessInfo, slot: string): ProcessEntry {
  const n = Number.parseInt(slot, 10);
  return {
    pid: info.pid,
    model_id: `bench-${n}`,
    model_name: `Bench model ${n}`,
    model_path: `/models/bench-${n}.gguf`,
    gpu_id: slot,
    port: 20_000 + n,
    started_at: new Date(info.startTimeMs ?? Date.now()).toISOString(),
    command_line: [...info.cmdline],
    status: "running",
    host: "127.0.0.1",
    restarts: 0,
    updated_at: new Date().toISOString(),
    ...identityOf(info),
  };
}

/**
 * Fills a registry with one entry per pid, in slots "0", "1", … (one write, as set-up).
 * @example
 * await fillRegistry(registry, sleepers.procs.map((p) => p.pid))
 */
export async function fillRegistry(
  registry: Registry,
  pids: readonly number[],
  probe: ProcessProbe,
  firstSlot = 0,
): Promise<void> {
  const scan = new Map((await probe.list()).map((p) => [p.pid, p]));
  const entries = pids.map((pid, i) => {
    const info = scan.get(pid);
    if (!info) throw new Error(`pid ${pid} is not running`);
    return entryFor(info, String(firstSlot + i));
  });
  await registry.store.update((current) => {
    entries.forEach((entry, i) => {
      current[String(firstSlot + i)] = entry;
    });
  });
}
