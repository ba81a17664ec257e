import { InvalidInputError } from "../errors.ts";
import { MARKER_ENV } from "../process/types.ts";
import { slotKey } from "../slots.ts";
import { absent, type FieldContext, fail, integer, keyPath, mapping, port, shown, strings, text } from "./fields.ts";

/**
 * How one model entry of the configuration file becomes a {@link ModelConfig}, accepting
 * the original controller's spellings (`restart_on_crash`, `args` as a map, `models` as a map).
 */

/** One model the configuration knows how to start. */
export interface ModelConfig {
  /** letters, digits, ".", "_", ":" and "-", at most 64: it ends up in log file names and URLs */
  readonly id: string;
  /** @default the id */
  readonly name: string;
  /** the GGUF file; relative paths are taken from the config file's folder, "~/" from the home folder */
  readonly path: string;
  /** extra llama-server arguments; corral itself passes --model, --host and --port @default [] */
  readonly args: readonly string[];
  /** slot key, e.g. "0" or "0,1" (numbers and lists in the file are normalised), or "auto" (placement picks) */
  readonly gpu?: string;
  readonly port?: number;
  /** @default "never" ("on-failure" where the file says `restart_on_crash: true`) */
  readonly restart: "never" | "on-failure";
  /** @default the top-level `restart.max_attempts` */
  readonly max_restart_attempts: number;
  /** CPU list for taskset, "0-7" or "0,2,4" */
  readonly cpu_affinity?: string;
  /** extra environment for the server @default {} */
  readonly env: Readonly<Record<string, string>>;
  /** other names the gateway routes to this model (`model` in an OpenAI or Ollama request) @default [] */
  readonly aliases?: readonly string[];
  /** seconds without a gateway request before the gateway unloads it; 0 = never @default gateway.ttl */
  readonly ttl?: number;
  /** the gateway never unloads it to make room (swap, max_loaded) @default false */
  readonly pinned?: boolean;
  /** `corral serve` loads it at start (after recovery) when it is not running @default false */
  readonly autostart?: boolean;
}

/** What model parsing needs from the rest of the configuration. */
export interface ModelContext extends FieldContext {
  readonly maxRestartAttempts: number;
  /** turns "~/x" and relative paths into the path to use */
  readonly resolvePath: (path: string) => string;
}

/** Where each parsed model sat in the file ("models[2]" or "models.qwen"), for later error messages. */
const modelKeys = new WeakMap<ModelConfig, string>();

/**
 * The key path a model had in its file, for errors found after parsing.
 * @default "models.<id>" for a model that was not parsed from a file
 * @example
 * modelKeyPath(config.models[2]) // "models[2]"
 */
export function modelKeyPath(model: ModelConfig): string {
  return modelKeys.get(model) ?? keyPath("models", model.id);
}

const MODEL_KEYS = [
  "id",
  "name",
  "path",
  "args",
  "gpu",
  "port",
  "restart",
  "restart_on_crash",
  "max_restart_attempts",
  "cpu_affinity",
  "env",
  "aliases",
  "ttl",
  "pinned",
  "autostart",
] as const;
/** ":" for Ollama's `<name>:<tag>` (log file names replace it) */
const ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CPU_LIST_RE = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;
/** corral passes these itself; a second --port in `args` would make the registry lie about the port */
const RESERVED_FLAGS = ["-m", "--model", "--port", "--host"];
const RESERVED_ENV: readonly string[] = Object.values(MARKER_ENV);

/**
 * Reads the `models` setting, given as a list or as a map keyed by id.
 * @default absent → []
 * @example
 * parseModels(ctx, { qwen: { path: "/m/qwen.gguf" } }) // [{ id: "qwen", name: "qwen", … }]
 */
export function parseModels(ctx: ModelContext, value: unknown): ModelConfig[] {
  if (absent(value)) return [];
  const entries: [key: string, raw: unknown, id: unknown][] = Array.isArray(value)
    ? value.map((raw, i) => [keyPath("models", i), raw, isObject(raw) ? raw.id : undefined])
    : Object.entries(mapping(ctx, value, "models") ?? {}).map(([id, raw]) => [keyPath("models", id), raw, id]);
  const seen = new Map<string, string>();
  const models = entries.map(([key, raw, id]) => {
    const model = parseModel(ctx, raw, key, id);
    const earlier = seen.get(model.id);
    if (earlier) fail(ctx, keyPath(key, "id"), `duplicate model id "${model.id}" (also ${earlier})`);
    seen.set(model.id, key);
    modelKeys.set(model, key);
    return model;
  });
  checkAliases(ctx, models, seen);
  return models;
}

