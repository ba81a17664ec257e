/**
 * A small GGUF writer for test models: a llama-architecture model with random f32 weights and a
 * real tokenizer copied from a vocab-only GGUF (llama.cpp's `models/ggml-vocab-llama-spm.gguf`),
 * so a real llama-server loads it and answers completions with real tokens (random text).
 *
 * The default shape is the gateway's `tiny-chat.gguf`: 2 layers, embedding 64, 4 heads, feed
 * forward 128, context 2048, f32 (~17 MB with the 32000-token vocabulary). Every figure is an
 * option, so other tests (placement) can write other shapes.
 *
 * Usage: bun scripts/gguf-writer.ts <vocab.gguf> <out.gguf> [--layers N] [--embd N] [--heads N]
 *        [--heads-kv N] [--ff N] [--ctx N] [--seed N]
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";

/** GGUF value types (gguf.h `enum gguf_type`). */
const T = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;
const FIXED_SIZE: Readonly<Record<number, number>> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  10: 8,
  11: 8,
  12: 8,
};
const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
const ALIGNMENT = 32;
const GGML_TYPE_F32 = 0;

/** One metadata pair with its value already encoded (type tag excluded). */
export interface GgufKv {
  readonly key: string;
  readonly type: number;
  readonly value: Uint8Array;
}

/** The shape of the model to write. */
export interface LlamaShape {
  /** @default 2 */
  readonly layers: number;
  /** @default 64 */
  readonly embd: number;
  /** @default 4 */
  readonly heads: number;
  /** @default heads */
  readonly headsKv: number;
  /** @default 128 */
  readonly ff: number;
  /** @default 2048 */
  readonly ctx: number;
  /** seed of the random weights, so the same options write the same file @default 42 */
  readonly seed: number;
}

/** The tiny-chat shape. */
export const TINY_CHAT_SHAPE: LlamaShape = { layers: 2, embd: 64, heads: 4, headsKv: 4, ff: 128, ctx: 2048, seed: 42 };

class Reader {
  offset = 0;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u32(): number {
    const v = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }
  u64(): number {
    const v = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    return Number(v);
  }
  string(): string {
    const length = this.u64();
    const text = new TextDecoder().decode(this.bytes.subarray(this.offset, this.offset + length));
    this.offset += length;
    return text;
  }
  /** Skips one value of `type`, returning its encoded bytes. */
  value(type: number): Uint8Array {
    const start = this.offset;
    this.skip(type);
    return this.bytes.slice(start, this.offset);
  }
  skip(type: number): void {
    if (type === T.string) {
      // Read first: `offset += u64()` would add to the offset from before the length was read.
      const length = this.u64();
      this.offset += length;
    } else if (type === T.array) {
      const itemType = this.u32();
      const count = this.u64();
      const fixed = FIXED_SIZE[itemType];
      if (fixed !== undefined) this.offset += fixed * count;
      else for (let i = 0; i < count; i++) this.skip(itemType);
    } else {
      const fixed = FIXED_SIZE[type];
      if (fixed === undefined) throw new Error(`unknown GGUF value type ${type} at byte ${this.offset}`);
      this.offset += fixed;
    }
  }
}

/**
 * The metadata pairs of a GGUF file (values left encoded, ready to copy).
 * @example
 * readGgufMetadata(readFileSync("ggml-vocab-llama-spm.gguf")).filter((kv) => kv.key.startsWith("tokenizer."))
 */
export function readGgufMetadata(bytes: Uint8Array): GgufKv[] {
  const r = new Reader(bytes);
  if (r.u32() !== GGUF_MAGIC) throw new Error("not a GGUF file (bad magic)");
  const version = r.u32();
  if (version < 2) throw new Error(`GGUF version ${version} is too old`);
  r.u64(); // tensor count
  const count = r.u64();
  const kvs: GgufKv[] = [];
  for (let i = 0; i < count; i++) {
    const key = r.string();
    const type = r.u32();
    kvs.push({ key, type, value: r.value(type) });
  }
  return kvs;
}

function encodeString(text: string): Uint8Array {
  const body = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true);
  out.set(body, 8);
  return out;
}

