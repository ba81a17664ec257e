import { MARKER_ENV, type ProcessProbe } from "../process/types.ts";
import type { GpuSnapshot } from "../server/gpu.ts";
import type { ProcessEntry } from "../store/schema.ts";

/** Whose a process holding GPU memory is. */
export type Holder =
  /** started by this home: the slot that tracks it (undefined for an untracked one of ours) */
  | { readonly kind: "ours"; readonly slot?: string; readonly model_id?: string }
  /** a corral server of another home (its `CORRAL_HOME_ID`) */
  | { readonly kind: "other-home"; readonly home_id: string }
  /** anything else */
  | { readonly kind: "other" };

/** One process holding memory on one GPU, named and judged. */
export interface HeldMemory {
  readonly pid: number;
  readonly used_mib: number;
  /** its command line ("" when it is gone or unreadable) */
  readonly command: string;
  readonly holder: Holder;
}

/** A GPU as placement sees it. */
export interface GpuState {
  readonly index: number;
  readonly name: string;
  /** undefined on boards that report no memory figures (unified memory) */
  readonly total_mib?: number;
  readonly used_mib?: number;
  readonly free_mib?: number;
  /** memory held by processes that are not this home's */
  readonly others_mib: number;
  /** `occupied` once others hold more than `gpu.occupied_mb` (the original controller's words) */
  readonly state: "idle" | "ours" | "occupied";
  readonly held: readonly HeldMemory[];
}

/** What {@link classifyGpus} needs besides the snapshot. */
export interface ClassifyContext {
  /** this home's registry entries */
  readonly entries: readonly { readonly slot: string; readonly entry: ProcessEntry }[];
  /** this home's id (`CORRAL_HOME_ID` of the servers it starts) */
  readonly homeId: string;
  /** reads command lines and environments */
  readonly probe: Pick<ProcessProbe, "get" | "environ">;
  /** MiB others may hold before a GPU counts as occupied @default 1024 */
  readonly occupiedMb?: number;
}

/**
 * Names and judges every process holding GPU memory (this home's, and in which slot; another
 * corral home's; another program's, with its command line) and calls each GPU `idle`, `ours`
 * or `occupied` (others hold more than `occupiedMb`).
 * @example
 * const gpus = await classifyGpus(await queryGpus(), { entries: await registry.list(), homeId: registry.homeId, probe })
 * gpus.filter((g) => g.state === "occupied").map((g) => g.index)
 */
export async function classifyGpus(snapshot: GpuSnapshot, ctx: ClassifyContext): Promise<GpuState[]> {
  const limit = ctx.occupiedMb ?? 1024;
  const judged = new Map<number, Promise<{ command: string; holder: Holder }>>();
  const judge = (pid: number) => {
    const found = judged.get(pid) ?? judgeProcess(pid, ctx);
    judged.set(pid, found);
    return found;
  };
  return Promise.all(
    snapshot.gpus.map(async (gpu) => {
      const mine = snapshot.processes.filter((p) => p.gpu_index === gpu.index && p.used_memory_mib > 0);
      const held = await Promise.all(
        mine.map(async (p) => ({ pid: p.pid, used_mib: p.used_memory_mib, ...(await judge(p.pid)) })),
      );
      const others = held.filter((h) => h.holder.kind !== "ours").reduce((a, h) => a + h.used_mib, 0);
      const ours = held.some((h) => h.holder.kind === "ours");
      const free =
        gpu.memory_total_mib !== undefined && gpu.memory_used_mib !== undefined
          ? Math.max(0, gpu.memory_total_mib - gpu.memory_used_mib)
          : undefined;
      return {
        index: gpu.index,
        name: gpu.name,
        ...(gpu.memory_total_mib !== undefined ? { total_mib: gpu.memory_total_mib } : {}),
        ...(gpu.memory_used_mib !== undefined ? { used_mib: gpu.memory_used_mib } : {}),
        ...(free !== undefined ? { free_mib: free } : {}),
        others_mib: others,
        state: others > limit ? "occupied" : ours ? "ours" : "idle",
        held,
      } satisfies GpuState;
    }),
  );
}

async function judgeProcess(pid: number, ctx: ClassifyContext): Promise<{ command: string; holder: Holder }> {
  const tracked = ctx.entries.find(({ entry }) => entry.pid === pid);
  const info = await ctx.probe.get(pid).catch(() => undefined);
  const command = info ? (info.cmdline.length > 0 ? info.cmdline.join(" ") : info.name) : "";
  if (tracked) return { command, holder: { kind: "ours", slot: tracked.slot, model_id: tracked.entry.model_id } };
  const home = info ? (await ctx.probe.environ(pid).catch(() => undefined))?.[MARKER_ENV.home] : undefined;
  if (home === ctx.homeId) return { command, holder: { kind: "ours" } };
  if (home) return { command, holder: { kind: "other-home", home_id: home } };
  return { command, holder: { kind: "other" } };
}

/**
 * How a holder reads in a message: "pid 4242 (python train.py, not corral's)".
 * @example
 * describeHolder({ pid: 4242, used_mib: 14643, command: "python train.py", holder: { kind: "other" } })
 */
export function describeHolder(h: HeldMemory): string {
  const command = h.command ? shorten(h.command) : "";
  switch (h.holder.kind) {
    case "ours":
      return h.holder.slot
        ? `pid ${h.pid} (${h.holder.model_id} in corral slot ${h.holder.slot})`
        : `pid ${h.pid} (an untracked server of this corral home)`;
    case "other-home":
      return `pid ${h.pid} (${command || "llama-server"}, another corral home's)`;
    default:
      return `pid ${h.pid} (${command ? `${command}, ` : ""}not corral's)`;
  }
}

function shorten(command: string): string {
  return command.length > 60 ? `${command.slice(0, 57)}…` : command;
}
