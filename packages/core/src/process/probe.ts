import { accessSync, constants } from "node:fs";
import { procfsProbe } from "./procfs.ts";
import { psListProbe } from "./pslist.ts";
import type { ProcessProbe } from "./types.ts";

export { type ProcfsProbeOptions, procfsProbe } from "./procfs.ts";
export { type PsListProbeOptions, psListProbe } from "./pslist.ts";

let shared: ProcessProbe | undefined;

/**
 * The best probe for this machine: {@link procfsProbe} on Linux when `/proc` is readable
 * (precise start times, environments, no spawning), else {@link psListProbe}. Chosen once
 * per process and shared, since probes hold no state of their own.
 * @default procfsProbe() on Linux, psListProbe() elsewhere
 * @example
 * const info = await defaultProbe().get(4242);
 * if (info?.state === "Z") console.log("exited, not yet reaped");
 */
export function defaultProbe(): ProcessProbe {
  shared ??= procReadable() ? procfsProbe() : psListProbe();
  return shared;
}

function procReadable(): boolean {
  if (process.platform !== "linux") return false;
  try {
    accessSync("/proc/self/stat", constants.R_OK);
    accessSync("/proc/stat", constants.R_OK);
    return true;
  } catch {
    return false;
  }
}
