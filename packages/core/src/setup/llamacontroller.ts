import type { TokenScope } from "../auth/scopes.ts";

/**
 * Moving over from llamacontroller: its three configuration files (`config/llamacpp-config.yaml`,
 * `config/models-config.yaml`, `config/auth-config.yaml`, already parsed) translated into what
 * corral's configuration means the same by. Pure: nothing is read or written here.
 */

/** The original's files, parsed (YAML); a missing file is undefined. */
export interface LlamacontrollerFiles {
  readonly llamacpp?: unknown;
  readonly models?: unknown;
  readonly auth?: unknown;
}

/** One model as the translation writes it. */
export interface MigratedModel {
  readonly id: string;
  readonly name: string;
  readonly path: string;
  /** slot key: "0", "1", or "0,1" for `mode: both` */
  readonly gpu: string;
  /** the flags the original put after `-m PATH --host H --port P`, in its order */
  readonly args: readonly string[];
  /** the original's `metadata` (description, parameter_count, quantization, family, capabilities) */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** A user of the original, as a named corral token to create. */
export interface MigratedToken {
  /** the token's name (the username, made safe for a token name) */
  readonly name: string;
  readonly scope: TokenScope;
  readonly username: string;
  readonly role: string;
}

/** Something the translation could not carry over, and why. */
export interface NotCarried {
  /** the original's key path, e.g. `llama_cpp.log_level` */
  readonly key: string;
  readonly why: string;
}

/** What {@link translateLlamacontroller} answers. */
export interface Translation {
  readonly llamaServer?: string;
  readonly host?: string;
  /** per-slot ports: gpu0 → "0", gpu1 → "1", both → "0,1" */
  readonly gpuPorts: Readonly<Record<string, number>>;
  /** `timeout_seconds` in ms */
  readonly loadTimeoutMs?: number;
  readonly maxRestartAttempts?: number;
  /** `restart_on_crash`: each model's `restart: on-failure` */
  readonly restartOnCrash: boolean;
  /** `gpu_detection.memory_threshold_mb`: placement's `gpu.occupied_mb` */
  readonly occupiedMb?: number;
  /** the original had an `api_key`: corral then gives each server its own key (`server_api_key: auto`) */
  readonly apiKey: boolean;
  readonly models: readonly MigratedModel[];
  readonly tokens: readonly MigratedToken[];
  readonly notCarried: readonly NotCarried[];
}

/**
 * The original's short flags: a `cli_params` key in this list becomes `-key`, any other `--key`.
 * (llama-server's own short spellings; a one-letter key is short too.)
 */
export const SHORT_FLAGS: readonly string[] = [
  "c",
  "t",
  "tb",
  "b",
  "ub",
  "n",
  "np",
  "ngl",
  "ngld",
  "fa",
  "ctk",
  "ctv",
  "ts",
  "sm",
  "mg",
  "ot",
  "cmoe",
  "ncmoe",
  "cd",
  "md",
  "dev",
  "to",
  "cb",
  "nkvo",
  "dt",
  "td",
  "tbd",
  "kvu",
  "ctxcp",
];

/** The deprecated structured parameters, each with its flag and the spellings that count as the same flag. */
const DEPRECATED: readonly { key: string; flag: string; same: readonly string[] }[] = [
  { key: "n_ctx", flag: "-c", same: ["-c", "--ctx-size"] },
  { key: "n_gpu_layers", flag: "-ngl", same: ["-ngl", "--gpu-layers", "--n-gpu-layers"] },
  { key: "n_threads", flag: "-t", same: ["-t", "--threads"] },
  { key: "temperature", flag: "--temp", same: ["--temp", "--temperature"] },
  { key: "top_p", flag: "--top-p", same: ["--top-p"] },
  { key: "top_k", flag: "--top-k", same: ["--top-k"] },
  { key: "repeat_penalty", flag: "--repeat-penalty", same: ["--repeat-penalty"] },
];

/** Flags corral passes itself (the model, host and port); the original's argv had them first too. */
const OWN_FLAGS = ["-m", "--model", "--host", "--port"];

const ROLE_SCOPES: Readonly<Record<string, TokenScope>> = {
  admin: "admin",
  administrator: "admin",
  operator: "control",
  user: "control",
  viewer: "read",
  readonly: "read",
  read: "read",
  guest: "read",
};

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isAbsent(value: unknown): boolean {
  return value === undefined || value === null;
}

/**
 * The flag a `cli_params` key names, as the original wrote it.
 * @example
 * flagOf("ngl") // "-ngl"
 * flagOf("ctx-size") // "--ctx-size"
 * flagOf("--jinja") // "--jinja"
 */
export function flagOf(key: string): string {
  if (key.startsWith("-")) return key;
  return key.length === 1 || SHORT_FLAGS.includes(key) ? `-${key}` : `--${key}`;
}

function scalar(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/**
 * The llama-server flags of one model's `parameters`, in the order the original's
 * `get_cli_arguments` builds them: `cli_params` first (its keys' order; `null`, `[]` or `true` a bare
 * flag, a list repeats the flag, `false` leaves it out), then each deprecated field (`n_ctx`,
 * `n_gpu_layers`, `n_threads`, `temperature`, `top_p`, `top_k`, `repeat_penalty`) whose flag
 * `cli_params` does not already set.
 * @example
 * parameterArgs({ cli_params: { ngl: 99, jinja: null }, n_ctx: 4096 }) // ["-ngl", "99", "--jinja", "-c", "4096"]
 */
export function parameterArgs(parameters: unknown): string[] {
  if (!isObject(parameters)) return [];
  const args: string[] = [];
  const cli = isObject(parameters.cli_params) ? parameters.cli_params : {};
  for (const [key, value] of Object.entries(cli)) {
    const flag = flagOf(key);
    if (value === false) continue;
    if (value === null || value === undefined || value === true || (Array.isArray(value) && value.length === 0)) {
      args.push(flag);
    } else if (Array.isArray(value)) {
      for (const v of value) args.push(flag, scalar(v));
    } else args.push(flag, scalar(value));
  }
  for (const d of DEPRECATED) {
    const value = parameters[d.key];
    if (isAbsent(value) || args.some((a) => d.same.includes(a))) continue;
    args.push(d.flag, scalar(value));
  }
  return args;
}

/** `args` without the flags corral passes itself, and the ones it dropped. */
function withoutOwnFlags(args: readonly string[]): { args: string[]; dropped: string[] } {
  const out: string[] = [];
  const dropped: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (OWN_FLAGS.includes(a.split("=")[0] ?? a)) {
      dropped.push(a);
      if (!a.includes("=") && i + 1 < args.length && !(args[i + 1] as string).startsWith("-")) i++;
    } else out.push(a);
  }
  return { args: out, dropped };
}

/** A Windows path (`C:\\…`, `\\\\server\\…`) on a machine that is not Windows. */
function isForeignPath(path: string, platform: string = process.platform): boolean {
  return platform !== "win32" && /^(?:[A-Za-z]:[\\/]|\\\\)/.test(path);
}

function slotOf(gpuConfig: unknown): string {
  if (!isObject(gpuConfig)) return "0";
  if (gpuConfig.mode === "both") return "0,1";
  return String(typeof gpuConfig.gpu_id === "number" ? gpuConfig.gpu_id : 0);
}

const ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;

function safeId(raw: string, taken: Set<string>): string {
  let id = raw.replace(/[^A-Za-z0-9._:-]+/g, "-").slice(0, 64) || "model";
  for (let n = 2; taken.has(id); n++) id = `${raw.slice(0, 60)}-${n}`;
  taken.add(id);
  return id;
}

function translateModels(raw: unknown, notCarried: NotCarried[]): MigratedModel[] {
  const list = isObject(raw) && Array.isArray(raw.models) ? raw.models : [];
  const taken = new Set<string>();
  const models: MigratedModel[] = [];
  list.forEach((m: unknown, i: number) => {
    const at = `models[${i}]`;
    if (!isObject(m) || typeof m.path !== "string" || m.path === "") {
      notCarried.push({ key: at, why: "has no path" });
      return;
    }
    const rawId = typeof m.id === "string" && m.id !== "" ? m.id : `model-${i}`;
    const id = safeId(rawId, taken);
    if (id !== rawId || !ID_RE.test(rawId)) {
      notCarried.push({ key: `${at}.id`, why: `"${rawId}" is not a corral model id; written as "${id}"` });
    }
    if (isForeignPath(m.path)) {
      notCarried.push({
        key: `${at}.path`,
        why: `${m.path} is a Windows path: written as is, change it on this machine`,
      });
    }
    const { args, dropped } = withoutOwnFlags(parameterArgs(m.parameters));
    if (dropped.length > 0) {
      notCarried.push({
        key: `${at}.parameters.cli_params`,
        why: `${dropped.join(", ")}: corral passes the model, host and port itself`,
      });
    }
    models.push({
      id,
      name: typeof m.name === "string" && m.name !== "" ? m.name : id,
      path: m.path,
      gpu: slotOf(m.gpu_config),
      args,
      metadata: isObject(m.metadata) ? m.metadata : {},
    });
  });
  return models;
}

const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function translateUsers(raw: unknown, notCarried: NotCarried[]): MigratedToken[] {
  const auth = isObject(raw) && isObject(raw.authentication) ? raw.authentication : undefined;
  if (!auth) return [];
  for (const key of ["session_timeout", "max_login_attempts", "lockout_duration"]) {
    if (!isAbsent(auth[key])) {
      notCarried.push({ key: `authentication.${key}`, why: "corral has no logins or sessions: tokens are revoked" });
    }
  }
  const users = Array.isArray(auth.users) ? auth.users : [];
  if (users.length > 0) {
    notCarried.push({
      key: "authentication.users[].password",
      why: "corral keeps no passwords: each user gets a named token, printed once",
    });
  }
  const taken = new Set<string>();
  const tokens: MigratedToken[] = [];
  users.forEach((u: unknown, i: number) => {
    if (!isObject(u) || typeof u.username !== "string" || u.username === "") {
      notCarried.push({ key: `authentication.users[${i}]`, why: "has no username" });
      return;
    }
    const role = typeof u.role === "string" ? u.role : "";
    const known = ROLE_SCOPES[role.toLowerCase()];
    if (!known) {
      notCarried.push({
        key: `authentication.users[${i}].role`,
        why: `"${role}" is not a role corral knows; ${u.username} gets a read token`,
      });
    }
    let name = TOKEN_NAME.test(u.username) ? u.username : u.username.replace(/[^A-Za-z0-9._-]+/g, "-").slice(0, 64);
    if (!TOKEN_NAME.test(name)) name = `user-${i}`;
    while (taken.has(name)) name = `${name}-${i}`;
    taken.add(name);
    tokens.push({ name, scope: known ?? "read", username: u.username, role });
  });
  return tokens;
}

function portsOf(llama: Record<string, unknown>, notCarried: NotCarried[]): Record<string, number> {
  const ports: Record<string, number> = {};
  const map = isObject(llama.gpu_ports) ? llama.gpu_ports : {};
  const slots: Record<string, string> = { gpu0: "0", gpu1: "1", both: "0,1" };
  for (const [key, value] of Object.entries(map)) {
    const slot = slots[key] ?? (/^gpu\d+$/.test(key) ? key.slice(3) : undefined);
    if (slot === undefined || typeof value !== "number") {
      notCarried.push({ key: `llama_cpp.gpu_ports.${key}`, why: "not a GPU port corral can place" });
    } else ports[slot] = value;
  }
  return ports;
}

function translateLlamacpp(
  raw: unknown,
  notCarried: NotCarried[],
): Omit<Translation, "models" | "tokens" | "notCarried"> {
  const llama = isObject(raw) && isObject(raw.llama_cpp) ? raw.llama_cpp : {};
  const gpuDetection = isObject(llama.gpu_detection) ? llama.gpu_detection : {};
  const number = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
  if (!isAbsent(llama.default_port)) {
    notCarried.push({ key: "llama_cpp.default_port", why: "deprecated in the original; the per-GPU ports are used" });
  }
  if (!isAbsent(llama.log_level)) {
    notCarried.push({ key: "llama_cpp.log_level", why: "corral keeps every server's whole output in its log" });
  }
  for (const key of ["enabled", "mock_mode", "mock_data_path"]) {
    if (!isAbsent(gpuDetection[key])) {
      notCarried.push({
        key: `llama_cpp.gpu_detection.${key}`,
        why: "corral always asks nvidia-smi; tests use a fake nvidia-smi on PATH",
      });
    }
  }
  const apiKey = typeof llama.api_key === "string" && llama.api_key !== "";
  if (apiKey) {
    notCarried.push({
      key: "llama_cpp.api_key",
      why: "not copied: server_api_key: auto gives every server its own key, which only corral holds",
    });
  }
  if (typeof llama.executable_path === "string" && isForeignPath(llama.executable_path)) {
    notCarried.push({
      key: "llama_cpp.executable_path",
      why: `${llama.executable_path} is a Windows path: written as is, change llama_server to this machine's llama-server`,
    });
  }
  const timeout = number(llama.timeout_seconds);
  const attempts = number(llama.max_restart_attempts);
  const threshold = number(gpuDetection.memory_threshold_mb);
  return {
    ...(typeof llama.executable_path === "string" && llama.executable_path !== ""
      ? { llamaServer: llama.executable_path }
      : {}),
    ...(typeof llama.default_host === "string" && llama.default_host !== "" ? { host: llama.default_host } : {}),
    gpuPorts: portsOf(llama, notCarried),
    ...(timeout === undefined ? {} : { loadTimeoutMs: Math.round(timeout * 1000) }),
    ...(attempts === undefined ? {} : { maxRestartAttempts: Math.max(0, Math.round(attempts)) }),
    restartOnCrash: llama.restart_on_crash === true,
    ...(threshold === undefined ? {} : { occupiedMb: Math.max(0, Math.round(threshold)) }),
    apiKey,
  };
}

/**
 * Translates the original's three files into corral's settings, models and tokens, with what
 * could not be carried over. A missing file gives nothing of its part.
 * @example
 * const t = translateLlamacontroller({ llamacpp, models, auth })
 * t.models[0] // { id: "phi-4", gpu: "0,1", args: ["-c", "8192", "--jinja"], … }
 */
export function translateLlamacontroller(files: LlamacontrollerFiles): Translation {
  const notCarried: NotCarried[] = [];
  const llama = translateLlamacpp(files.llamacpp, notCarried);
  const models = translateModels(files.models, notCarried);
  const tokens = translateUsers(files.auth, notCarried);
  return { ...llama, models, tokens, notCarried };
}

/**
 * The whole argv the original starts a model with: `executable -m PATH --host HOST --port PORT`
 * and the model's flags (the same shape corral's spawn builds).
 * @example
 * originalArgv({ executable: "llama-server", path: "/m/a.gguf", host: "127.0.0.1", port: 8081, args: ["-c", "4096"] })
 */
export function originalArgv(o: {
  readonly executable: string;
  readonly path: string;
  readonly host: string;
  readonly port: number;
  readonly args: readonly string[];
}): string[] {
  return [o.executable, "-m", o.path, "--host", o.host, "--port", String(o.port), ...o.args];
}
