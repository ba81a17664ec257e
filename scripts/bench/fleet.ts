/**
 * Sixteen tracked stand-in llama-servers in one corral home, loaded the way a user loads
 * them (`controller.load`, one per GPU slot 0..15), shared by the server and CLI scenarios.
 * Started on first use, stopped by `closeFleet()` (the suite calls it at the end).
 */
import { type Controller, createController } from "@corral/core";
import { makeHome, type TestHome } from "../../packages/core/test/helpers/home.ts";
import { type Tracker, within } from "./harness.ts";

/** The home and its loaded servers. */
export interface Fleet {
  readonly home: string;
  readonly configFile: string;
  readonly controller: Controller;
  /** slot → pid of each loaded server */
  readonly servers: Map<string, number>;
}

export const FLEET_SIZE = 16;

interface FleetState {
  fleet: Promise<Fleet>;
  tracker: Tracker;
  /** every server pid it registered, for the end */
  pids: number[];
  home?: TestHome;
  off?: () => void;
}

let current: FleetState | undefined;

/**
 * The shared fleet, loading it on first call.
 * @example
 * const { home, servers } = await fleet(ctx.tracker)
 */
export function fleet(tracker: Tracker): Promise<Fleet> {
  if (current) return current.fleet;
  const state: Omit<FleetState, "fleet"> = { tracker, pids: [] };
  current = Object.assign(state, { fleet: loadFleet(state) });
  return current.fleet;
}

async function loadFleet(state: Omit<FleetState, "fleet">): Promise<Fleet> {
  const models = Array.from({ length: FLEET_SIZE }, (_, i) => ({ id: `model-${i}` }));
  const home = await makeHome(models);
  state.home = home;
  state.tracker.dir(home.home);
  const controller = await createController({ home: home.home, configFile: home.configFile });
  // Each server is its own process group, which the end of the suite kills; a server
  // reloaded later through `controller` is tracked the same way.
  state.off = controller.registry.subscribe((event) => {
    if (event.event === "registered" && event.pid) {
      state.tracker.group(event.pid);
      state.pids.push(event.pid);
    }
  });
  // One at a time: concurrent loads in one controller can pick the same free port (the
  // port is chosen before either server binds it), and the second then fails to bind.
  const servers = new Map<string, number>();
  await within(
    (async () => {
      for (const [i, m] of models.entries()) {
        const { slot, entry } = await controller.load(m.id, { gpu: i });
        servers.set(slot, entry.pid);
      }
    })(),
    60_000,
    `loading ${FLEET_SIZE} stand-in servers`,
  );
  return { home: home.home, configFile: home.configFile, controller, servers };
}

/**
 * Stops every server the fleet started (SIGKILL to each process group) and removes its home.
 * @example
 * await closeFleet()
 */
export async function closeFleet(): Promise<void> {
  const state = current;
  current = undefined;
  if (!state) return;
  await state.fleet.catch(() => undefined);
  state.off?.();
  for (const pid of state.pids) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone
    }
    state.tracker.forget(pid);
  }
  state.home?.cleanup();
}
