import { readFile, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import {
  findLlamaServer,
  isExecutableFile,
  LLAMA_SERVER_HINT,
  llamaServerCandidates,
} from "../discovery/llama-server.ts";
import { ConfigError, UnknownModelError } from "../errors.ts";
import { defaultHome } from "../paths.ts";
import { absent, type FieldContext, fail, integer, keyPath, mapping, port, shown, strings, text } from "./fields.ts";
import { gpuKey, type ModelConfig, modelKeyPath, parseModels } from "./models.ts";
import { type ModelsDirOptions, withModelsDir } from "./models-dir.ts";

export type { ModelConfig } from "./models.ts";

/** The whole configuration, defaults filled in. Keys are snake_case as in the file. */
export interface CorralConfig {
  /** the file it was read from; undefined for the built-in defaults */
  readonly file?: string;
  /** @default "llama-server" (looked up on PATH) */
  readonly llama_server: string;
  /** address the llama-servers listen on @default "127.0.0.1" */
  readonly host: string;
  readonly ports: {
    /** where a free port is picked when neither the model nor its GPU names one @default [8081, 8099] */
    readonly range: readonly [number, number];
    /** port per slot key @default { "0": 8081, "1": 8088 } (the original controller's) */
    readonly gpu: Readonly<Record<string, number>>;
  };
  readonly timeouts: {
    /** @default 300000 */
    readonly load_ms: number;
    /** SIGTERM → SIGKILL @default 10000 */
    readonly stop_ms: number;
    /** one /health request @default 2000 */
    readonly health_ms: number;
  };
  readonly watch: { /** @default 5000 */ readonly interval_ms: number };
  readonly restart: {
    /** @default 1000 */
    readonly backoff_ms: number;
    /** @default 60000 */
    readonly backoff_max_ms: number;
    /** running this long resets the attempt count @default 300000 */
    readonly stable_ms: number;
    /** @default 5 */
    readonly max_attempts: number;
  };
  /** URLs that receive event POSTs @default [] */
  readonly webhooks: readonly string[];
  /** how long unload waits for GPU memory to be released @default 10000 */
  readonly gpu_release_wait_ms: number;
  /**
   * "auto": every llama-server corral starts gets its own API key (kept in the registry entry), so
   * only corral and its gateway reach it; "none": no key @default "none" ("auto" in a configuration
   * `corral init --from-llamacontroller` wrote)
   */
  readonly server_api_key: "auto" | "none";
  /** placement's view of the GPUs */
  readonly gpu: {
    /** MiB that processes not of this home may hold before a GPU counts as occupied by others @default 1024 */
    readonly occupied_mb: number;
  };
  readonly server: {
    /** @default "127.0.0.1" */
    readonly host: string;
    /** @default 7070 */
    readonly port: number;
    readonly token?: string;
    /** allowed origins @default [] */
    readonly cors: readonly string[];
    /** "none" turns authentication off (loopback binds only) @default "token" */
    readonly auth: "token" | "none";
    /** more names accepted in the `Host` header besides loopback, IP addresses and the bind address @default [] */
    readonly hosts: readonly string[];
    /** concurrent event and log-follow streams; more get 429 @default 64 */
    readonly max_streams: number;
  };
  /** `history.jsonl` rotation */
  readonly history: {
    /** size past which history.jsonl is rotated (3 files kept) @default 16777216 */
    readonly max_bytes: number;
  };
  /** each llama-server's log, rotated by the supervisor by copy-and-truncate */
  readonly logs: {
    /** size past which a server's log is rotated @default 67108864 (64 MiB) */
    readonly max_bytes: number;
    /** rotated copies kept (`<log>.1` newest … `<log>.<keep>`) @default 3 */
    readonly keep: number;
  };
  /** the supervisor's samples in `<home>/metrics.db` */
  readonly metrics: {
    /** days of samples kept (one per minute after the first day) @default 30 */
    readonly retention_days: number;
  };
  /** @default [] */
  readonly models: readonly ModelConfig[];
  /** folders whose GGUF files are models too (ids from their file names; a listed model wins) @default [] */
  readonly models_dir: readonly string[];
  /** the gateway's routing, queueing and idle policy (`/v1/*`, Ollama's `/api/*`) */
  readonly gateway: GatewayConfig;
}

/** The `gateway:` section. */
export interface GatewayConfig {
  /** seconds without a request before a model is unloaded; 0 = never; a model's own `ttl` wins @default 0 */
  readonly ttl: number;
  /** requests that may wait per model for a load or a busy slot; more get 503 @default 64 */
  readonly max_queue: number;
  /** how long a request waits for its model @default timeouts.load_ms */
  readonly queue_timeout_ms: number;
  /** unload an idle model holding the slot a requested model needs; false refuses instead @default true */
  readonly swap: boolean;
  /** models loaded at once; loading one more unloads the least recently used idle one; 0 = no cap @default 0 */
  readonly max_loaded: number;
  /** "none" leaves the inference routes open (loopback or not, Origin and Host checks still apply) @default "token" */
  readonly auth: "token" | "none";
}

const TOP_KEYS = [
  "llama_server",
  "host",
  "ports",
  "timeouts",
  "watch",
  "restart",
  "webhooks",
  "gpu_release_wait_ms",
  "server_api_key",
  "gpu",
  "server",
  "history",
  "logs",
  "metrics",
  "models",
  "models_dir",
  "gateway",
] as const;

/**
 * The configuration used when there is no file.
 * @example
 * defaultConfig().ports.gpu // { "0": 8081, "1": 8088 }
 */
export function defaultConfig(): CorralConfig {
  return {
    llama_server: "llama-server",
    host: "127.0.0.1",
    ports: { range: [8081, 8099], gpu: { "0": 8081, "1": 8088 } },
    timeouts: { load_ms: 300_000, stop_ms: 10_000, health_ms: 2_000 },
    watch: { interval_ms: 5_000 },
    restart: { backoff_ms: 1_000, backoff_max_ms: 60_000, stable_ms: 300_000, max_attempts: 5 },
    webhooks: [],
    gpu_release_wait_ms: 10_000,
    server_api_key: "none",
    gpu: { occupied_mb: 1024 },
    server: { host: "127.0.0.1", port: 7070, cors: [], auth: "token", hosts: [], max_streams: 64 },
    history: { max_bytes: 16 * 1024 * 1024 },
    logs: { max_bytes: 64 * 1024 * 1024, keep: 3 },
    metrics: { retention_days: 30 },
    models: [],
    models_dir: [],
    gateway: { ttl: 0, max_queue: 64, queue_timeout_ms: 300_000, swap: true, max_loaded: 0, auth: "token" },
  };
}

/** "~/x" → home folder; relative → from the config file's folder (left as written without a file). */
function pathResolver(file: string | undefined): (path: string) => string {
  return (path) => {
    if (path === "~" || path.startsWith("~/")) return join(homedir(), path.slice(1));
    if (isAbsolute(path) || file === undefined) return path;
    return resolve(dirname(file), path);
  };
}

/**
 * Validates a parsed config document and fills in defaults. Accepts the original
 * controller's spellings (`restart_on_crash`, `models` as a map, `args` as a map).
 * @throws ConfigError naming the exact key path, e.g. `models[2].port`
 * @example
 * parseConfig({ models: [{ id: "qwen", path: "/m/qwen.gguf", gpu: 0 }] }).models[0]?.gpu // "0"
 */
export function parseConfig(raw: unknown, file?: string): CorralConfig {
  const ctx: FieldContext = { file };
  const d = defaultConfig();
  const top = mapping(ctx, raw, "", TOP_KEYS) ?? {};
  const resolvePath = pathResolver(file);
  const restart = parseRestart(ctx, top.restart, d.restart);
  const server = parseServer(ctx, top.server, d.server);
  const llama = text(ctx, top.llama_server, "llama_server", d.llama_server);
  const timeouts = parseTimeouts(ctx, top.timeouts, d.timeouts);
  return {
    ...(file === undefined ? {} : { file }),
    // A bare name is looked up on PATH at start time; only something path-like is resolved here.
    llama_server: /[\\/]/.test(llama) || llama.startsWith("~") ? resolvePath(llama) : llama,
    host: text(ctx, top.host, "host", d.host),
    ports: parsePorts(ctx, top.ports, d.ports),
    timeouts,
    watch: {
      interval_ms: positive(
        ctx,
        mapping(ctx, top.watch, "watch", ["interval_ms"])?.interval_ms,
        "watch.interval_ms",
        d.watch.interval_ms,
      ),
    },
    restart,
    webhooks: parseWebhooks(ctx, top.webhooks),
    gpu_release_wait_ms: integer(ctx, top.gpu_release_wait_ms, "gpu_release_wait_ms", d.gpu_release_wait_ms),
    server_api_key: serverApiKey(ctx, top.server_api_key),
    gpu: {
      occupied_mb: integer(
        ctx,
        mapping(ctx, top.gpu, "gpu", ["occupied_mb"])?.occupied_mb,
        "gpu.occupied_mb",
        d.gpu.occupied_mb,
      ),
    },
    server,
    history: {
      max_bytes: positive(
        ctx,
        mapping(ctx, top.history, "history", ["max_bytes"])?.max_bytes,
        "history.max_bytes",
        d.history.max_bytes,
      ),
    },
    metrics: {
      retention_days: positive(
        ctx,
        mapping(ctx, top.metrics, "metrics", ["retention_days"])?.retention_days,
        "metrics.retention_days",
        d.metrics.retention_days,
      ),
    },
    logs: parseLogs(ctx, top.logs, d.logs),
    models: parseModels({ file, resolvePath, maxRestartAttempts: restart.max_attempts }, top.models),
    models_dir: strings(ctx, top.models_dir, "models_dir").map(resolvePath),
    gateway: parseGateway(ctx, top.gateway, { ...d.gateway, queue_timeout_ms: timeouts.load_ms }),
  };
}

const GATEWAY_KEYS = ["ttl", "max_queue", "queue_timeout_ms", "swap", "max_loaded", "auth"] as const;

function parseGateway(ctx: FieldContext, value: unknown, d: GatewayConfig): GatewayConfig {
  const m = mapping(ctx, value, "gateway", GATEWAY_KEYS) ?? {};
  if (m.swap !== undefined && m.swap !== null && typeof m.swap !== "boolean") {
    fail(ctx, "gateway.swap", "must be true or false");
  }
  if (m.auth !== undefined && m.auth !== null && m.auth !== "token" && m.auth !== "none") {
    fail(ctx, "gateway.auth", `must be "token" or "none", got ${JSON.stringify(m.auth)}`);
  }
  return {
    ttl: integer(ctx, m.ttl, "gateway.ttl", d.ttl),
    max_queue: integer(ctx, m.max_queue, "gateway.max_queue", d.max_queue),
    queue_timeout_ms: positive(ctx, m.queue_timeout_ms, "gateway.queue_timeout_ms", d.queue_timeout_ms),
    swap: typeof m.swap === "boolean" ? m.swap : d.swap,
    max_loaded: integer(ctx, m.max_loaded, "gateway.max_loaded", d.max_loaded),
    auth: m.auth === "none" || m.auth === "token" ? m.auth : d.auth,
  };
}

function parseLogs(ctx: FieldContext, value: unknown, d: CorralConfig["logs"]): CorralConfig["logs"] {
  const m = mapping(ctx, value, "logs", ["max_bytes", "keep"]) ?? {};
  // Below 64 KiB a rotation would run every tick and keep only a few lines.
  return {
    max_bytes: integer(ctx, m.max_bytes, "logs.max_bytes", d.max_bytes, { min: 65_536 }),
    keep: integer(ctx, m.keep, "logs.keep", d.keep, { min: 1, max: 100 }),
  };
}

function positive(ctx: FieldContext, value: unknown, key: string, fallback: number): number {
  return integer(ctx, value, key, fallback, { min: 1 });
}

function parsePorts(ctx: FieldContext, value: unknown, d: CorralConfig["ports"]): CorralConfig["ports"] {
  const m = mapping(ctx, value, "ports", ["range", "gpu"]) ?? {};
  let range = d.range;
  if (m.range !== undefined && m.range !== null) {
    if (!Array.isArray(m.range) || m.range.length !== 2)
      fail(ctx, "ports.range", "must be [low, high], e.g. [8081, 8099]");
    const low = port(ctx, m.range[0], "ports.range[0]") ?? fail(ctx, "ports.range[0]", "is required");
    const high = port(ctx, m.range[1], "ports.range[1]") ?? fail(ctx, "ports.range[1]", "is required");
    if (low > high) fail(ctx, "ports.range", `low end ${low} is above high end ${high}`);
    range = [low, high];
  }
  const gpuMap = mapping(ctx, m.gpu, "ports.gpu");
  // A gpu map in the file replaces the defaults as a whole: merging would keep ports the user removed.
  const gpu =
    gpuMap === undefined
      ? d.gpu
      : Object.fromEntries(
          Object.entries(gpuMap).map(([slot, p]) => {
            const key = keyPath("ports.gpu", slot);
            return [gpuKey(ctx, slot, key), port(ctx, p, key) ?? fail(ctx, key, "must be a port")];
          }),
        );
  return { range, gpu };
}

function serverApiKey(ctx: FieldContext, value: unknown): "auto" | "none" {
  if (absent(value) || value === "none" || value === false) return "none";
  if (value === "auto") return "auto";
  return fail(ctx, "server_api_key", `must be "auto" or "none", got ${shown(value)}`);
}

function parseTimeouts(ctx: FieldContext, value: unknown, d: CorralConfig["timeouts"]): CorralConfig["timeouts"] {
  const m = mapping(ctx, value, "timeouts", ["load_ms", "stop_ms", "health_ms"]) ?? {};
  return {
    load_ms: positive(ctx, m.load_ms, "timeouts.load_ms", d.load_ms),
    stop_ms: positive(ctx, m.stop_ms, "timeouts.stop_ms", d.stop_ms),
    health_ms: positive(ctx, m.health_ms, "timeouts.health_ms", d.health_ms),
  };
}

function parseRestart(ctx: FieldContext, value: unknown, d: CorralConfig["restart"]): CorralConfig["restart"] {
  const m = mapping(ctx, value, "restart", ["backoff_ms", "backoff_max_ms", "stable_ms", "max_attempts"]) ?? {};
  const backoff = positive(ctx, m.backoff_ms, "restart.backoff_ms", d.backoff_ms);
  const backoffMax = positive(ctx, m.backoff_max_ms, "restart.backoff_max_ms", Math.max(d.backoff_max_ms, backoff));
  if (backoffMax < backoff)
    fail(ctx, "restart.backoff_max_ms", `${backoffMax} is below restart.backoff_ms (${backoff})`);
  return {
    backoff_ms: backoff,
    backoff_max_ms: backoffMax,
    stable_ms: positive(ctx, m.stable_ms, "restart.stable_ms", d.stable_ms),
    max_attempts: integer(ctx, m.max_attempts, "restart.max_attempts", d.max_attempts),
  };
}

function parseServer(ctx: FieldContext, value: unknown, d: CorralConfig["server"]): CorralConfig["server"] {
  const m = mapping(ctx, value, "server", ["host", "port", "token", "cors", "auth", "hosts", "max_streams"]) ?? {};
  const token = text(ctx, m.token, "server.token", undefined);
  if (!absent(m.auth) && m.auth !== "token" && m.auth !== "none") {
    fail(ctx, "server.auth", `must be "token" or "none", got ${shown(m.auth)}`);
  }
  return {
    host: text(ctx, m.host, "server.host", d.host),
    port: port(ctx, m.port, "server.port") ?? d.port,
    ...(token === undefined ? {} : { token }),
    cors: strings(ctx, m.cors, "server.cors"),
    auth: m.auth === "none" ? "none" : "token",
    hosts: strings(ctx, m.hosts, "server.hosts"),
    max_streams: integer(ctx, m.max_streams, "server.max_streams", d.max_streams, { min: 1 }),
  };
}

function parseWebhooks(ctx: FieldContext, value: unknown): string[] {
  return strings(ctx, value, "webhooks").map((url, i) => {
    let protocol: string | undefined;
    try {
      protocol = new URL(url).protocol;
    } catch {
      // reported below
    }
    if (protocol !== "http:" && protocol !== "https:")
      fail(ctx, keyPath("webhooks", i), `"${url}" is not an http(s) URL`);
    return url;
  });
}

/**
 * Reads the configuration: an explicit file, else `<home>/corral.yaml`, else `<home>/corral.json`,
 * else the defaults. YAML files may also hold plain JSON.
 * @default home = defaultHome()
 * @throws ConfigError when the explicit file is missing, a file cannot be read or parsed, or a value is invalid
 * @example
 * const config = await loadConfig({ home: "/tmp/corral-home" })
 */
export async function loadConfig(
  options: {
    readonly home?: string;
    readonly file?: string;
    /** defaults of the models found in `models_dir`, from their files @default none */
    readonly modelDefaults?: ModelsDirOptions["defaultsFor"];
  } = {},
): Promise<CorralConfig> {
  const defaultsFor = options.modelDefaults === undefined ? {} : { defaultsFor: options.modelDefaults };
  if (options.file !== undefined) {
    const file = resolve(options.file);
    const source = await readConfigText(file);
    if (source === undefined) throw new ConfigError("file", "does not exist", file);
    return withModelsDir(parseConfig(parseText(source, file), file), defaultsFor);
  }
  const home = resolve(options.home ?? defaultHome());
  for (const name of ["corral.yaml", "corral.json"]) {
    const file = join(home, name);
    const source = await readConfigText(file);
    if (source !== undefined) {
      return withModelsDir(parseConfig(parseText(source, file), file), { corralHome: home, ...defaultsFor });
    }
  }
  return defaultConfig();
}

async function readConfigText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    const why = error instanceof Error ? error.message : String(error);
    throw new ConfigError("file", `cannot be read: ${why}`, file, { cause: error });
  }
}

