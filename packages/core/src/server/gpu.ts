import type { GpuInfo, GpuProcess, GpuSnapshot } from "./views.ts";

export type { GpuInfo, GpuProcess, GpuSnapshot };

/** Options of {@link queryGpus}. */
export interface GpuQueryOptions {
  /**
   * The nvidia-smi executable, looked up on the PATH of `env`.
   * @default "nvidia-smi"
   */
  readonly command?: string;
  /**
   * Each nvidia-smi run is killed (SIGKILL) after this long; a driver in trouble can hang it.
   * @default 3000
   */
  readonly timeoutMs?: number;
  /**
   * Environment of the nvidia-smi child (and its PATH for the lookup); tests put a fake first on PATH.
   * @default process.env
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Clock for `taken_at`.
   * @default Date.now
   */
  readonly now?: () => number;
}

/** Options of {@link createGpuQuery}. */
export interface CachedGpuQueryOptions extends GpuQueryOptions {
  /**
   * A snapshot is reused for this long after its query ended, and callers arriving while a
   * query runs share it, so many callers in one tick cost one nvidia-smi run.
   * @default 1000
   */
  readonly cacheMs?: number;
}

/** Options of {@link waitGpuReleased}. */
export interface WaitGpuReleasedOptions {
  /** @default 10000 */
  readonly timeoutMs?: number;
  /** @default 250 */
  readonly intervalMs?: number;
  /**
   * Where snapshots come from.
   * @default () => queryGpus()
   */
  readonly query?: () => Promise<GpuSnapshot | undefined>;
}

/** The arguments of the per-GPU query; the 5th column (uuid) maps processes to GPU indexes. */
export const GPU_QUERY_ARGS: readonly string[] = [
  "--query-gpu=index,name,memory.total,memory.used,uuid",
  "--format=csv,noheader,nounits",
];
/** The arguments of the per-process query. */
export const COMPUTE_APPS_QUERY_ARGS: readonly string[] = [
  "--query-compute-apps=pid,used_memory,gpu_uuid",
  "--format=csv,noheader,nounits",
];

const DEFAULT_TIMEOUT_MS = 3000;
const DEFAULT_CACHE_MS = 1000;
const UUID = /^(GPU|MIG)-/;

/** nvidia-smi writes "[N/A]", "[Not Supported]", "[Insufficient Permissions]" … for figures it lacks. */
const isPlaceholder = (field: string): boolean => /^\[.*\]$/.test(field) || field === "N/A";
const isFigure = (field: string): boolean => isPlaceholder(field) || (field !== "" && Number.isFinite(Number(field)));
const toNumber = (field: string | undefined): number | undefined =>
  field === undefined || isPlaceholder(field) || field === "" || !Number.isFinite(Number(field))
    ? undefined
    : Number(field);

function csvRows(text: string): string[][] {
  return text
    .split(/\r?\n/)
    .filter((line) => line.trim() !== "")
    .map((line) => line.split(",").map((field) => field.trim()));
}

/** True when the last field is the uuid column (or its placeholder) rather than memory.used. */
function hasUuidColumn(fields: readonly string[]): boolean {
  const last = fields.at(-1) ?? "";
  if (UUID.test(last)) return true;
  // A name holding a comma also makes 5 fields; then the field before last is not a figure.
  return fields.length >= 5 && isPlaceholder(last) && isFigure(fields.at(-2) ?? "") && isFigure(fields.at(-3) ?? "");
}

/**
 * Parses `nvidia-smi --query-gpu=index,name,memory.total,memory.used[,uuid] --format=csv,noheader,nounits`.
 * Lines that are not a GPU row (a driver message, say) are skipped.
 * @example
 * parseGpuCsv("0, NVIDIA GeForce RTX 4090, 24564, 18000\n")
 * // [{ index: 0, name: "NVIDIA GeForce RTX 4090", memory_total_mib: 24564, memory_used_mib: 18000 }]
 */
export function parseGpuCsv(text: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const fields of csvRows(text)) {
    const index = Number(fields[0]);
    if (fields.length < 4 || fields[0] === "" || !Number.isInteger(index) || index < 0) continue;
    const rest = fields.slice(1);
    const uuidField = hasUuidColumn(fields) ? rest.pop() : undefined;
    const used = rest.pop();
    const total = rest.pop();
    gpus.push({
      index,
      name: rest.join(", "),
      memory_total_mib: toNumber(total),
      memory_used_mib: toNumber(used),
      ...(uuidField !== undefined && UUID.test(uuidField) ? { uuid: uuidField } : {}),
    });
  }
  return gpus;
}

/**
 * Parses `nvidia-smi --query-compute-apps=pid,used_memory[,gpu_uuid] --format=csv,noheader,nounits`.
 * With `gpus` (from {@link parseGpuCsv} with uuids) each process gets its GPU's index.
 * @example
 * parseComputeAppsCsv("4242, 18000, GPU-a1\n", [{ index: 1, name: "x", memory_total_mib: 1, memory_used_mib: 1, uuid: "GPU-a1" }])
 * // [{ pid: 4242, used_memory_mib: 18000, gpu_uuid: "GPU-a1", gpu_index: 1 }]
 */
