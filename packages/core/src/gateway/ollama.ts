import { GatewayError } from "./errors.ts";

/**
 * Ollama's API over llama-server's OpenAI endpoints: requests are rewritten into OpenAI bodies,
 * answers back into Ollama's shapes, streams from SSE into the NDJSON lines Ollama clients read
 * (one JSON object per line, `done: true` on the last one, `{"error": "…"}` on failure).
 */

/** An Ollama request rewritten for llama-server. */
export interface Translated {
  /** llama-server path */
  readonly path: string;
  /** the OpenAI body, as JSON text */
  readonly body: string;
  readonly stream: boolean;
}

type Json = Record<string, unknown>;

const encoder = new TextEncoder();
const NS_PER_MS = 1_000_000;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Ollama's `options` as OpenAI (and llama-server) sampling fields. */
function samplingOf(body: Json): Json {
  const o = isObject(body.options) ? body.options : {};
  const out: Json = {};
  const copy = (from: string, to = from) => {
    if (o[from] !== undefined) out[to] = o[from];
  };
  copy("num_predict", "max_tokens");
  for (const name of ["temperature", "top_p", "top_k", "min_p", "seed", "stop", "repeat_penalty"]) copy(name);
  for (const name of ["presence_penalty", "frequency_penalty", "typical_p", "mirostat", "num_keep"]) copy(name);
  if (body.format === "json") out.response_format = { type: "json_object" };
  else if (isObject(body.format)) out.response_format = { type: "json_schema", json_schema: { schema: body.format } };
  return out;
}

/**
 * `POST /api/chat` → `/v1/chat/completions`. Ollama streams unless `stream: false`.
 * @throws GatewayError bad_request when `messages` is not a list
 * @example
 * ollamaChatRequest({ model: "qwen", messages: [{ role: "user", content: "hi" }] }).stream // true
 */
export function ollamaChatRequest(body: Json): Translated {
  if (body.messages !== undefined && !Array.isArray(body.messages)) {
    throw new GatewayError("bad_request", "`messages` must be a list of { role, content }");
  }
  const messages = ((body.messages as unknown[] | undefined) ?? []).map((m) => {
    if (!isObject(m) || typeof m.role !== "string")
      throw new GatewayError("bad_request", "each message needs a `role`");
    return { role: m.role, content: typeof m.content === "string" ? m.content : "" };
  });
  const stream = body.stream !== false;
  const openai = { model: body.model, messages, stream, ...samplingOf(body), ...(stream ? STREAM_USAGE : {}) };
  return { path: "/v1/chat/completions", body: JSON.stringify(openai), stream };
}

const STREAM_USAGE = { stream_options: { include_usage: true } };

/**
 * `POST /api/generate` → `/v1/completions` (the `system` text, when given, goes before the prompt).
 * @example
 * ollamaGenerateRequest({ model: "qwen", prompt: "Once", stream: false }).path // "/v1/completions"
 */
export function ollamaGenerateRequest(body: Json): Translated {
  if (body.prompt !== undefined && typeof body.prompt !== "string") {
    throw new GatewayError("bad_request", "`prompt` must be a string");
  }
  const prompt = `${typeof body.system === "string" ? `${body.system}\n\n` : ""}${(body.prompt as string | undefined) ?? ""}`;
  const stream = body.stream !== false;
  const openai = { model: body.model, prompt, stream, ...samplingOf(body), ...(stream ? STREAM_USAGE : {}) };
  return { path: "/v1/completions", body: JSON.stringify(openai), stream };
}

/**
 * `POST /api/embed` (`input`: a string or a list) and the older `/api/embeddings` (`prompt`) → `/v1/embeddings`.
 * @example
 * ollamaEmbedRequest({ model: "qwen", input: ["a", "b"] }).body // '{"model":"qwen","input":["a","b"]}'
 */
