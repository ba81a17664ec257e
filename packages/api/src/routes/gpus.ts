import { GpusViewSchema } from "@corral/core";
import { Elysia } from "elysia";
import type { RouteDeps } from "../deps.ts";

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
      return controller.gpus();
    },
    {
      response: GpusViewSchema,
      detail: { summary: "GPU memory used and total per GPU, and which slot holds each" },
    },
  );
}