function scalar(type: number, value: number): Uint8Array {
  const out = new Uint8Array(FIXED_SIZE[type] ?? 0);
  const view = new DataView(out.buffer);
  if (type === T.u32) view.setUint32(0, value, true);
  else if (type === T.f32) view.setFloat32(0, value, true);
  else throw new Error(`scalar type ${type} not supported here`);
  return out;
}

/** A small deterministic PRNG (mulberry32), so the weights are the same on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Tensor {
  readonly name: string;
  /** ggml order: ne[0] (the row length) first */
  readonly dims: readonly number[];
  /** "ones" for norms, else random in ±scale */
  readonly fill: "ones" | number;
}

function llamaTensors(shape: LlamaShape, vocab: number): Tensor[] {
  const { embd, ff } = shape;
  const kv = (embd / shape.heads) * shape.headsKv;
  const scale = 1 / Math.sqrt(embd);
  const tensors: Tensor[] = [
    { name: "token_embd.weight", dims: [embd, vocab], fill: 0.5 },
    { name: "output_norm.weight", dims: [embd], fill: "ones" },
    { name: "output.weight", dims: [embd, vocab], fill: scale },
  ];
  for (let i = 0; i < shape.layers; i++) {
    const b = `blk.${i}`;
    tensors.push(
      { name: `${b}.attn_norm.weight`, dims: [embd], fill: "ones" },
      { name: `${b}.attn_q.weight`, dims: [embd, embd], fill: scale },
      { name: `${b}.attn_k.weight`, dims: [embd, kv], fill: scale },
      { name: `${b}.attn_v.weight`, dims: [embd, kv], fill: scale },
      { name: `${b}.attn_output.weight`, dims: [embd, embd], fill: scale },
      { name: `${b}.ffn_norm.weight`, dims: [embd], fill: "ones" },
      { name: `${b}.ffn_gate.weight`, dims: [embd, ff], fill: scale },
      { name: `${b}.ffn_up.weight`, dims: [embd, ff], fill: scale },
      { name: `${b}.ffn_down.weight`, dims: [ff, embd], fill: 1 / Math.sqrt(ff) },
    );
  }
  return tensors;
}

function vocabSize(tokenizer: readonly GgufKv[]): number {
  const tokens = tokenizer.find((kv) => kv.key === "tokenizer.ggml.tokens");
  if (!tokens || tokens.type !== T.array) throw new Error("the vocab file has no tokenizer.ggml.tokens array");
  return Number(new DataView(tokens.value.buffer, tokens.value.byteOffset + 4, 8).getBigUint64(0, true));
}

function header(shape: LlamaShape, name: string): GgufKv[] {
  const u32 = (key: string, v: number): GgufKv => ({ key, type: T.u32, value: scalar(T.u32, v) });
  return [
    { key: "general.architecture", type: T.string, value: encodeString("llama") },
    { key: "general.name", type: T.string, value: encodeString(name) },
    u32("general.file_type", 0),
    u32("general.alignment", ALIGNMENT),
    u32("llama.context_length", shape.ctx),
    u32("llama.embedding_length", shape.embd),
    u32("llama.block_count", shape.layers),
    u32("llama.feed_forward_length", shape.ff),
    u32("llama.attention.head_count", shape.heads),
    u32("llama.attention.head_count_kv", shape.headsKv),
    u32("llama.rope.dimension_count", shape.embd / shape.heads),
    { key: "llama.attention.layer_norm_rms_epsilon", type: T.f32, value: scalar(T.f32, 1e-5) },
  ];
}

