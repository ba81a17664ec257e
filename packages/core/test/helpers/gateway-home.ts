import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGateway, type Gateway, type GatewayOptions } from "../../src/gateway/gateway.ts";
import { type Controller, type ControllerOptions, createController } from "../../src/lifecycle/controller.ts";
import { standInServer } from "../fixtures/index.ts";
import { killAll } from "./home.ts";

/** A model of a gateway test home: any model setting (aliases, ttl, pinned, gpu, args …). */
export type GatewayTestModel = { id: string } & Record<string, unknown>;

/** A temp home, its controller and gateway, and every PID they started (killed by `cleanup`). */
export interface GatewayHome {
  readonly home: string;
  readonly configFile: string;
  readonly controller: Controller;
  readonly gateway: Gateway;
  readonly pids: Set<number>;
  /** "registered" events seen: one per spawn */
  readonly spawns: () => number;
  /** a second controller and gateway on the same home, as a restarted corral would open it */
  reopen(options?: Partial<GatewayOptions>): Promise<{ controller: Controller; gateway: Gateway }>;
  cleanup(): Promise<void>;
}

/**
 * Ports are picked (with a bind check) from a range below 30000 that depends on the PID, so two
 * test processes rarely look at the same ports.
 */
function portRange(): [number, number] {
  const low = 20000 + (process.pid % 45) * 200;
  return [low, low + 199];
}

/**
 * A temp home whose corral.json runs the stand-in llama-server, with a gateway over it.
 * @example
 * const h = await gatewayHome([{ id: "a", gpu: "0" }], { max_queue: 2 }); try { … } finally { await h.cleanup() }
 */
export async function gatewayHome(
  models: readonly GatewayTestModel[],
  gateway: Record<string, unknown> = {},
  options: Partial<GatewayOptions> = {},
  controllerOptions: Pick<ControllerOptions, "gpuQuery"> = {},
): Promise<GatewayHome> {
  const home = mkdtempSync(join(tmpdir(), "corral-gateway-"));
  const server = await standInServer();
  const config = {
    llama_server: server,
    host: "127.0.0.1",
    ports: { range: portRange(), gpu: {} },
    timeouts: { load_ms: 15000, stop_ms: 3000, health_ms: 1000 },
    gpu_release_wait_ms: 0,
    gateway,
    models: models.map((m) => {
      const path = join(home, `${m.id}.gguf`);
      writeFileSync(path, "GGUF stand-in model\n");
      return { path, ...m };
    }),
  };
  const configFile = join(home, "corral.json");
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const pids = new Set<number>();
  let spawned = 0;
  const gateways: Gateway[] = [];
  const open = async (extra: Partial<GatewayOptions> = {}) => {
    const controller = await createController({
      home,
      configFile,
      gpuQuery: controllerOptions.gpuQuery ?? (async () => undefined),
    });
    controller.registry.subscribe((e) => {
      if (e.pid) pids.add(e.pid);
      if (e.event === "registered") spawned++;
    });
    const gw = createGateway({ controller, persistMs: 50, ...options, ...extra });
    gateways.push(gw);
    return { controller, gateway: gw };
  };
  const first = await open();
  return {
    home,
    configFile,
    ...first,
    pids,
    spawns: () => spawned,
    reopen: open,
    async cleanup() {
      for (const gw of gateways) await gw.stop();
      killAll(pids);
      rmSync(home, { recursive: true, force: true });
    },
  };
}
