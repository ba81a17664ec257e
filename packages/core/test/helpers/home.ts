import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { standInServer } from "../fixtures/index.ts";

/** A model for a test home's corral.yaml. */
export interface TestModel {
  id: string;
  args?: string[];
  gpu?: string;
  port?: number;
  restart?: "never" | "on-failure";
  max_restart_attempts?: number;
}

/** A temp home whose corral.yaml points at the stand-in llama-server and small model files. */
export interface TestHome {
  home: string;
  configFile: string;
  server: string;
  modelPath(id: string): string;
  cleanup(): void;
}

/**
 * Creates a temp home for lifecycle tests.
 * @example
 * const t = await makeHome([{ id: "tiny" }], { portRange: [20000, 20100] })
 */
export async function makeHome(models: TestModel[], extra: Record<string, unknown> = {}): Promise<TestHome> {
  const home = mkdtempSync(join(tmpdir(), "corral-home-"));
  const server = await standInServer();
  const modelPath = (id: string) => join(home, `${id}.gguf`);
  for (const m of models) writeFileSync(modelPath(m.id), "GGUF stand-in model\n");
  const config = {
    llama_server: server,
    host: "127.0.0.1",
    // Below the kernel's ephemeral ports (32768 and up here), so no outgoing connection takes one first.
    ports: { range: [21000 + Math.floor(Math.random() * 11000), 0], gpu: {} },
    timeouts: { load_ms: 15000, stop_ms: 3000, health_ms: 1000 },
    restart: { backoff_ms: 100, backoff_max_ms: 400, stable_ms: 60000, max_attempts: 3 },
    gpu_release_wait_ms: 0,
    models: models.map((m) => ({
      id: m.id,
      path: modelPath(m.id),
      args: m.args ?? [],
      ...(m.gpu !== undefined ? { gpu: m.gpu } : {}),
      ...(m.port !== undefined ? { port: m.port } : {}),
      ...(m.restart ? { restart: m.restart } : {}),
      ...(m.max_restart_attempts !== undefined ? { max_restart_attempts: m.max_restart_attempts } : {}),
    })),
    ...extra,
  };
  const range = config.ports.range as number[];
  range[1] = range[0]! + 200;
  const configFile = join(home, "corral.json");
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  return { home, configFile, server, modelPath, cleanup: () => rmSync(home, { recursive: true, force: true }) };
}

/** Whether a PID is alive and not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Kills PIDs this test started, ignoring the ones already gone. */
export function killAll(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
