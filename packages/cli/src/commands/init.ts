import { join } from "node:path";
import {
  createRegistry,
  defaultHome,
  type FoundModel,
  factsLine,
  findLlamaServer,
  LLAMA_SERVER_HINT,
  migrateFromLlamacontroller,
  queryGpus,
  scanForModels,
  writeFirstConfig,
} from "@corral/core";
import { booleanFlag, type ParsedInput, stringFlag, UsageError } from "../args.ts";
import type { Command, Context, Outcome } from "../context.ts";
import { answer } from "../prompts.ts";
import { style } from "../render.ts";
import { migrationOutcome } from "./init-llamacontroller.ts";

/** What `corral init` was asked for, parsed in one place (a later `--from-…` source joins here). */
export interface InitOptions {
  /** folders given with `--models`, searched before the usual places */
  readonly folders: readonly string[];
  readonly llamaServer?: string;
  /** `--gpu 0,1`; absent: every GPU nvidia-smi shows (asked in a terminal) */
  readonly gpus?: readonly number[];
  readonly force: boolean;
  /** write without asking: every model found, every GPU */
  readonly yes: boolean;
}

/**
 * Reads init's flags.
 * @throws UsageError for a `--gpu` that is not a list of indices
 * @example
 * parseInitOptions(parseCommand(command, ["--models", "/srv/m", "--yes"])).folders // ["/srv/m"]
 */
export function parseInitOptions(input: ParsedInput): InitOptions {
  const models = input.flags.models;
  const gpu = stringFlag(input, "gpu");
  if (gpu !== undefined && !/^\d+(,\d+)*$/.test(gpu))
    throw new UsageError(`--gpu "${gpu}": give GPU indices, e.g. 0,1`, "init");
  const llamaServer = stringFlag(input, "llama-server");
  return {
    folders: Array.isArray(models) ? models : typeof models === "string" ? [models] : [],
    ...(llamaServer === undefined ? {} : { llamaServer }),
    ...(gpu === undefined ? {} : { gpus: gpu.split(",").map(Number) }),
    force: booleanFlag(input, "force"),
    yes: booleanFlag(input, "yes"),
  };
}

/**
 * `corral init`: finds llama-server and the GGUF models already on disk (the folders given,
 * `~/models`, the Hugging Face cache, LM Studio, Ollama), lets the user pick models and GPUs in a
 * terminal, and writes a commented `corral.yaml` into the home. Outside a terminal it takes
 * everything found with `--yes`. An existing file is kept unless `--force` (then a copy is kept).
 * @example
 * corral init --models ~/gguf --yes
 */
