import type { PlacementReport } from "../placement/check.ts";
import type { Orphan } from "../process/orphans.ts";
import type { ProcessUsage } from "../process/usage.ts";
import type { HealthReport } from "../server/health.ts";
import type { ProcessEntry } from "../store/schema.ts";
import type { ModelView, ProcessStatus, RecoveredSlot } from "./views.ts";

/** Options of `Controller.load`. */
export interface LoadOptions {
  /** GPU index or list ("0", "0,1", 1, [0, 1]), or "auto" (placement picks) @default the model's configured `gpu` */
  readonly gpu?: string | number | readonly number[];
  /** @default the model's `port`, else the GPU's configured port, else a free port from the range */
  readonly port?: number;
  /** unload whatever holds an overlapping slot first @default false */
  readonly replace?: boolean;
  /** how long to wait for `/health` to answer 200 @default config.timeouts.load_ms */
  readonly timeoutMs?: number;
  /** why, for the history @default "load requested" */
  readonly reason?: string;
  /** restart count to record with the new entry (the supervisor's restarts) @default 0 */
  readonly restarts?: number;
  /** load even when placement finds it does not fit in the free GPU memory @default false */
  readonly force?: boolean;
  /** recorded on the loading entry, so a page shows elapsed against it @default the last measured load time */
  readonly expectedReadyMs?: number;
}

/** What `Controller.load` returns once the server answers `/health` with 200. */
export interface LoadResult {
  readonly slot: string;
  readonly entry: ProcessEntry;
  /** ms from spawn to the first 200 from `/health` */
  readonly readyMs: number;
  /** what placement checked before the spawn (or why it checked nothing) */
  readonly placement?: PlacementReport;
}

/** What `Controller.switch` returns: the load, and the entry it replaced (read inside the slot's queue). */
export interface SwitchResult extends LoadResult {
  /** the slot's entry before the switch; undefined when the slot was empty */
  readonly previous: ProcessEntry | undefined;
}

/** Options of `Controller.unload`. */
export interface UnloadOptions {
  /** SIGKILL at once @default false */
  readonly force?: boolean;
  /** SIGTERM → SIGKILL escalation timeout @default config.timeouts.stop_ms */
  readonly timeoutMs?: number;
  /** @default "unload requested" */
  readonly reason?: string;
}

/** What `Controller.unload` did. */
export interface UnloadResult {
  readonly slot: string;
  readonly pid: number;
  readonly model_id: string;
  /** false when the process was already gone or its PID belongs to another process now */
  readonly signalled: boolean;
  readonly escalated: boolean;
  readonly ms: number;
  /** the port answered no more connections before unload returned */
  readonly portFreed: boolean;
  /** GPU memory the PID held was seen released (undefined: no GPU figures on this machine) */
  readonly gpuReleased?: boolean;
  readonly reason: string;
}

// Shapes the API sends are TypeBox schemas in views.ts; their static types are re-exported here.
export type { HealthReport, ModelView, Orphan, ProcessStatus, ProcessUsage, RecoveredSlot };
