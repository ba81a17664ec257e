import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A model entry for a home that runs the real llama-server. */
export interface RealModel {
  readonly id: string;
  /** @default "never" */
  readonly restart?: "never" | "on-failure";
  /** @default 3 */
  readonly max_restart_attempts?: number;
}

/** A temp corral home whose corral.json points at a real llama-server binary and gguf model. */
export interface RealHome {
  readonly home: string;
  readonly configFile: string;
  readonly server: string;
  readonly model: string;
  cleanup(): void;
}

/**
 * Writes a temp home for the real-server integration tests. Every model serves the same tiny
 * gguf; `GGML_NO_BACKTRACE` keeps ggml's abort from attaching gdb, which turns a 15 ms crash
 * into seconds of backtrace.
 * @example
 * const home = makeRealHome({ server, model }, [{ id: "tiny", restart: "on-failure" }])
 */
export function makeRealHome(llama: { server: string; model: string }, models: readonly RealModel[]): RealHome {
  const home = mkdtempSync(join(tmpdir(), "corral-real-"));
  // A random window, so concurrent test files rarely meet on a port (the picker skips taken ones anyway),
  // below the kernel's ephemeral ports (32768 and up here), which outgoing connections take.
  const low = 22000 + Math.floor(Math.random() * 10000);
  const config = {
    llama_server: llama.server,
    host: "127.0.0.1",
    ports: { range: [low, low + 200], gpu: {} },
    // Generous: a loaded 2-core machine may take seconds where an idle one takes 40 ms.
    timeouts: { load_ms: 60000, stop_ms: 10000, health_ms: 3000 },
    restart: { backoff_ms: 100, backoff_max_ms: 400, stable_ms: 60000, max_attempts: 3 },
    gpu_release_wait_ms: 0,
    models: models.map((m) => ({
      id: m.id,
      path: llama.model,
      args: [],
      env: { GGML_NO_BACKTRACE: "1" },
      restart: m.restart ?? "never",
      max_restart_attempts: m.max_restart_attempts ?? 3,
    })),
  };
  const configFile = join(home, "corral.json");
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  return { home, configFile, ...llama, cleanup: () => rmSync(home, { recursive: true, force: true }) };
}
