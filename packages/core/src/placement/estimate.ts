import type { MemoryArgs } from "./args.ts";
import type { ModelFacts } from "./facts.ts";
import { cacheTypeBytes, isQuantizedCache } from "./ggml-types.ts";

/** Memory one device needs for a load, in bytes. */
export interface DeviceEstimate {
  /** a GPU index, or "cpu" for host memory */
  readonly device: number | "cpu";
  /** repeating layers placed on it */
  readonly layers: number;
  readonly weights_bytes: number;
  readonly kv_bytes: number;
  readonly compute_bytes: number;
  readonly total_bytes: number;
}

/** What a model with its arguments needs, per device. */
export interface MemoryEstimate {
  /** context the cache is allocated for (the trained one where `ctx-size` is absent or 0, padded to 256) */
  readonly ctx: number;
  readonly parallel: number;
  readonly flash_attn: boolean;
  /** repeating layers on GPUs (of `layers`) */
  readonly gpu_layers: number;
  readonly layers: number;
  /** host memory first when it holds anything, then each GPU of the set in order */
  readonly devices: readonly DeviceEstimate[];
}

/** llama.cpp allocates the context in steps of 256 cells. */
const CTX_PAD = 256;

/**
 * The memory a llama-server load takes: weights per device (layers split over the GPU set by
 * `tensor-split`, even by default; the input embeddings stay in host memory), the KV cache
 * (2 × layers × context × KV heads × head size × bytes of the cache type, for the layers on each
 * device) and a compute buffer per device. The compute buffer follows what llama.cpp's CPU build
 * reserves for a llama-type graph: the attention mask (context × micro-batch, f16 with flash
 * attention, f32 without) plus the widest intermediate per token (the feed-forward, or without
 * flash attention the K·Q scores of every head).
 * @param gpus the GPU set in CUDA_VISIBLE_DEVICES order; empty for a CPU-only load
 * @example
 * const e = estimateMemory(await readModelFacts(path), parseMemoryArgs(["-c", "8192"]), [0])
 * e.devices.find((d) => d.device === 0)?.total_bytes
 */
export function estimateMemory(facts: ModelFacts, args: MemoryArgs, gpus: readonly number[]): MemoryEstimate {
  const ctx = padCtx(args.ctxSize || facts.context_length || 4096);
  const parallel = args.parallel ?? 4;
  const unified = args.kvUnified ?? args.parallel === undefined;
  const flash = args.flashAttn !== "off" || isQuantizedCache(args.cacheTypeV);
  const ubatch = Math.max(1, Math.min(args.ubatch, args.batch, ctx));
  const maskCtx = unified ? ctx : Math.max(1, Math.floor(ctx / parallel));
  const kvPerLayer = kvBytesPerLayer(facts, ctx, args);
  const compute = computeBytes(facts, ubatch, maskCtx, flash);
  const layout = layerLayout(facts.layers, args.gpuLayers, gpus, args);
  const devices: DeviceEstimate[] = [];
  const hostLayers = facts.layers - layout.gpuLayers;
  const hostWeights =
    facts.input_bytes + sum(facts.layer_bytes.slice(0, hostLayers)) + (layout.output ? 0 : facts.output_bytes);
  const hostKv = args.noKvOffload || gpus.length === 0 ? facts.layers * kvPerLayer : hostLayers * kvPerLayer;
  const hostCompute = layout.gpuLayers === 0 ? compute : 0;
  devices.push(device("cpu", hostLayers, hostWeights, hostKv, hostCompute));
  for (const [i, gpu] of gpus.entries()) {
    const mine = layout.owner.map((o, layer) => (o === i ? layer : -1)).filter((layer) => layer >= 0);
    if (mine.length === 0 && !(layout.output && i === layout.outputOwner)) continue;
    const weights =
      sum(mine.map((layer) => facts.layer_bytes[layer] ?? 0)) +
      (layout.output && i === layout.outputOwner ? facts.output_bytes : 0);
    const kv = args.noKvOffload ? 0 : mine.length * kvPerLayer;
    devices.push(device(gpu, mine.length, weights, kv, compute));
  }
  return { ctx, parallel, flash_attn: flash, gpu_layers: layout.gpuLayers, layers: facts.layers, devices };
}

function device(id: number | "cpu", layers: number, weights: number, kv: number, compute: number): DeviceEstimate {
  return {
    device: id,
    layers,
    weights_bytes: Math.round(weights),
    kv_bytes: Math.round(kv),
    compute_bytes: Math.round(compute),
    total_bytes: Math.round(weights + kv + compute),
  };
}

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

function padCtx(ctx: number): number {
  return Math.ceil(ctx / CTX_PAD) * CTX_PAD;
}

function kvBytesPerLayer(facts: ModelFacts, ctx: number, args: MemoryArgs): number {
  const k = cacheTypeBytes(args.cacheTypeK) ?? 2;
  const v = cacheTypeBytes(args.cacheTypeV) ?? 2;
  return ctx * facts.kv_heads * (facts.head_dim_k * k + facts.head_dim_v * v);
}

/**
 * The compute buffer llama.cpp reserves for one micro-batch. Fitted to the CPU build's
 * `compute buffer size` lines (llama-type models, see the placement tests): the mask is an input
 * live for the whole graph; with flash attention the peak is the feed-forward step, without it
 * the K·Q scores of every head.
 */
function computeBytes(facts: ModelFacts, ubatch: number, maskCtx: number, flash: boolean): number {
  const e = facts.embedding;
  const ff = facts.feed_forward;
  // Below about 3 × the embedding, ggml's allocator fits the gate into memory freed by the attention.
  const feedForward = 4 * ubatch * (ff >= 3 * e ? 3 * ff + 4 * e : 2 * ff + 4 * e);
  if (flash) return maskCtx * ubatch * 2 + feedForward;
  const kvDim = facts.kv_heads * facts.head_dim_k;
  const scores = 4 * ubatch * (5 * e + 2 * kvDim + maskCtx * (facts.heads + 1));
  return Math.max(scores, feedForward + maskCtx * ubatch * 4);
}

interface Layout {
  readonly gpuLayers: number;
  /** for each repeating layer, the index in `gpus` holding it, or -1 for host memory */
  readonly owner: readonly number[];
  readonly output: boolean;
  readonly outputOwner: number;
}

/**
 * llama.cpp's `load_tensors`: the last `n-gpu-layers` layers go to the GPUs, split by the
 * cumulative `tensor-split` proportions; the output layer too once every layer is on a GPU.
 */
function layerLayout(layers: number, requested: number | undefined, gpus: readonly number[], args: MemoryArgs): Layout {
  const ngl = gpus.length === 0 ? 0 : Math.min(requested ?? Number.POSITIVE_INFINITY, layers + 1);
  const gpuLayers = Math.min(ngl, layers);
  const start = layers - gpuLayers;
  const weights = gpus.map((_, i) =>
    args.splitNone ? (i === 0 ? 1 : 0) : (args.tensorSplit?.[i] ?? (args.tensorSplit ? 0 : 1)),
  );
  const total = sum(weights) || 1;
  const cumulative = weights.map((_, i) => sum(weights.slice(0, i + 1)) / total);
  const ownerOf = (layer: number): number => {
    const at = (layer - start) / Math.max(1, ngl);
    const found = cumulative.findIndex((c) => at < c);
    return found === -1 ? gpus.length - 1 : found;
  };
  const owner = Array.from({ length: layers }, (_, layer) => (layer < start ? -1 : ownerOf(layer)));
  return { gpuLayers, owner, output: ngl > layers, outputOwner: ngl > layers ? ownerOf(layers) : -1 };
}
