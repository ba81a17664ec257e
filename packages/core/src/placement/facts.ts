import { readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { gguf } from "@huggingface/gguf";
import { writePrivateFileAtomic } from "../store/secure-fs.ts";
import { quantizationLabel, tensorBytes } from "./ggml-types.ts";

/** What placement knows of a model from its GGUF header. Sizes in bytes. */
export interface ModelFacts {
  readonly path: string;
  readonly file_bytes: number;
  /** `general.architecture`, e.g. "llama", "qwen2" */
  readonly architecture: string;
  /** `general.name` where the file has one */
  readonly name?: string;
  /** weights counted from the tensor shapes */
  readonly parameter_count: number;
  /** `general.file_type` where the file says it */
  readonly file_type?: number;
  /** "Q4_K_M", "F16" …; guessed from the tensor types when the file has no `general.file_type` */
  readonly quantization: string;
  readonly layers: number;
  readonly embedding: number;
  /** attention heads (the largest, for files that give one per layer) */
  readonly heads: number;
  readonly kv_heads: number;
  /** size of one key head and one value head @default embedding / heads */
  readonly head_dim_k: number;
  readonly head_dim_v: number;
  /** feed-forward width (the largest, for files that give one per layer) */
  readonly feed_forward: number;
  /** experts of a mixture-of-experts model; 0 for a dense one */
  readonly experts: number;
  readonly vocab: number;
  /** context length the model was trained for */
  readonly context_length: number;
  /** bytes of all tensors together */
  readonly tensor_bytes: number;
  /** bytes of each repeating layer's tensors (`blk.N.*`) */
  readonly layer_bytes: readonly number[];
  /** token embeddings: llama.cpp keeps the input layer in host memory */
  readonly input_bytes: number;
  /** output norm and head, on the GPU only when every layer is; a tied head counts the embeddings again */
  readonly output_bytes: number;
  /** `tokenizer.chat_template` is present */
  readonly chat_template: boolean;
}

/** Options of {@link readModelFacts}. */
export interface ReadFactsOptions {
  /**
   * Facts read before, keyed by path + size + mtime: a file that changed is read again.
   * @default the module's own cache
   */
  readonly cache?: FactsCache;
}

/** Options of {@link FactsCache}. */
export interface FactsCacheOptions {
  /**
   * A JSON file that keeps the facts across processes (`<home>/facts.json`): a header with a large
   * vocabulary takes ~400 ms to parse, and every CLI run is a new process.
   * @default none (memory only)
   */
  readonly file?: string;
}

interface StoredFacts {
  readonly key: string;
  readonly facts: ModelFacts;
}

/** A cache of {@link ModelFacts} by path, size and mtime, in memory and optionally in a file. */
export class FactsCache {
  readonly #entries = new Map<string, { key: string; facts: Promise<ModelFacts> }>();
  readonly #file: string | undefined;
  #stored: Record<string, StoredFacts> | undefined;
  /** How many files were parsed (not answered from the cache): for tests and the bench. */
  reads = 0;

  constructor(options: FactsCacheOptions = {}) {
    this.#file = options.file;
  }

  /** The cached facts for `path` at `key`, or the result of `read` (kept only when it succeeds). */
  get(path: string, key: string, read: () => Promise<ModelFacts>): Promise<ModelFacts> {
    const hit = this.#entries.get(path);
    if (hit?.key === key) return hit.facts;
    const stored = this.#load()[path];
    if (stored?.key === key) {
      const facts = Promise.resolve(stored.facts);
      this.#entries.set(path, { key, facts });
      return facts;
    }
    this.reads++;
    const facts = read();
    this.#entries.set(path, { key, facts });
    facts.then(
      (value) => this.#save(path, { key, facts: value }),
      () => {
        if (this.#entries.get(path)?.facts === facts) this.#entries.delete(path);
      },
    );
    return facts;
  }

  clear(): void {
    this.#entries.clear();
  }

  #load(): Record<string, StoredFacts> {
    if (this.#stored) return this.#stored;
    this.#stored = {};
    if (!this.#file) return this.#stored;
    try {
      const parsed: unknown = JSON.parse(readFileSync(this.#file, "utf8"));
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
        this.#stored = parsed as Record<string, StoredFacts>;
      }
    } catch {
      // missing or unreadable: a cache starts empty
    }
    return this.#stored;
  }

  /** Best effort: re-read first (another process may have added entries), then write atomically. */
  #save(path: string, value: StoredFacts): void {
    if (!this.#file) return;
    const file = this.#file;
    this.#stored = undefined;
    const all = { ...this.#load(), [path]: value };
    this.#stored = all;
    try {
      writePrivateFileAtomic(file, `${JSON.stringify(all)}\n`);
    } catch {
      // a cache that cannot be written is only a slower next start
    }
  }
}

const sharedCache = new FactsCache();

/**
 * Reads a model's facts from its GGUF header (only the header and tensor table are read, not the
 * weights), answering from the cache while the file's size and mtime are unchanged.
 * @throws the file's stat or parse error (not a GGUF, truncated)
 * @example
 * const facts = await readModelFacts("/models/qwen2.5-7b-q4_k_m.gguf")
 * console.log(facts.quantization, facts.parameter_count) // "Q4_K_M" 7615616512
 */
export async function readModelFacts(path: string, options: ReadFactsOptions = {}): Promise<ModelFacts> {
  const info = await stat(path);
  const cache = options.cache ?? sharedCache;
  return cache.get(path, `${info.size}:${info.mtimeMs}:${info.ino}`, () => parseFacts(path, info.size));
}

type Metadata = Readonly<Record<string, unknown>>;

function num(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  // Some files give one figure per layer (head counts, feed-forward widths): the largest sizes the buffers.
  if (Array.isArray(value) && value.length > 0) return Math.max(...value.map((v) => num(v) ?? 0));
  return undefined;
}

async function parseFacts(path: string, fileBytes: number): Promise<ModelFacts> {
  const parsed = await gguf(path, { allowLocalFile: true, computeParametersCount: true });
  const meta = parsed.metadata as unknown as Metadata;
  const arch = typeof meta["general.architecture"] === "string" ? meta["general.architecture"] : "";
  const key = (name: string) => num(meta[`${arch}.${name}`]);
  const embedding = key("embedding_length") ?? 0;
  const heads = key("attention.head_count") ?? 1;
  const tokens = meta["tokenizer.ggml.tokens"];
  const sizes = tensorSizes(parsed.tensorInfos, key("block_count") ?? 0);
  return {
    path,
    file_bytes: fileBytes,
    architecture: arch,
    ...(typeof meta["general.name"] === "string" ? { name: meta["general.name"] } : {}),
    parameter_count: parsed.parameterCount,
    ...(num(meta["general.file_type"]) !== undefined ? { file_type: num(meta["general.file_type"]) } : {}),
    quantization: quantizationLabel(
      num(meta["general.file_type"]),
      parsed.tensorInfos.filter((t) => t.n_dims >= 2).map((t) => t.dtype),
    ),
    layers: key("block_count") ?? 0,
    embedding,
    heads,
    kv_heads: key("attention.head_count_kv") ?? heads,
    head_dim_k: key("attention.key_length") ?? Math.floor(embedding / heads),
    head_dim_v: key("attention.value_length") ?? Math.floor(embedding / heads),
    feed_forward: key("feed_forward_length") ?? 4 * embedding,
    experts: key("expert_count") ?? 0,
    vocab: key("vocab_size") ?? (Array.isArray(tokens) ? tokens.length : 0),
    context_length: key("context_length") ?? 0,
    ...sizes,
    chat_template: typeof meta["tokenizer.chat_template"] === "string",
  };
}

interface TensorInfo {
  readonly name: string;
  readonly shape: readonly bigint[];
  readonly dtype: number;
}

function tensorSizes(tensors: readonly TensorInfo[], layers: number) {
  const layerBytes = new Array<number>(layers).fill(0);
  let total = 0;
  let input = 0;
  let output = 0;
  let embeddings = 0;
  let hasHead = false;
  for (const t of tensors) {
    const bytes = tensorBytes(
      t.dtype,
      t.shape.reduce((a, b) => a * Number(b), 1),
    );
    total += bytes;
    const layer = /^blk\.(\d+)\./.exec(t.name)?.[1];
    if (layer !== undefined && Number(layer) < layers)
      layerBytes[Number(layer)] = (layerBytes[Number(layer)] ?? 0) + bytes;
    else if (t.name.startsWith("token_embd.")) {
      input += bytes;
      embeddings += bytes;
    } else if (t.name.startsWith("output")) {
      output += bytes;
      hasHead ||= t.name === "output.weight";
    } else input += bytes;
  }
  // A model whose head is tied to its embeddings gets a copy of them on the GPU that holds the output.
  if (!hasHead) output += embeddings;
  return { tensor_bytes: total, layer_bytes: layerBytes, input_bytes: input, output_bytes: output };
}

/**
 * A parameter count the way model names say it: "7.6B", "494M", "1.2K".
 * @example
 * formatParameterCount(7_615_616_512) // "7.6B"
 */
export function formatParameterCount(n: number): string {
  const [unit, size] = n >= 1e9 ? ["B", 1e9] : n >= 1e6 ? ["M", 1e6] : n >= 1e3 ? ["K", 1e3] : ["", 1];
  const value = n / (size as number);
  return `${value >= 100 || unit === "" ? Math.round(value) : Number(value.toPrecision(value >= 10 ? 3 : 2))}${unit}`;
}

/**
 * The parameter count and quantization of a model file for listings (`GET /api/v1/models`,
 * `corral ls --models`); empty where the file cannot be read as a GGUF.
 * @example
 * await modelLabels("/m/qwen2.5-7b-q4_k_m.gguf") // { parameter_count: "7.6B", quantization: "Q4_K_M" }
 */
export async function modelLabels(
  path: string,
  cache?: FactsCache,
): Promise<{ parameter_count: string; quantization: string }> {
  try {
    const facts = await readModelFacts(path, { cache });
    return { parameter_count: formatParameterCount(facts.parameter_count), quantization: facts.quantization };
  } catch {
    return { parameter_count: "", quantization: "" };
  }
}