export function ollamaEmbedRequest(body: Json): Translated {
  const input = body.input ?? body.prompt;
  const ok = typeof input === "string" || (Array.isArray(input) && input.every((i) => typeof i === "string"));
  if (!ok) throw new GatewayError("bad_request", "`input` must be a string or a list of strings");
  return { path: "/v1/embeddings", body: JSON.stringify({ model: body.model, input }), stream: false };
}

/** What the final `done: true` line reports. */
interface Totals {
  promptCount?: number;
  promptMs?: number;
  evalCount?: number;
  evalMs?: number;
  finish?: string;
}

function totalsOf(chunk: Json, into: Totals): void {
  const usage = isObject(chunk.usage) ? chunk.usage : undefined;
  if (typeof usage?.prompt_tokens === "number") into.promptCount = usage.prompt_tokens;
  if (typeof usage?.completion_tokens === "number") into.evalCount = usage.completion_tokens;
  const t = isObject(chunk.timings) ? chunk.timings : undefined;
  if (typeof t?.prompt_n === "number") into.promptCount = t.prompt_n;
  if (typeof t?.prompt_ms === "number") into.promptMs = t.prompt_ms;
  if (typeof t?.predicted_n === "number") into.evalCount = t.predicted_n;
  if (typeof t?.predicted_ms === "number") into.evalMs = t.predicted_ms;
  const choice = Array.isArray(chunk.choices) && isObject(chunk.choices[0]) ? chunk.choices[0] : undefined;
  if (typeof choice?.finish_reason === "string") into.finish = choice.finish_reason;
}

function finalFields(totals: Totals, startedAt: number, loadMs: number | undefined): Json {
  const ns = (ms: number | undefined) => (ms === undefined ? undefined : Math.round(ms * NS_PER_MS));
  return {
    done_reason: totals.finish === "length" ? "length" : "stop",
    done: true,
    total_duration: ns(performance.now() - startedAt),
    load_duration: ns(loadMs ?? 0),
    prompt_eval_count: totals.promptCount ?? 0,
    prompt_eval_duration: ns(totals.promptMs) ?? 0,
    eval_count: totals.evalCount ?? 0,
    eval_duration: ns(totals.evalMs) ?? 0,
  };
}

function textOf(kind: "chat" | "generate", chunk: Json): string {
  const choice = Array.isArray(chunk.choices) && isObject(chunk.choices[0]) ? chunk.choices[0] : undefined;
  if (kind === "generate") return typeof choice?.text === "string" ? choice.text : "";
  const part = isObject(choice?.delta) ? choice.delta : isObject(choice?.message) ? choice.message : undefined;
  return typeof part?.content === "string" ? part.content : "";
}

function line(value: Json): Uint8Array {
  return encoder.encode(`${JSON.stringify(value)}\n`);
}

/** The message an OpenAI error body carries, or the body itself. */
function errorMessage(value: unknown, fallback: string): string {
  if (isObject(value) && isObject(value.error) && typeof value.error.message === "string") return value.error.message;
  if (isObject(value) && typeof value.error === "string") return value.error;
  return fallback;
}

/** Context of one translated answer. */
export interface AnswerContext {
  readonly kind: "chat" | "generate";
  /** the model name the client asked for, echoed back as Ollama does */
  readonly model: string;
  /** performance.now() when the request arrived */
  readonly startedAt: number;
  /** time spent loading the model for this request */
  readonly loadMs?: number;
}

/**
 * llama-server's OpenAI answer (JSON or SSE) as Ollama's (JSON or NDJSON), status kept.
 * @example
 * return ollamaAnswer(await forward(lease, …), { kind: "chat", model: "qwen", startedAt })
 */
export async function ollamaAnswer(response: Response, ctx: AnswerContext): Promise<Response> {
  const type = response.headers.get("content-type") ?? "";
  if (type.includes("text/event-stream") && response.body) {
    return new Response(response.body.pipeThrough(sseToNdjson(ctx)), {
      status: response.status,
      headers: { "content-type": "application/x-ndjson" },
    });
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!response.ok || !isObject(parsed)) {
    const status = response.ok ? 502 : response.status;
    return Response.json(
      { error: errorMessage(parsed, text.slice(0, 500) || `llama-server answered ${response.status}`) },
      { status },
    );
  }
  return Response.json(ollamaJson(parsed, ctx));
}