/** An alias that is also another model's id or alias would make the gateway's routing ambiguous. */
function checkAliases(ctx: ModelContext, models: readonly ModelConfig[], ids: ReadonlyMap<string, string>): void {
  const owner = new Map<string, string>();
  for (const model of models) {
    for (const [i, alias] of (model.aliases ?? []).entries()) {
      const at = keyPath(keyPath(modelKeyPath(model), "aliases"), i);
      const id = ids.get(alias);
      if (id && alias !== model.id) fail(ctx, at, `"${alias}" is the id of another model (${id})`);
      const other = owner.get(alias);
      if (other && other !== model.id) fail(ctx, at, `"${alias}" is already an alias of model "${other}"`);
      owner.set(alias, model.id);
    }
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseModel(ctx: ModelContext, raw: unknown, key: string, mapKey: unknown): ModelConfig {
  const m = mapping(ctx, raw, key, MODEL_KEYS) ?? fail(ctx, key, "must be a mapping with at least `path`");
  if (!absent(m.id) && !absent(mapKey) && m.id !== mapKey) {
    fail(ctx, keyPath(key, "id"), `is "${String(m.id)}" but the entry is listed under "${String(mapKey)}"`);
  }
  const id = text(ctx, mapKey ?? m.id, keyPath(key, "id"), undefined) ?? fail(ctx, keyPath(key, "id"), "is required");
  if (!ID_RE.test(id)) {
    fail(
      ctx,
      keyPath(key, "id"),
      `"${id.slice(0, 70)}" may only hold letters, digits, ".", "_", ":" and "-" (at most 64)`,
    );
  }
  const path = text(ctx, m.path, keyPath(key, "path"), undefined) ?? fail(ctx, keyPath(key, "path"), "is required");
  // "auto": placement picks the GPU (or smallest set) where the model fits with the most room, at load time.
  const gpu = absent(m.gpu) ? undefined : m.gpu === "auto" ? "auto" : gpuKey(ctx, m.gpu, keyPath(key, "gpu"));
  const portNumber = port(ctx, m.port, keyPath(key, "port"));
  const cpu = absent(m.cpu_affinity) ? undefined : cpuList(ctx, m.cpu_affinity, keyPath(key, "cpu_affinity"));
  return {
    id,
    name: text(ctx, m.name, keyPath(key, "name"), id),
    path: ctx.resolvePath(path),
    args: parseArgs(ctx, m.args, keyPath(key, "args")),
    ...(gpu === undefined ? {} : { gpu }),
    ...(portNumber === undefined ? {} : { port: portNumber }),
    restart: restartPolicy(ctx, m, key),
    max_restart_attempts: integer(
      ctx,
      m.max_restart_attempts,
      keyPath(key, "max_restart_attempts"),
      ctx.maxRestartAttempts,
    ),
    ...(cpu === undefined ? {} : { cpu_affinity: cpu }),
    env: parseEnv(ctx, m.env, keyPath(key, "env")),
    // Gateway settings appear only where the file sets them, so plain models read as before.
    ...(absent(m.aliases) ? {} : { aliases: strings(ctx, m.aliases, keyPath(key, "aliases")) }),
    ...(absent(m.ttl) ? {} : { ttl: integer(ctx, m.ttl, keyPath(key, "ttl"), 0) }),
    ...(flag(ctx, m.pinned, keyPath(key, "pinned"), false) ? { pinned: true } : {}),
    ...(flag(ctx, m.autostart, keyPath(key, "autostart"), false) ? { autostart: true } : {}),
  };
}

function flag(ctx: FieldContext, value: unknown, key: string, fallback: boolean): boolean {
  if (absent(value)) return fallback;
  if (typeof value !== "boolean") fail(ctx, key, `must be true or false, got ${shown(value)}`);
  return value;
}

/**
 * Normalises a GPU selection from the file (1, "0,1", [1, 0]) to a slot key.
 * @example
 * gpuKey(ctx, [1, 0], "models[0].gpu") // "0,1"
 */
export function gpuKey(ctx: FieldContext, value: unknown, key: string): string {
  const ok =
    typeof value === "number" ||
    typeof value === "string" ||
    (Array.isArray(value) && value.every((g) => typeof g === "number"));
  if (!ok) fail(ctx, key, `must be a GPU index or a list of them, got ${shown(value)}`);
  try {
    return slotKey(value as number | string | number[]);
  } catch (error) {
    if (error instanceof InvalidInputError) fail(ctx, key, error.reason, error);
    throw error;
  }
}

function restartPolicy(ctx: ModelContext, m: Record<string, unknown>, key: string): "never" | "on-failure" {
  let fromLegacy: "never" | "on-failure" | undefined;
  if (!absent(m.restart_on_crash)) {
    if (typeof m.restart_on_crash !== "boolean") {
      fail(ctx, keyPath(key, "restart_on_crash"), `must be true or false, got ${shown(m.restart_on_crash)}`);
    }
    fromLegacy = m.restart_on_crash ? "on-failure" : "never";
  }
  if (absent(m.restart)) return fromLegacy ?? "never";
  if (m.restart !== "never" && m.restart !== "on-failure") {
    fail(ctx, keyPath(key, "restart"), `must be "never" or "on-failure", got ${shown(m.restart)}`);
  }
  if (fromLegacy && fromLegacy !== m.restart) {
    fail(ctx, keyPath(key, "restart_on_crash"), `contradicts restart: "${m.restart}"; keep one of them`);
  }
  return m.restart;
}

function parseArgs(ctx: FieldContext, value: unknown, key: string): string[] {
  if (absent(value)) return [];
  const args = Array.isArray(value) ? argsFromList(ctx, value, key) : argsFromMap(ctx, value, key);
  const reserved = args.find((a) => RESERVED_FLAGS.includes(a.split("=")[0] ?? a));
  if (reserved) {
    fail(
      ctx,
      key,
      `must not pass ${reserved.split("=")[0]}: corral sets --model, --host and --port itself (use path, host and port)`,
    );
  }
  return args;
}

function scalarArg(ctx: FieldContext, value: unknown, key: string): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return fail(ctx, key, `must be a string or a number, got ${shown(value)}`);
}

function argsFromList(ctx: FieldContext, list: unknown[], key: string): string[] {
  return list.map((item, i) => scalarArg(ctx, item, keyPath(key, i)));
}

/** `{ "ctx-size": 4096, "flash-attn": true, lora: [a, b] }` → `--ctx-size 4096 --flash-attn --lora a --lora b` */
function argsFromMap(ctx: FieldContext, value: unknown, key: string): string[] {
  const map = mapping(ctx, value, key) ?? {};
  return Object.entries(map).flatMap(([name, v]) => {
    const flag = name.startsWith("-") ? name : `--${name}`;
    const at = keyPath(key, name);
    if (v === true) return [flag];
    if (v === false || v === null) return [];
    if (Array.isArray(v)) return v.flatMap((item, i) => [flag, scalarArg(ctx, item, keyPath(at, i))]);
    return [flag, scalarArg(ctx, v, at)];
  });
}

function parseEnv(ctx: FieldContext, value: unknown, key: string): Record<string, string> {
  const map = mapping(ctx, value, key) ?? {};
  const env: Record<string, string> = {};
  for (const [name, v] of Object.entries(map)) {
    const at = keyPath(key, name);
    if (!ENV_NAME_RE.test(name)) fail(ctx, at, "is not a valid environment variable name");
    // These mark the processes corral started; overriding them would break recognising them later.
    if (RESERVED_ENV.includes(name)) fail(ctx, at, "is set by corral itself to recognise its processes");
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") {
      fail(ctx, at, `must be a string, a number or true/false, got ${shown(v)}`);
    }
    env[name] = String(v);
  }
  return env;
}

function cpuList(ctx: FieldContext, value: unknown, key: string): string {
  const list =
    typeof value === "number" ? String(value) : typeof value === "string" ? value.replace(/\s+/g, "") : undefined;
  if (list === undefined || !CPU_LIST_RE.test(list)) {
    fail(ctx, key, `must be a CPU list such as "0-7" or "0,2,4", got ${shown(value)}`);
  }
  for (const part of list.split(",")) {
    const [low, high] = part.split("-").map(Number);
    if (high !== undefined && low !== undefined && low > high) fail(ctx, key, `range "${part}" runs backwards`);
  }
  return list;
}
