import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createTokenStore } from "../auth/tokens.ts";
import { type WrittenConfig, writeConfigFile } from "../config/write.ts";
import { CorralError } from "../errors.ts";
import { corralPaths } from "../paths.ts";
import { readModelFacts } from "../placement/facts.ts";
import { identityOf, judgeEntry } from "../process/identity.ts";
import { parseServerArgs } from "../process/orphans.ts";
import type { Registry } from "../registry/registry.ts";
import { checkHealth, probeHost, statusOfHealth } from "../server/health.ts";
import { slotKey } from "../slots.ts";
import type { ProcessEntry } from "../store/schema.ts";
import {
  type MigratedModel,
  type MigratedToken,
  type Translation,
  translateLlamacontroller,
} from "./llamacontroller.ts";
import {
  fillMetadata,
  LLAMACONTROLLER_FILES,
  readLlamacontrollerDir,
  renderMigratedConfig,
} from "./llamacontroller-config.ts";

/** What became of one entry of the original's `data/processes.json`. */
export interface ImportedServer {
  /** the original's slot key */
  readonly slot: string;
  readonly pid: number;
  readonly model_id: string;
  /** imported: now tracked by corral, same PID; the others were left alone */
  readonly outcome: "imported" | "exited" | "pid-reused" | "access-denied" | "slot-taken" | "unreadable";
  readonly reason: string;
}

/** Options of {@link importLlamacontrollerRegistry}. */
export interface ImportRegistryOptions {
  /** the original's `data/processes.json` */
  readonly file: string;
  /** corral's registry to record the live servers in */
  readonly registry: Registry;
  /** the translated models: an entry whose model path is one of them takes its id */
  readonly models?: readonly MigratedModel[];
  /** corral's configured host, for the health request @default "127.0.0.1" */
  readonly host?: string;
  /** @default 2000 */
  readonly healthTimeoutMs?: number;
  /**
   * The original's `llama_cpp.api_key`: the key its servers were started with, where their command
   * line does not show one (`--api-key`) @default none
   */
  readonly apiKey?: string;
}

/**
 * The `--api-key` a server was started with, and its command line with the key hidden (the
 * registry's command_line is shown by the API; the key is kept in `api_key` alone).
 * @example
 * apiKeyOf(["llama-server", "--api-key", "k", "-c", "4096"]) // { key: "k", cmdline: ["llama-server", "--api-key", "***", "-c", "4096"] }
 */
