// Four `corral load` processes at once on slots 0-3 with a per-GPU port map (slot 0 and slot 1
// have their own ports, slots 2 and 3 pick from the range), twenty times: every load succeeds and
// every port is distinct. Before ports were chosen under a lock shared by processes (and the range
// kept clear of the map's ports), about half the rounds failed with "port … is already in use".
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createController } from "@corral/core";
import { standInServer } from "../../core/test/fixtures/index.ts";
import { OwnProcesses } from "../../core/test/integration/own-processes.ts";
import { spawnCorral } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "corral-cli-ports-"));
const own = new OwnProcesses();
afterAll(() => {
  own.killAll();
  rmSync(dir, { recursive: true, force: true });
});

function canBind(port: number): boolean {
  try {
    Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  }
}

/** A run of 12 bindable ports below 30000, found by a bind check. */
function freeRange(): number {
  for (let base = 23000 + (process.pid % 40) * 100; base < 29900; base += 100) {
    if (Array.from({ length: 12 }, (_, i) => base + i).every(canBind)) return base;
  }
  throw new Error("no 12 free ports in a row below 30000");
}

describe("corral load from four processes at once", () => {
  it("gives four slots four distinct ports, twenty times, every load succeeding", async () => {
    const low = freeRange();
    const models = [0, 1, 2, 3].map((gpu) => ({ id: `m${gpu}`, path: join(dir, "m.gguf"), gpu }));
    writeFileSync(join(dir, "m.gguf"), "GGUF stand-in\n");
    writeFileSync(
      join(dir, "corral.json"),
      JSON.stringify({
        llama_server: await standInServer(),
        ports: { range: [low, low + 11], gpu: { "0": low, "1": low + 3 } },
        timeouts: { load_ms: 30000, stop_ms: 3000, health_ms: 1000 },
        gpu_release_wait_ms: 0,
        models,
      }),
    );
    const controller = await createController({ home: dir, gpuQuery: async () => undefined });
    const failures: string[] = [];
    for (let round = 0; round < 20; round++) {
      const runs = models.map((m) => {
        const proc = spawnCorral({ dir }, ["load", m.id, "--json"]);
        return Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
      });
      const results = await Promise.all(runs);
      const ports = new Map<number, number>();
      for (const [gpu, [code, stdout, stderr]] of results.entries()) {
        if (code !== 0) {
          failures.push(`round ${round}, slot ${gpu}: exit ${code}: ${stderr.trim().split("\n")[0]}`);
          continue;
        }
        const { entry } = JSON.parse(stdout) as { entry: { pid: number; port: number } };
        own.add(entry.pid);
        ports.set(gpu, entry.port);
      }
      expect(new Set(ports.values()).size).toBe(ports.size);
      // The map's ports stay their slots'; the range gave the others ports the map does not name.
      for (const [gpu, port] of ports) {
        if (gpu === 0) expect(port).toBe(low);
        else if (gpu === 1) expect(port).toBe(low + 3);
        else expect([low, low + 3]).not.toContain(port);
      }
      for (const { slot } of await controller.entries()) await controller.unload(slot, { force: true });
    }
    expect(failures).toEqual([]);
  }, 240_000);
});