function ollamaJson(parsed: Json, ctx: AnswerContext): Json {
  const totals: Totals = {};
  totalsOf(parsed, totals);
  const created = new Date().toISOString();
  const content = textOf(ctx.kind, parsed);
  const head = ctx.kind === "chat" ? { message: { role: "assistant", content } } : { response: content };
  return { model: ctx.model, created_at: created, ...head, ...finalFields(totals, ctx.startedAt, ctx.loadMs) };
}

/**
 * An Ollama embed answer from an OpenAI one.
 * @example
 * await ollamaEmbedAnswer(res, "qwen", false) // { model: "qwen", embeddings: [[0.1, …]] }
 */
export async function ollamaEmbedAnswer(response: Response, model: string, legacy: boolean): Promise<Response> {
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!response.ok || !isObject(parsed) || !Array.isArray(parsed.data)) {
    return Response.json(
      { error: errorMessage(parsed, text.slice(0, 500)) },
      { status: response.ok ? 502 : response.status },
    );
  }
  const embeddings = parsed.data.map((d) => (isObject(d) ? d.embedding : undefined));
  const usage = isObject(parsed.usage) ? parsed.usage : {};
  if (legacy) return Response.json({ embedding: embeddings[0] ?? [] });
  return Response.json({ model, embeddings, prompt_eval_count: usage.prompt_tokens ?? 0 });
}

/**
 * Turns llama-server's SSE (`data: {…}` events, `data: [DONE]`) into Ollama's NDJSON lines.
 * An error event becomes `{"error": "…"}`; the final line carries the counts and durations.
 * @example
 * response.body.pipeThrough(sseToNdjson({ kind: "chat", model: "qwen", startedAt: performance.now() }))
 */
export function sseToNdjson(ctx: AnswerContext): TransformStream<Uint8Array, Uint8Array> {
  const decoder = new TextDecoder();
  const totals: Totals = {};
  let pending = "";
  let ended = false;
  const end = (out: TransformStreamDefaultController<Uint8Array>) => {
    if (ended) return;
    ended = true;
    const head = ctx.kind === "chat" ? { message: { role: "assistant", content: "" } } : { response: "" };
    out.enqueue(
      line({
        model: ctx.model,
        created_at: new Date().toISOString(),
        ...head,
        ...finalFields(totals, ctx.startedAt, ctx.loadMs),
      }),
    );
  };
  const handle = (raw: string, out: TransformStreamDefaultController<Uint8Array>) => {
    if (!raw.startsWith("data:") || ended) return;
    const data = raw.slice(5).trim();
    if (data === "[DONE]") return end(out);
    let chunk: unknown;
    try {
      chunk = JSON.parse(data);
    } catch {
      return;
    }
    if (!isObject(chunk)) return;
    if (chunk.error !== undefined) {
      ended = true;
      out.enqueue(line({ error: errorMessage(chunk, "llama-server failed") }));
      return;
    }
    totalsOf(chunk, totals);
    const text = textOf(ctx.kind, chunk);
    if (text === "") return;
    const head = ctx.kind === "chat" ? { message: { role: "assistant", content: text } } : { response: text };
    out.enqueue(line({ model: ctx.model, created_at: new Date().toISOString(), ...head, done: false }));
  };
  return new TransformStream({
    transform(bytes, out) {
      pending += decoder.decode(bytes, { stream: true });
      let at = pending.indexOf("\n");
      while (at !== -1) {
        handle(pending.slice(0, at).replace(/\r$/, ""), out);
        pending = pending.slice(at + 1);
        at = pending.indexOf("\n");
      }
    },
    flush(out) {
      if (pending) handle(pending, out);
      end(out);
    },
  });
}