export function apiKeyOf(cmdline: readonly string[]): { key?: string; cmdline: string[] } {
  let key: string | undefined;
  const out = [...cmdline];
  for (let i = 1; i < out.length; i++) {
    const arg = out[i] as string;
    if (arg === "--api-key" && i + 1 < out.length) {
      key ??= out[i + 1];
      out[++i] = "***";
    } else if (arg.startsWith("--api-key=")) {
      key ??= arg.slice("--api-key=".length);
      out[i] = "--api-key=***";
    }
  }
  return key === undefined ? { cmdline: out } : { key, cmdline: out };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function samePath(a: string, b: string): boolean {
  const norm = (p: string) => p.replaceAll("\\", "/");
  return process.platform === "win32" ? norm(a).toLowerCase() === norm(b).toLowerCase() : norm(a) === norm(b);
}

/**
 * Whether the process's command line is the one the entry describes: the model path and port it
 * was started with. The original records no start time of the process, only `started_at`, so a
 * PID is taken only when the OS's start time is not after it (judgeEntry), the executable is a
 * llama-server, and the command line names the same model and port.
 */
function commandLineProblem(entry: ProcessEntry, cmdline: readonly string[]): string | undefined {
  const args = parseServerArgs(cmdline);
  if (args.model_path === undefined || !samePath(args.model_path, entry.model_path)) {
    return `its command line serves ${args.model_path ?? "no model"}, the original recorded ${entry.model_path}`;
  }
  if ((args.port ?? 8080) !== entry.port) {
    return `it listens on port ${args.port ?? 8080}, the original recorded ${entry.port}`;
  }
  return undefined;
}

function asEntry(raw: unknown): ProcessEntry | undefined {
  if (!isObject(raw)) return undefined;
  const { pid, model_path, port, started_at } = raw;
  if (typeof pid !== "number" || !Number.isInteger(pid) || pid < 1) return undefined;
  if (typeof model_path !== "string" || typeof port !== "number" || typeof started_at !== "string") return undefined;
  return {
    ...raw,
    model_id: typeof raw.model_id === "string" ? raw.model_id : "unknown",
    model_name: typeof raw.model_name === "string" ? raw.model_name : String(raw.model_id ?? "unknown"),
    command_line: Array.isArray(raw.command_line) ? raw.command_line.map(String) : [],
    status: typeof raw.status === "string" ? raw.status : "unknown",
    gpu_id: typeof raw.gpu_id === "number" || typeof raw.gpu_id === "string" ? raw.gpu_id : "0",
  } as ProcessEntry;
}

function slotOf(slot: string, entry: ProcessEntry): string {
  const gpu = String(entry.gpu_id);
  try {
    return slotKey(gpu === "both" ? "0,1" : gpu);
  } catch {
    return slotKey(slot === "both" ? "0,1" : slot);
  }
}

/**
 * Imports the original's `data/processes.json`: each entry whose process is still the one it
 * recorded is registered as corral's own, with the same PID (nothing is started or signalled);
 * every other entry is reported and left alone. The original's file is only read.
 * @example
 * const report = await importLlamacontrollerRegistry({ file: "/srv/lc/data/processes.json", registry })
 */
export async function importLlamacontrollerRegistry(options: ImportRegistryOptions): Promise<ImportedServer[]> {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(options.file, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    return [{ slot: "?", pid: 0, model_id: "?", outcome: "unreadable", reason: (error as Error).message }];
  }
  const processes = isObject(doc) && isObject(doc.processes) ? doc.processes : {};
  const out: ImportedServer[] = [];
  for (const [key, raw] of Object.entries(processes)) {
    const entry = asEntry(raw);
    if (!entry) {
      out.push({
        slot: key,
        pid: 0,
        model_id: "?",
        outcome: "unreadable",
        reason: "not an entry of the original's format",
      });
      continue;
    }
    out.push(await importOne(options, key, entry));
  }
  return out;
}

async function importOne(options: ImportRegistryOptions, key: string, original: ProcessEntry): Promise<ImportedServer> {
  const { registry } = options;
  // The original records no process start time: judged by executable name and started_at alone.
  const { proc_start_ms: _s, executable: _e, ...entry } = original;
  const base = { slot: key, pid: entry.pid, model_id: entry.model_id };
  const info = await registry.probe.get(entry.pid);
  const verdict = judgeEntry(entry, info);
  if (verdict.state !== "running") {
    return { ...base, outcome: verdict.state === "unknown" ? "access-denied" : verdict.state, reason: verdict.reason };
  }
  const problem = info ? commandLineProblem(entry, info.cmdline) : "it could not be read";
  if (problem)
    return { ...base, outcome: "pid-reused", reason: `pid ${entry.pid} is another llama-server: ${problem}` };
  const model = options.models?.find((m) => samePath(m.path, entry.model_path));
  // The original's servers answer only with its key: corral keeps it to reach them (health, props, gateway).
  const { key: cmdlineKey, cmdline } = apiKeyOf(info?.cmdline ?? entry.command_line);
  const apiKey = cmdlineKey ?? options.apiKey;
  const slot = slotOf(key, entry);
  const configHost = options.host ?? "127.0.0.1";
  const host = parseServerArgs(info?.cmdline ?? []).host ?? configHost;
  const target = probeHost(host, configHost);
  const health = target
    ? await checkHealth({ host: target, port: entry.port, timeoutMs: options.healthTimeoutMs ?? 2000 })
    : undefined;
  try {
    await registry.register(
      slot,
      {
        ...entry,
        model_id: model?.id ?? entry.model_id,
        model_name: model?.name ?? entry.model_name,
        gpu_id: slot,
        command_line: cmdline,
        ...(apiKey === undefined ? {} : { api_key: apiKey }),
        status: health ? statusOfHealth(health) : "running",
        ...(info ? identityOf(info) : {}),
        host,
        adopted: true,
        restarts: 0,
      },
      { reason: "imported from llamacontroller" },
    );
  } catch (error) {
    return { ...base, slot, outcome: "slot-taken", reason: (error as Error).message };
  }
  return {
    ...base,
    slot,
    model_id: model?.id ?? entry.model_id,
    outcome: "imported",
    reason: `still running (${verdict.reason}); now tracked by corral`,
  };
}

function originalApiKey(llamacpp: unknown): { apiKey?: string } {
  const llama = isObject(llamacpp) && isObject(llamacpp.llama_cpp) ? llamacpp.llama_cpp : {};
  return typeof llama.api_key === "string" && llama.api_key !== "" ? { apiKey: llama.api_key } : {};
}

/** Options of {@link migrateFromLlamacontroller}. */
export interface MigrateOptions {
  /** the llamacontroller folder (its config/ and data/) */
  readonly dir: string;
  /** corral's home (tokens.json, processes.json) */
  readonly home: string;
  /** @default <home>/corral.yaml */
  readonly file?: string;
  /** replace an existing corral.yaml (a copy is kept) @default false */
  readonly force?: boolean;
  /** corral's registry for the live servers; without it the registry is not imported */
  readonly registry?: Registry;
  /** write `server_api_key: auto` (corral gives each server it starts its own key) @default true */
  readonly serverApiKey?: boolean;
  /** @default new Date() */
  readonly now?: Date;
}

/** What {@link migrateFromLlamacontroller} did. */
export interface Migration extends WrittenConfig {
  readonly translation: Translation;
  /** files of the original that were not there */
  readonly missing: readonly string[];
  /** each user's token, with its secret: shown once */
  readonly tokens: readonly (MigratedToken & { readonly secret?: string; readonly error?: string })[];
  readonly servers: readonly ImportedServer[];
}

/**
 * `corral init --from-llamacontroller DIR`: translates the original's files into a commented
 * corral.yaml (metadata filled from the GGUF headers where empty), makes a named token per user,
 * and imports its live servers into the registry. Nothing in `dir` is changed.
 * @throws ConfigError when a file does not parse, or corral.yaml exists without `force`
 * @example
 * const m = await migrateFromLlamacontroller({ dir: "/srv/lc", home, registry })
 */
export async function migrateFromLlamacontroller(options: MigrateOptions): Promise<Migration> {
  const { dir, home } = options;
  const read = readLlamacontrollerDir(dir);
  const translated = translateLlamacontroller(read.files);
  const models = await Promise.all(
    translated.models.map(async (m) => {
      const facts = await readModelFacts(m.path).catch(() => undefined);
      return { ...m, metadata: fillMetadata(m.metadata, facts) };
    }),
  );
  const translation: Translation = { ...translated, models };
  const written = writeConfigFile({
    file: options.file ?? join(home, "corral.yaml"),
    text: renderMigratedConfig(translation, {
      dir,
      serverApiKey: options.serverApiKey !== false,
      ...(options.now ? { now: options.now } : {}),
    }),
    force: options.force === true,
  });
  const store = createTokenStore({ file: corralPaths(home).tokens });
  const tokens: Migration["tokens"][number][] = [];
  for (const t of translation.tokens) {
    try {
      tokens.push({ ...t, secret: (await store.create(t.name, t.scope)).secret });
    } catch (error) {
      tokens.push({ ...t, error: error instanceof CorralError ? error.message : String(error) });
    }
  }
  const servers = options.registry
    ? await importLlamacontrollerRegistry({
        file: join(dir, LLAMACONTROLLER_FILES.registry),
        registry: options.registry,
        models,
        ...(translation.host ? { host: translation.host } : {}),
        ...originalApiKey(read.files.llamacpp),
      })
    : [];
  return { ...written, translation, missing: read.missing, tokens, servers };
}
