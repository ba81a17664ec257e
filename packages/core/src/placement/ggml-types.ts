import { GGMLFileQuantizationType, GGMLQuantizationType } from "@huggingface/gguf";

/**
 * Sizes of ggml's tensor types, as `[elements per block, bytes per block]` (ggml.c `type_traits`).
 * A tensor of `n` elements holds `n / elements * bytes` bytes.
 */
const Q = GGMLQuantizationType;
const QK_K = 256;
const BLOCKS: Readonly<Record<number, readonly [number, number]>> = {
  [Q.F32]: [1, 4],
  [Q.F16]: [1, 2],
  [Q.BF16]: [1, 2],
  [Q.F64]: [1, 8],
  [Q.I8]: [1, 1],
  [Q.I16]: [1, 2],
  [Q.I32]: [1, 4],
  [Q.I64]: [1, 8],
  [Q.Q4_0]: [32, 18],
  [Q.Q4_1]: [32, 20],
  [Q.Q5_0]: [32, 22],
  [Q.Q5_1]: [32, 24],
  [Q.Q8_0]: [32, 34],
  [Q.Q8_1]: [32, 36],
  [Q.Q2_K]: [QK_K, 2 + 2 + QK_K / 16 + QK_K / 4],
  [Q.Q3_K]: [QK_K, 2 + QK_K / 4 + QK_K / 8 + 12],
  [Q.Q4_K]: [QK_K, 2 + 2 + QK_K / 2 + 12],
  [Q.Q5_K]: [QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12],
  [Q.Q6_K]: [QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16],
  [Q.Q8_K]: [QK_K, 4 + QK_K + QK_K / 8],
  [Q.IQ2_XXS]: [QK_K, 2 + QK_K / 4],
  [Q.IQ2_XS]: [QK_K, 2 + QK_K / 4 + QK_K / 32],
  [Q.IQ3_XXS]: [QK_K, 2 + QK_K / 4 + QK_K / 8],
  [Q.IQ1_S]: [QK_K, 2 + QK_K / 8 + QK_K / 16],
  [Q.IQ4_NL]: [32, 18],
  [Q.IQ3_S]: [QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4],
  [Q.IQ2_S]: [QK_K, 2 + QK_K / 4 + QK_K / 16],
  [Q.IQ4_XS]: [QK_K, 2 + 2 + QK_K / 2 + QK_K / 64],
  [Q.IQ1_M]: [QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32],
  [Q.TQ1_0]: [QK_K, 2 + 4 * 13],
  [Q.TQ2_0]: [QK_K, 2 + 64],
  [Q.MXFP4]: [32, 17],
};

/**
 * Bytes a tensor of `elements` values of ggml type `type` takes (its data only, before alignment).
 * An unknown type counts as f16, so a newer quantization still gives a figure in the right range.
 * @example
 * tensorBytes(GGMLQuantizationType.Q8_0, 4096) // 4352
 */
export function tensorBytes(type: number, elements: number): number {
  const [perBlock, bytes] = BLOCKS[type] ?? [1, 2];
  return Math.ceil(elements / perBlock) * bytes;
}

/** KV cache types llama-server accepts (`--cache-type-k/v`), in bytes per element. */
const CACHE_TYPES: Readonly<Record<string, number>> = {
  f32: 4,
  f16: 2,
  bf16: 2,
  q8_0: 34 / 32,
  q4_0: 18 / 32,
  q4_1: 20 / 32,
  iq4_nl: 18 / 32,
  q5_0: 22 / 32,
  q5_1: 24 / 32,
};

/**
 * Bytes per element of a KV cache type, or undefined for a name llama-server would refuse.
 * @example
 * cacheTypeBytes("q8_0") // 1.0625
 */
export function cacheTypeBytes(name: string): number | undefined {
  return CACHE_TYPES[name.toLowerCase()];
}

/** A cache type is quantized (llama.cpp then needs flash attention for the V cache). */
export function isQuantizedCache(name: string): boolean {
  const bytes = cacheTypeBytes(name);
  return bytes !== undefined && bytes < 2;
}

/**
 * The label of a GGUF's `general.file_type` ("Q4_K_M", "F16"), or of the tensor type most
 * weights have when the file does not say (llama.cpp prints "(guessed)" then).
 * @example
 * quantizationLabel(15, []) // "Q4_K_M"
 */
export function quantizationLabel(fileType: number | undefined, tensorTypes: readonly number[]): string {
  if (fileType !== undefined) {
    const name = GGMLFileQuantizationType[fileType];
    if (name) return name;
  }
  const counts = new Map<number, number>();
  for (const t of tensorTypes) counts.set(t, (counts.get(t) ?? 0) + 1);
  const most = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
  return most === undefined ? "" : (GGMLQuantizationType[most] ?? "");
}