export const command: Command = {
  name: "init",
  args: [],
  options: {
    models: {
      type: "string",
      multiple: true,
      value: "DIR",
      description: "a folder of GGUF files to search too (repeatable)",
    },
    "llama-server": { type: "string", value: "PATH", description: "the llama-server to use [default: the one found]" },
    gpu: {
      type: "string",
      value: "LIST",
      description: "GPUs the models may use, e.g. 0 or 0,1 [default: every GPU found]",
    },
    force: { type: "boolean", description: "replace an existing corral.yaml (a copy of it is kept)" },
    yes: { type: "boolean", short: "y", description: "write without asking (required when not in a terminal)" },
    "from-llamacontroller": {
      type: "string",
      value: "DIR",
      description: "translate a llamacontroller folder (config/, data/) and take over its running servers",
    },
  },
  json: true,
  examples: [
    "corral init",
    "corral init --models ~/gguf --yes",
    "corral init --yes --force --gpu 0",
    "corral init --from-llamacontroller ~/llamacontroller",
  ],
  async run(ctx, input) {
    const from = stringFlag(input, "from-llamacontroller");
    if (from !== undefined) {
      const home = ctx.home ?? defaultHome();
      const migration = await migrateFromLlamacontroller({
        dir: from,
        home,
        ...(ctx.configFile ? { file: ctx.configFile } : {}),
        force: booleanFlag(input, "force"),
        registry: createRegistry({ home }),
      });
      return migrationOutcome(migration);
    }
    const options = parseInitOptions(input);
    if (!ctx.interactive && !options.yes) {
      throw new UsageError("not in a terminal: pass --yes to write the configuration without asking", "init");
    }
    const home = ctx.home ?? defaultHome();
    const file = ctx.configFile ?? join(home, "corral.yaml");
    const spin = ctx.interactive ? (await ctx.ui()).spinner() : undefined;
    spin?.start("looking for llama-server and GGUF models");
    const [{ models, searched }, snapshot] = await Promise.all([
      scanForModels({ folders: options.folders, corralHome: home }),
      queryGpus(),
    ]);
    const search = findLlamaServer();
    spin?.stop(`found ${models.length} model${models.length === 1 ? "" : "s"} in ${searched.length} places`);
    const llamaServer = options.llamaServer ?? search.path;
    const usable = models.filter((m) => m.error === undefined);
    const allGpus = snapshot?.gpus.map((g) => g.index) ?? [];
    const chosen = options.yes ? usable : await pickModels(ctx, usable);
    const gpus = options.gpus ?? (options.yes ? allGpus : await pickGpus(ctx, allGpus));
    const written = writeFirstConfig({
      file,
      found: chosen,
      gpus,
      force: options.force,
      ...(llamaServer === undefined ? {} : { llamaServer }),
      ...(options.llamaServer === undefined && search.path ? { llamaServerNote: "found by corral init" } : {}),
    });
    return outcome({
      ...written,
      chosen,
      gpus,
      llamaServer,
      looked: search.looked,
      skipped: models.length - usable.length,
    });
  },
};

async function pickModels(ctx: Context, models: readonly FoundModel[]): Promise<FoundModel[]> {
  if (models.length === 0) return [];
  const ui = await ctx.ui();
  const picked = answer(
    ui,
    await ui.multiselect({
      message: "Which models should corral know? (space toggles, enter accepts)",
      options: models.map((m) => ({ value: m.path, label: m.id, hint: factsLine(m) })),
      initialValues: models.map((m) => m.path),
      required: false,
    }),
  );
  return models.filter((m) => picked.includes(m.path));
}

async function pickGpus(ctx: Context, gpus: readonly number[]): Promise<number[]> {
  if (gpus.length <= 1) return [...gpus];
  const ui = await ctx.ui();
  const picked = answer(
    ui,
    await ui.multiselect({
      message: "Which GPUs may the models use?",
      options: gpus.map((g) => ({ value: g, label: `GPU ${g}` })),
      initialValues: [...gpus],
      required: false,
    }),
  );
  return gpus.filter((g) => picked.includes(g));
}

function outcome(done: {
  file: string;
  backup?: string;
  chosen: readonly FoundModel[];
  gpus: readonly number[];
  llamaServer: string | undefined;
  looked: readonly string[];
  skipped: number;
}): Outcome {
  const lines = [
    `wrote ${done.file}${done.backup ? ` (the old one is kept as ${done.backup})` : ""}`,
    done.llamaServer
      ? `llama-server: ${done.llamaServer}`
      : style.yellow(`no llama-server found (looked in ${done.looked.join(", ")}): ${LLAMA_SERVER_HINT}`),
    `GPUs: ${done.gpus.length ? done.gpus.join(", ") : "none (models run where llama-server puts them)"}`,
    ...(done.chosen.length === 0
      ? ["no models: add GGUF folders with --models DIR, or list models under `models:` by hand"]
      : done.chosen.map((m) => `  ${style.bold(m.id)}  ${factsLine(m)}`)),
    ...(done.skipped > 0 ? [style.dim(`${done.skipped} file(s) left out: not readable as GGUF`)] : []),
    ...(done.chosen[0] ? ["", `next: corral load ${done.chosen[0].id}, or corral serve for the page`] : []),
  ];
  return {
    data: {
      file: done.file,
      ...(done.backup ? { backup: done.backup } : {}),
      llama_server: done.llamaServer ?? null,
      gpus: done.gpus,
      models: done.chosen,
    },
    lines,
    summary: `${done.chosen.length} model${done.chosen.length === 1 ? "" : "s"} in corral.yaml`,
  };
}
