/**
 * The llama-server arguments that decide how much memory a load takes, read from a model's
 * `args` the way llama-server reads them (long and short spellings, `--flag=value`).
 */

/** What the estimate needs from llama-server's arguments; undefined where the argument is absent. */
export interface MemoryArgs {
  /** `-c/--ctx-size`; 0 or absent: the trained context */
  readonly ctxSize?: number;
  /** `-ngl/--n-gpu-layers`; "auto" and "all" read as every layer */
  readonly gpuLayers?: number;
  /** `-ctk/--cache-type-k` @default "f16" */
  readonly cacheTypeK: string;
  /** `-ctv/--cache-type-v` @default "f16" */
  readonly cacheTypeV: string;
  /** `-np/--parallel`; absent means llama-server's auto (4 slots sharing one unified cache) */
  readonly parallel?: number;
  /** `-kvu/--kv-unified` or `--no-kv-unified`; absent: unified only when parallel is auto */
  readonly kvUnified?: boolean;
  /** `-fa/--flash-attn` on, off or auto (auto is on wherever the backend supports it) @default "auto" */
  readonly flashAttn: "on" | "off" | "auto";
  /** `-ts/--tensor-split` proportions, e.g. [3, 1] */
  readonly tensorSplit?: readonly number[];
  /** `-ub/--ubatch-size` @default 512 */
  readonly ubatch: number;
  /** `-b/--batch-size` @default 2048 */
  readonly batch: number;
  /** `-nkvo/--no-kv-offload`: the KV cache stays in host memory */
  readonly noKvOffload: boolean;
  /** `-sm/--split-mode none` keeps everything on the first GPU of the set */
  readonly splitNone: boolean;
}

const NAMES: Readonly<Record<string, string>> = {
  "-c": "ctx",
  "--ctx-size": "ctx",
  "-ngl": "ngl",
  "--n-gpu-layers": "ngl",
  "--gpu-layers": "ngl",
  "-ctk": "ctk",
  "--cache-type-k": "ctk",
  "-ctv": "ctv",
  "--cache-type-v": "ctv",
  "-np": "np",
  "--parallel": "np",
  "-fa": "fa",
  "--flash-attn": "fa",
  "-ts": "ts",
  "--tensor-split": "ts",
  "-ub": "ub",
  "--ubatch-size": "ub",
  "-b": "b",
  "--batch-size": "b",
  "-sm": "sm",
  "--split-mode": "sm",
};
const SWITCHES: Readonly<Record<string, [string, boolean]>> = {
  "-kvu": ["kvu", true],
  "--kv-unified": ["kvu", true],
  "--no-kv-unified": ["kvu", false],
  "-nkvo": ["nkvo", true],
  "--no-kv-offload": ["nkvo", true],
};

/**
 * Reads the memory-relevant arguments from a model's llama-server arguments (the last one wins,
 * as in llama-server). Unknown arguments are passed over.
 * @example
 * parseMemoryArgs(["--ctx-size", "8192", "-ngl", "99", "-fa", "on"]).ctxSize // 8192
 */
export function parseMemoryArgs(args: readonly string[]): MemoryArgs {
  const values = new Map<string, string>();
  const switches = new Map<string, boolean>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = flag === arg ? undefined : arg.slice(eq + 1);
    const sw = SWITCHES[flag];
    if (sw) switches.set(sw[0], sw[1]);
    const name = NAMES[flag];
    if (!name) continue;
    // An older llama-server took a bare `-fa`: a next word that is not a value means "on".
    const next = args[i + 1];
    if (name === "fa" && inline === undefined && (next === undefined || !/^(on|off|auto|true|false|1|0)$/.test(next))) {
      values.set(name, "on");
      continue;
    }
    const value = inline ?? args[++i];
    if (value !== undefined) values.set(name, value);
  }
  const int = (name: string): number | undefined => {
    const v = values.get(name);
    return v !== undefined && /^-?\d+$/.test(v) ? Number(v) : undefined;
  };
  const ngl = values.get("ngl");
  const fa = values.get("fa");
  const split = values
    .get("ts")
    ?.split(/[,/]/)
    .map(Number)
    .filter((n) => Number.isFinite(n) && n >= 0);
  return {
    ...(int("ctx") !== undefined ? { ctxSize: int("ctx") } : {}),
    ...(ngl === "auto" || ngl === "all" ? { gpuLayers: Number.POSITIVE_INFINITY } : {}),
    ...(int("ngl") !== undefined ? { gpuLayers: (int("ngl") ?? 0) < 0 ? Number.POSITIVE_INFINITY : int("ngl") } : {}),
    cacheTypeK: values.get("ctk") ?? "f16",
    cacheTypeV: values.get("ctv") ?? "f16",
    ...(int("np") !== undefined && (int("np") ?? 0) > 0 ? { parallel: int("np") } : {}),
    ...(switches.has("kvu") ? { kvUnified: switches.get("kvu") } : {}),
    flashAttn:
      fa === "on" || fa === "true" || fa === "1" ? "on" : fa === "off" || fa === "false" || fa === "0" ? "off" : "auto",
    ...(split && split.length > 0 && split.some((n) => n > 0) ? { tensorSplit: split } : {}),
    ubatch: int("ub") ?? 512,
    batch: int("b") ?? 2048,
    noKvOffload: switches.get("nkvo") ?? false,
    splitNone: values.get("sm") === "none",
  };
}