function parseText(source: string, file: string): unknown {
  try {
    return file.endsWith(".json") ? JSON.parse(source) : Bun.YAML.parse(source);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new ConfigError("syntax", why, file, { cause: error });
  }
}

/**
 * The configured model with that id.
 * @throws UnknownModelError listing the known ids
 * @example
 * findModel(config, "qwen").path // "/models/qwen.gguf"
 */
export function findModel(config: CorralConfig, id: string): ModelConfig {
  const model = config.models.find((m) => m.id === id);
  if (!model)
    throw new UnknownModelError(
      id,
      config.models.map((m) => m.id),
    );
  return model;
}

/**
 * Where a command would run from: a path (absolute, or relative to the working folder) that
 * exists and is executable, or the first match on `env.PATH`.
 * @default env = process.env
 * @example
 * resolveExecutable("llama-server") // "/usr/local/bin/llama-server", or undefined
 */
export function resolveExecutable(
  command: string,
  env: Record<string, string | undefined> = process.env,
): string | undefined {
  if (command === "") return undefined;
  if (/[\\/]/.test(command)) {
    const path = resolve(command);
    return isExecutableFile(path) ? path : undefined;
  }
  return Bun.which(command, { PATH: env.PATH ?? "" }) ?? undefined;
}

/** The configured executable; the default bare name is also looked for where llama.cpp builds usually are. */
function findExecutable(config: CorralConfig, env: Record<string, string | undefined>): string | undefined {
  const found = resolveExecutable(config.llama_server, env);
  if (found !== undefined || config.llama_server !== defaultConfig().llama_server) return found;
  return findLlamaServer({ env }).path;
}