/** Buffers small writes into one fd. */
class Out {
  readonly #fd: number;
  #buffer = new Uint8Array(1 << 20);
  #used = 0;
  written = 0;
  constructor(fd: number) {
    this.#fd = fd;
  }
  bytes(b: Uint8Array): void {
    if (this.#used + b.length > this.#buffer.length) this.flush();
    if (b.length > this.#buffer.length) {
      writeSync(this.#fd, b);
    } else {
      this.#buffer.set(b, this.#used);
      this.#used += b.length;
    }
    this.written += b.length;
  }
  u32(v: number): void {
    this.bytes(scalar(T.u32, v));
  }
  u64(v: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.bytes(b);
  }
  pad(): void {
    const extra = (ALIGNMENT - (this.written % ALIGNMENT)) % ALIGNMENT;
    if (extra) this.bytes(new Uint8Array(extra));
  }
  flush(): void {
    if (this.#used) writeSync(this.#fd, this.#buffer.subarray(0, this.#used));
    this.#used = 0;
  }
}

/**
 * Writes a llama GGUF with random weights and the tokenizer of `vocabFile`, atomically (temp, fsync, rename).
 * @default shape = TINY_CHAT_SHAPE
 * @returns the number of bytes written
 * @example
 * writeLlamaGguf({ vocabFile: "src/models/ggml-vocab-llama-spm.gguf", outFile: "models/tiny-chat.gguf" })
 */
export function writeLlamaGguf(options: {
  readonly vocabFile: string;
  readonly outFile: string;
  readonly shape?: Partial<LlamaShape>;
  readonly name?: string;
}): number {
  const shape: LlamaShape = { ...TINY_CHAT_SHAPE, headsKv: options.shape?.heads ?? 4, ...options.shape };
  if (shape.embd % shape.heads !== 0) throw new Error(`embd ${shape.embd} is not a multiple of heads ${shape.heads}`);
  if (shape.heads % shape.headsKv !== 0) throw new Error(`heads ${shape.heads} is not a multiple of heads-kv`);
  const tokenizer = readGgufMetadata(readFileSync(options.vocabFile)).filter((kv) => kv.key.startsWith("tokenizer."));
  const vocab = vocabSize(tokenizer);
  const kvs = [...header(shape, options.name ?? "tiny-chat"), ...tokenizer];
  const tensors = llamaTensors(shape, vocab);
  const temp = `${options.outFile}.${process.pid}.tmp`;
  const fd = openSync(temp, "w");
  const out = new Out(fd);
  try {
    out.u32(GGUF_MAGIC);
    out.u32(3);
    out.u64(tensors.length);
    out.u64(kvs.length);
    for (const kv of kvs) {
      out.bytes(encodeString(kv.key));
      out.u32(kv.type);
      out.bytes(kv.value);
    }
    let offset = 0;
    for (const t of tensors) {
      out.bytes(encodeString(t.name));
      out.u32(t.dims.length);
      for (const d of t.dims) out.u64(d);
      out.u32(GGML_TYPE_F32);
      out.u64(offset);
      const size = t.dims.reduce((a, b) => a * b, 1) * 4;
      offset += size + ((ALIGNMENT - (size % ALIGNMENT)) % ALIGNMENT);
    }
    out.pad();
    const next = random(shape.seed);
    for (const t of tensors) {
      const data = new Float32Array(t.dims.reduce((a, b) => a * b, 1));
      if (t.fill === "ones") data.fill(1);
      else for (let i = 0; i < data.length; i++) data[i] = (next() * 2 - 1) * t.fill;
      out.bytes(new Uint8Array(data.buffer));
      out.pad();
    }
    out.flush();
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, options.outFile);
  return out.written;
}

function flagValue(argv: readonly string[], name: string): number | undefined {
  const at = argv.indexOf(name);
  if (at === -1) return undefined;
  const n = Number(argv[at + 1]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a positive integer`);
  return n;
}

if (import.meta.main) {
  const [vocabFile, outFile, ...rest] = Bun.argv.slice(2);
  if (!vocabFile || !outFile) {
    console.error("usage: bun scripts/gguf-writer.ts <vocab.gguf> <out.gguf> [--layers N] [--embd N] [--heads N] …");
    process.exit(2);
  }
  const pick = (key: keyof LlamaShape, flag: string) => {
    const v = flagValue(rest, flag);
    return v === undefined ? {} : { [key]: v };
  };
  const shape: Partial<LlamaShape> = {
    ...pick("layers", "--layers"),
    ...pick("embd", "--embd"),
    ...pick("heads", "--heads"),
    ...pick("headsKv", "--heads-kv"),
    ...pick("ff", "--ff"),
    ...pick("ctx", "--ctx"),
    ...pick("seed", "--seed"),
  };
  const bytes = writeLlamaGguf({ vocabFile, outFile, shape });
  console.log(`wrote ${outFile} (${(bytes / 1e6).toFixed(1)} MB)`);
}
