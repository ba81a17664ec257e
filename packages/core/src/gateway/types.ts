import type { ModelConfig } from "../config/load.ts";
import type { ProcessEntry } from "../store/schema.ts";

/** The gateway's shapes: what a request holds while it runs, and what a model looks like from outside. */

/** A registry entry the gateway can route to. */
export interface Located {
  readonly slot: string;
  readonly entry: ProcessEntry;
}

/** What a finished request tells the gateway. */
export interface LeaseResult {
  /** generation speed llama-server reported (`timings.predicted_per_second`) */
  readonly tokensPerSecond?: number;
}

/**
 * One request's hold on a loaded model: the model stays busy (never unloaded, evicted or
 * swapped out) until `done()` is called, once, when the response (a stream included) ends.
 */
export interface Lease {
  readonly model: ModelConfig;
  readonly slot: string;
  readonly entry: ProcessEntry;
  /** `http://host:port` of the llama-server */
  readonly baseUrl: string;
  /** ms this request waited for a load it caused or joined; undefined when the model was loaded */
  readonly waitedMs: number | undefined;
  /** llama-server's own time from spawn to ready, for the load this request caused */
  readonly readyMs: number | undefined;
  done(result?: LeaseResult): void;
}

/** One configured model as the gateway sees it: `GET /v1/models`, `corral ls --models`, the page. */
export interface GatewayModelView {
  readonly id: string;
  readonly name: string;
  readonly aliases: readonly string[];
  readonly pinned: boolean;
  readonly gpu: string | undefined;
  readonly state: "loaded" | "loading" | "unloading" | "unloaded";
  readonly slot: string | undefined;
  readonly pid: number | undefined;
  readonly port: number | undefined;
  readonly in_flight: number;
  readonly waiting: number;
  readonly served: number;
  /** ISO time of the last request (or load) known, across restarts */
  readonly last_request_at: string | undefined;
  /** seconds of idleness before unload; 0 = never */
  readonly ttl_s: number;
  /** ISO time the idle unload is due (loaded, idle, ttl > 0); undefined otherwise */
  readonly unload_at: string | undefined;
  readonly tokens_per_second: number | undefined;
}