/**
 * Checks, before anything is spawned, that the server executable and the model file are there.
 * The model's own `env` takes part in the PATH lookup, as it will in the spawn.
 * @throws ConfigError on `llama_server` or `models[i].path`
 * @example
 * const { executable } = await checkRunnable(config, findModel(config, "qwen"))
 */
export async function checkRunnable(config: CorralConfig, model: ModelConfig): Promise<{ executable: string }> {
  const env = { ...process.env, ...model.env };
  const executable = findExecutable(config, env);
  if (executable === undefined) {
    const reason = /[\\/]/.test(config.llama_server)
      ? `"${config.llama_server}" does not exist or is not executable; ${LLAMA_SERVER_HINT}`
      : `"${config.llama_server}" not found on PATH or in the usual places: looked in ${llamaServerCandidates({ env }).join(", ")}; ${LLAMA_SERVER_HINT}`;
    throw new ConfigError("llama_server", reason, config.file);
  }
  const key = keyPath(modelKeyPath(model), "path");
  const path = resolve(model.path);
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT" || code === "ENOTDIR"
        ? `model file ${path} does not exist`
        : `model file ${path} cannot be read: ${code}`;
    throw new ConfigError(key, reason, config.file, { cause: error });
  }
  if (!info.isFile()) throw new ConfigError(key, `model file ${path} is not a file`, config.file);
  return { executable };
}
