import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../errors.ts";
import { formatParameterCount, type ModelFacts } from "../placement/facts.ts";
import type { LlamacontrollerFiles, MigratedModel, Translation } from "./llamacontroller.ts";

/**
 * Reading a llamacontroller folder and writing the `corral.yaml` its translation means. The folder
 * is only read.
 */

/** The original's files inside its folder. */
export const LLAMACONTROLLER_FILES = {
  llamacpp: join("config", "llamacpp-config.yaml"),
  models: join("config", "models-config.yaml"),
  auth: join("config", "auth-config.yaml"),
  registry: join("data", "processes.json"),
} as const;

/** What {@link readLlamacontrollerDir} found. */
export interface LlamacontrollerDir {
  readonly dir: string;
  readonly files: LlamacontrollerFiles;
  /** the files that were not there (relative to the folder) */
  readonly missing: readonly string[];
}

/**
 * Reads and parses the original's three configuration files. A missing file is listed, not an
 * error (auth-config.yaml is optional), unless none is there at all.
 * @throws ConfigError when a file does not parse, or when neither llamacpp-config.yaml nor models-config.yaml exists
 * @example
 * const { files, missing } = readLlamacontrollerDir("/srv/llamacontroller")
 */
export function readLlamacontrollerDir(dir: string): LlamacontrollerDir {
  const files: Record<string, unknown> = {};
  const missing: string[] = [];
  for (const part of ["llamacpp", "models", "auth"] as const) {
    const file = join(dir, LLAMACONTROLLER_FILES[part]);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        throw new ConfigError("file", `cannot be read: ${(error as Error).message}`, file, { cause: error });
      }
      missing.push(LLAMACONTROLLER_FILES[part]);
      continue;
    }
    try {
      files[part] = Bun.YAML.parse(text);
    } catch (error) {
      throw new ConfigError("syntax", (error as Error).message, file, { cause: error });
    }
  }
  if (files.llamacpp === undefined && files.models === undefined) {
    throw new ConfigError(
      "file",
      `not a llamacontroller folder: neither ${LLAMACONTROLLER_FILES.llamacpp} nor ${LLAMACONTROLLER_FILES.models} is there`,
      dir,
    );
  }
  return { dir, files, missing };
}

/**
 * The original's metadata with what it left empty filled from the GGUF header (parameter count,
 * quantization, family = architecture). What the original says wins.
 * @example
 * fillMetadata({ family: "" }, facts) // { family: "llama", parameter_count: "1.2B", quantization: "Q8_0" }
 */
export function fillMetadata(
  metadata: Readonly<Record<string, unknown>>,
  facts: ModelFacts | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...metadata };
  if (!facts) return out;
  const empty = (v: unknown) => v === undefined || v === null || v === "";
  if (empty(out.parameter_count)) out.parameter_count = formatParameterCount(facts.parameter_count);
  if (empty(out.quantization)) out.quantization = facts.quantization;
  if (empty(out.family)) out.family = facts.architecture;
  return out;
}

const q = (s: string) => JSON.stringify(s);

function metadataLines(metadata: Readonly<Record<string, unknown>>, indent: string): string[] {
  const entries = Object.entries(metadata).filter(([, v]) => v !== undefined && v !== null && v !== "");
  if (entries.length === 0) return [];
  return [
    `${indent}# metadata from llamacontroller:`,
    ...entries.map(
      ([k, v]) =>
        `${indent}#   ${k}: ${(Array.isArray(v) ? v.join(", ") : typeof v === "string" ? v : JSON.stringify(v)).replace(/\s*\n\s*/g, " ")}`,
    ),
  ];
}

function modelLines(model: MigratedModel, restart: boolean): string[] {
  return [
    ...metadataLines(model.metadata, "  "),
    `  - id: ${q(model.id)}`,
    `    name: ${q(model.name)}`,
    `    path: ${q(model.path)}`,
    `    gpu: ${q(model.gpu)}`,
    ...(model.args.length === 0 ? [] : [`    args: [${model.args.map(q).join(", ")}]`]),
    ...(restart ? ["    restart: on-failure"] : []),
  ];
}

/** Options of {@link renderMigratedConfig}. */
export interface RenderMigratedOptions {
  /** the llamacontroller folder, for the header */
  readonly dir: string;
  /** write `server_api_key: auto` @default false */
  readonly serverApiKey?: boolean;
  /** @default new Date() */
  readonly now?: Date;
}

/**
 * The text of a commented `corral.yaml` that means what the original's files meant.
 * @example
 * renderMigratedConfig(translateLlamacontroller(files), { dir: "/srv/llamacontroller" })
 */
export function renderMigratedConfig(t: Translation, options: RenderMigratedOptions): string {
  const ports = Object.entries(t.gpuPorts);
  const lines = [
    `# corral.yaml, written by \`corral init --from-llamacontroller\` on ${(options.now ?? new Date()).toISOString()}`,
    `# from ${options.dir} (config/llamacpp-config.yaml, models-config.yaml, auth-config.yaml).`,
    "# Every key is optional (the README's Configuration section lists them).",
    "",
    "# llama_cpp.executable_path",
    t.llamaServer === undefined ? "# llama_server: /path/to/llama-server" : `llama_server: ${q(t.llamaServer)}`,
    "# llama_cpp.default_host: where the llama-servers listen",
    t.host === undefined ? "# host: 127.0.0.1" : `host: ${q(t.host)}`,
    "",
    '# llama_cpp.gpu_ports: the port of each GPU slot ("0,1" is the original\'s `both`)',
    ...(ports.length === 0
      ? ["# ports:", '#   gpu: { "0": 8081 }']
      : ["ports:", "  gpu:", ...ports.map(([s, p]) => `    ${q(s)}: ${p}`)]),
    "",
    ...(t.loadTimeoutMs === undefined
      ? []
      : ["# llama_cpp.timeout_seconds: how long a load may take", "timeouts:", `  load_ms: ${t.loadTimeoutMs}`, ""]),
    ...(t.maxRestartAttempts === undefined
      ? []
      : [
          "# llama_cpp.max_restart_attempts (restart_on_crash is each model's restart: on-failure)",
          "restart:",
          `  max_attempts: ${t.maxRestartAttempts}`,
          "",
        ]),
    ...(t.occupiedMb === undefined
      ? []
      : [
          "# llama_cpp.gpu_detection.memory_threshold_mb: memory other programs may hold before a GPU counts as taken",
          "gpu:",
          `  occupied_mb: ${t.occupiedMb}`,
          "",
        ]),
    ...(options.serverApiKey !== true
      ? []
      : [
          "# Each llama-server gets its own --api-key, kept in the registry: only corral (and its gateway) reach it.",
          "server_api_key: auto",
          "",
        ]),
    "# models-config.yaml: each model with the flags the original passed after -m, --host and --port.",
  ];
  if (t.models.length === 0) lines.push("models: []");
  else {
    lines.push("models:");
    for (const model of t.models) lines.push(...modelLines(model, t.restartOnCrash));
  }
  return `${lines.join("\n")}\n`;
}
