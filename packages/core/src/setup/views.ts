/**
 * The first-run setup's shapes (the API's scan and add routes; the page imports the types). Only
 * TypeBox here, so `@corral/core/views` stays free of Node and Bun APIs.
 */
import { type Static, Type } from "@sinclair/typebox";

export const ModelSourceSchema = Type.Union(
  [
    Type.Literal("folder"),
    Type.Literal("models_dir"),
    Type.Literal("home"),
    Type.Literal("huggingface"),
    Type.Literal("lmstudio"),
    Type.Literal("ollama"),
  ],
  { description: "where the file was found: a given folder, ~/models, the Hugging Face cache, LM Studio, Ollama" },
);

/** One GGUF model found on disk, with its facts from the header. */
export const FoundModelSchema = Type.Object({
  id: Type.String({ description: "the id it would get: the file name's, or Ollama's <name>:<tag>" }),
  path: Type.String({ description: "the file passed as --model (a split model's first part)" }),
  source: ModelSourceSchema,
  root: Type.String({ description: "the folder that was searched" }),
  parts: Type.Integer({ minimum: 1, description: "split parts (all present)" }),
  size_bytes: Type.Integer({ minimum: 0 }),
  mmproj: Type.Optional(Type.String({ description: "the projector passed as --mmproj" })),
  architecture: Type.Optional(Type.String()),
  parameter_count: Type.Optional(Type.Integer({ minimum: 0 })),
  parameters: Type.Optional(Type.String({ description: 'the count as names say it, "7.6B"' })),
  quantization: Type.Optional(Type.String()),
  context_length: Type.Optional(Type.Integer({ minimum: 0 })),
  error: Type.Optional(Type.String({ description: "why the header could not be read" })),
});
export type FoundModel = Static<typeof FoundModelSchema>;

/** GET /api/v1/setup/scan */
export const SetupScanSchema = Type.Object({
  config_file: Type.String({ description: "the configuration file in use, or the one `corral init` would write" }),
  config_exists: Type.Boolean(),
  init_command: Type.String({ description: "the command that writes a configuration" }),
  llama_server: Type.Optional(Type.String({ description: "the llama-server found, if any" })),
  llama_server_looked: Type.Array(Type.String()),
  searched: Type.Array(Type.Object({ source: ModelSourceSchema, root: Type.String() })),
  models: Type.Array(FoundModelSchema),
  configured: Type.Array(Type.String(), { description: "ids already configured" }),
});
export type SetupScan = Static<typeof SetupScanSchema>;

/** POST /api/v1/setup/models */
export const SetupAddBodySchema = Type.Object({
  paths: Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), { minItems: 1, maxItems: 256 }),
  folder: Type.Optional(Type.String({ maxLength: 4096, description: "the folder the scan was given, if any" })),
});
export type SetupAddBody = Static<typeof SetupAddBodySchema>;

export const SetupAddedSchema = Type.Object({
  file: Type.String(),
  created: Type.Boolean(),
  ids: Type.Array(Type.String()),
  message: Type.String(),
});
export type SetupAdded = Static<typeof SetupAddedSchema>;