export function parseComputeAppsCsv(text: string, gpus: readonly GpuInfo[] = []): GpuProcess[] {
  const processes: GpuProcess[] = [];
  for (const [pidField = "", memory, uuid] of csvRows(text)) {
    const pid = Number(pidField);
    if (pidField === "" || !Number.isInteger(pid) || pid <= 0) continue;
    const gpuIndex = uuid === undefined ? undefined : gpus.find((gpu) => gpu.uuid === uuid)?.index;
    processes.push({
      pid,
      used_memory_mib: toNumber(memory) ?? 0,
      ...(uuid !== undefined && UUID.test(uuid) ? { gpu_uuid: uuid } : {}),
      ...(gpuIndex !== undefined ? { gpu_index: gpuIndex } : {}),
    });
  }
  return processes;
}

/** Runs nvidia-smi once; its stdout, or undefined when it is missing, fails or hangs. */
async function runNvidiaSmi(args: readonly string[], options: GpuQueryOptions): Promise<string | undefined> {
  let child: Bun.Subprocess<"ignore", "pipe", "ignore">;
  try {
    child = Bun.spawn([options.command ?? "nvidia-smi", ...args], {
      env: { ...(options.env ?? process.env) },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "ignore",
      timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      killSignal: "SIGKILL",
    });
  } catch {
    // ENOENT (no NVIDIA driver installed) is the common case on machines without a GPU: say nothing.
    return undefined;
  }
  const stdout = new Response(child.stdout).text();
  stdout.catch(() => {});
  // A killed or failing run's partial output is never trusted.
  if ((await child.exited) !== 0) return undefined;
  return stdout;
}

/**
 * Asks nvidia-smi (two runs in parallel: GPUs, then compute processes) for GPU figures.
 * Returns undefined, quietly, when there are none to be had: no nvidia-smi, a failing one
 * ("couldn't communicate with the NVIDIA driver"), one that hangs past `timeoutMs`, or no GPUs.
 * @default options.command = "nvidia-smi", options.timeoutMs = 3000, options.env = process.env
 * @example
 * const snapshot = await queryGpus();
 * const held = snapshot?.processes.filter((p) => p.pid === entry.pid);
 */
export async function queryGpus(options: GpuQueryOptions = {}): Promise<GpuSnapshot | undefined> {
  const now = options.now ?? Date.now;
  const [gpuText, appsText] = await Promise.all([
    runNvidiaSmi(GPU_QUERY_ARGS, options),
    runNvidiaSmi(COMPUTE_APPS_QUERY_ARGS, options),
  ]);
  // GPUs without their processes would read as "nothing holds the GPU": no figures instead.
  if (gpuText === undefined || appsText === undefined) return undefined;
  const gpus = parseGpuCsv(gpuText);
  if (gpus.length === 0) return undefined;
  return { gpus, processes: parseComputeAppsCsv(appsText, gpus), taken_at: new Date(now()).toISOString() };
}

/**
 * {@link queryGpus} behind a short cache: callers within `cacheMs` of the last query, or
 * while one runs, share its snapshot.
 * @default options.cacheMs = 1000
 * @example
 * const gpuQuery = createGpuQuery();
 * const [a, b] = await Promise.all([gpuQuery(), gpuQuery()]); // one nvidia-smi run
 */
export function createGpuQuery(options: CachedGpuQueryOptions = {}): () => Promise<GpuSnapshot | undefined> {
  const cacheMs = options.cacheMs ?? DEFAULT_CACHE_MS;
  let current: Promise<GpuSnapshot | undefined> | undefined;
  let expiresAt = Number.NEGATIVE_INFINITY;
  return () => {
    if (current && performance.now() < expiresAt) return current;
    expiresAt = Number.POSITIVE_INFINITY;
    const query = queryGpus(options).finally(() => {
      if (current === query) expiresAt = performance.now() + cacheMs;
    });
    current = query;
    return query;
  };
}

/**
 * Polls GPU figures until `pid` holds no GPU memory any more. `released` is undefined when
 * there are no GPU figures on this machine, false when the PID still held memory at the timeout.
 * @default options.timeoutMs = 10000, options.intervalMs = 250, options.query = queryGpus
 * @example
 * const { released, ms } = await waitGpuReleased(entry.pid, { timeoutMs: 5000 });
 * if (released === false) console.warn(`pid ${entry.pid} still holds GPU memory after ${ms} ms`);
 */
export async function waitGpuReleased(
  pid: number,
  options: WaitGpuReleasedOptions = {},
): Promise<{ released: boolean | undefined; ms: number }> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 250;
  const query = options.query ?? (() => queryGpus());
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let sawFigures = false;
  for (;;) {
    const snapshot = await query();
    if (snapshot) {
      sawFigures = true;
      if (!snapshot.processes.some((p) => p.pid === pid)) return { released: true, ms: elapsed() };
    } else if (!sawFigures) {
      return { released: undefined, ms: elapsed() };
    }
    // A query that fails after figures were seen is a hiccup, not a release: keep polling.
    const ms = elapsed();
    if (ms >= timeoutMs) return { released: false, ms };
    await Bun.sleep(Math.min(intervalMs, timeoutMs - ms));
  }
}
