import { join } from "node:path";
import {
  addFoundModels,
  findLlamaServer,
  reloadConfig,
  SetupAddBodySchema,
  SetupAddedSchema,
  type SetupScan,
  SetupScanSchema,
  scanForModels,
} from "@corral/core";
import { Elysia, t } from "elysia";
import { JSON_BODY } from "../body.ts";
import type { RouteDeps } from "../deps.ts";

const Folder = t.String({ minLength: 1, maxLength: 4096, error: "folder: a folder path" });

/**
 * The first run from the page: scan the disk for GGUF models (a folder given, `~/models`, the
 * Hugging Face cache, LM Studio, Ollama) with their facts, and add the chosen ones to
 * `corral.yaml`; the running controller takes the new configuration at once, so they load
 * without a restart. Only files the same scan finds can be added.
 * @example
 * app.use(setupRoutes(deps))
 */
export function setupRoutes({ controller }: Pick<RouteDeps, "controller">) {
  const home = controller.paths.home;
  const scanOptions = (folder: string | undefined) => ({ folders: folder ? [folder] : [], corralHome: home });
  return new Elysia({ prefix: "/api/v1/setup", detail: { tags: ["setup"] } })
    .get(
      "/scan",
      async ({ query }): Promise<SetupScan> => {
        const { models, searched } = await scanForModels(scanOptions(query.folder));
        const server = findLlamaServer();
        return {
          config_file: controller.config.file ?? join(home, "corral.yaml"),
          config_exists: controller.config.file !== undefined,
          init_command: "corral init",
          ...(server.path === undefined ? {} : { llama_server: server.path }),
          llama_server_looked: [...server.looked],
          searched,
          models: [...models],
          configured: controller.config.models.map((m) => m.id),
        };
      },
      {
        query: t.Object({ folder: t.Optional(Folder) }),
        response: SetupScanSchema,
        detail: { summary: "find GGUF models on this machine, with their facts" },
      },
    )
    .post(
      "/models",
      async ({ body }) => {
        const file = controller.config.file;
        const added = await addFoundModels({
          home,
          ...(file === undefined ? {} : { file }),
          paths: body.paths,
          scan: scanOptions(body.folder),
        });
        // The running controller takes the file as written: the added models load without a restart.
        await reloadConfig(controller, { reason: "models added from the page" });
        const noun = added.ids.length === 1 ? "model" : "models";
        return {
          ...added,
          ids: [...added.ids],
          message: `added ${added.ids.length} ${noun} to ${added.file}: ${added.ids.join(", ")}`,
        };
      },
      {
        ...JSON_BODY,
        body: SetupAddBodySchema,
        response: SetupAddedSchema,
        detail: { summary: "add found models to corral.yaml; they can be loaded at once" },
      },
    );
}
