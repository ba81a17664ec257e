import { entryGpus } from "@corral/core";
import { Elysia, t } from "elysia";
import type { RouteDeps } from "../deps.ts";

const GpuSchema = t.Object({
  index: t.Integer(),
  name: t.String(),
  memory_total_mib: t.Optional(t.Number()),
  memory_used_mib: t.Optional(t.Number()),
  uuid: t.Optional(t.String()),
  slots: t.Array(t.String(), { description: "tracked slots that include this GPU" }),
  processes: t.Array(
    t.Object({
      pid: t.Integer(),
      used_memory_mib: t.Number(),
      slot: t.Optional(t.String({ description: "set when corral tracks the PID" })),
    }),
  ),
});

/**
 * `GET /api/v1/gpus`: per-GPU memory from nvidia-smi, with the slots and processes on each.
 * Without nvidia-smi it answers `{ available: false, gpus: [] }`, not an error.
 * @example
 * app.use(gpuRoutes(deps))
 */
export function gpuRoutes({ controller }: Pick<RouteDeps, "controller">) {
  return new Elysia({ prefix: "/api/v1", detail: { tags: ["gpus"] } }).get(
    "/gpus",
    async () => {
      const [snapshot, entries] = await Promise.all([controller.gpuQuery(), controller.registry.list()]);
      if (!snapshot) return { available: false, gpus: [] };
      const slotOfPid = new Map(entries.map(({ slot, entry }) => [entry.pid, slot]));
      const gpus = snapshot.gpus.map((g) => ({
        index: g.index,
        name: g.name,
        ...(g.memory_total_mib !== undefined ? { memory_total_mib: g.memory_total_mib } : {}),
        ...(g.memory_used_mib !== undefined ? { memory_used_mib: g.memory_used_mib } : {}),
        ...(g.uuid !== undefined ? { uuid: g.uuid } : {}),
        slots: entries.filter(({ entry }) => entryGpus(entry).includes(g.index)).map(({ slot }) => slot),
        processes: snapshot.processes
          .filter((p) => p.gpu_index === g.index)
          .map((p) => {
            const slot = slotOfPid.get(p.pid);
            return { pid: p.pid, used_memory_mib: p.used_memory_mib, ...(slot !== undefined ? { slot } : {}) };
          }),
      }));
      return { available: true, taken_at: snapshot.taken_at, gpus };
    },
    {
      response: t.Object({
        available: t.Boolean({ description: "false where nvidia-smi is missing" }),
        taken_at: t.Optional(t.String()),
        gpus: t.Array(GpuSchema),
      }),
      detail: { summary: "GPU memory used and total per GPU, and which slot holds each" },
    },
  );
}
