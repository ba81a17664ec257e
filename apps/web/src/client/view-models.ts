/**
 * The Models panel: one card per configured model with the gateway's figures (state, requests in
 * flight and served, time until its idle unload, speed of the last request) and a small prompt
 * box that streams an answer through the gateway (`POST /v1/chat/completions`, `stream: true`),
 * so a person can see a model works. Cards are kept across refreshes: a refresh updates the
 * figures and never wipes a question being typed or an answer being streamed.
 */
import type { ApiClient } from "./api.ts";
import { h } from "./dom.ts";

/** One model as `GET /v1/models` sends it under `corral` (core's GatewayModelView; the fields shown here). */
export interface GatewayModel {
  readonly id: string;
  readonly state: "loaded" | "loading" | "unloading" | "unloaded";
  readonly slot?: string;
  readonly in_flight: number;
  readonly served: number;
  readonly ttl_s: number;
  readonly unload_at?: string;
  readonly tokens_per_second?: number;
  readonly aliases: readonly string[];
  readonly pinned: boolean;
  /** from `GET /api/v1/models` (the GGUF header): "7.6B", "Q4_K_M"; empty where unknown */
  readonly parameter_count?: string;
  readonly quantization?: string;
}

/** `GET /v1/models`. */
export interface GatewayModelList {
  readonly data: readonly { readonly id: string; readonly corral: GatewayModel }[];
}

/**
 * The figures line of a card.
 * @example
 * modelSummary({ id: "q", state: "loaded", slot: "0", in_flight: 1, served: 4, ttl_s: 0, aliases: [], pinned: false })
 * // "loaded in slot 0 · 1 in flight · 4 served · never unloaded when idle"
 */
export function modelSummary(m: GatewayModel, now = Date.now()): string {
  const parts: string[] = [m.state === "loaded" && m.slot ? `loaded in slot ${m.slot}` : m.state];
  const facts = [m.parameter_count, m.quantization].filter(Boolean).join(" ");
  if (facts) parts.push(facts);
  if (m.state !== "unloaded") parts.push(`${m.in_flight} in flight`);
  parts.push(`${m.served} served`);
  if (m.tokens_per_second !== undefined) parts.push(`last ${Math.round(m.tokens_per_second)} tokens/s`);
  if (m.pinned) parts.push("pinned");
  if (m.state === "loaded") {
    if (m.unload_at) parts.push(`idle unload in ${Math.max(0, Math.round((Date.parse(m.unload_at) - now) / 1000))} s`);
    else parts.push(m.ttl_s > 0 ? "busy" : "never unloaded when idle");
  }
  return parts.join(" · ");
}

/**
 * Takes the complete SSE lines out of `buffer` and returns the text they carry (`choices[0].delta.content`),
 * what is left for the next chunk, whether `[DONE]` came, and the error an error event carried.
 * @example
 * sseDeltas('data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: [DO') // { text: "Hi", rest: "data: [DO", done: false }
 */
export function sseDeltas(buffer: string): { text: string; rest: string; done: boolean; error?: string } {
  const lines = buffer.split("\n");
  const rest = lines.pop() ?? "";
  let text = "";
  let done = false;
  let error: string | undefined;
  for (const raw of lines) {
    const line = raw.trim();
    if (!line.startsWith("data:")) continue;
    const data = line.slice(5).trim();
    if (data === "[DONE]") {
      done = true;
      continue;
    }
    try {
      const event = JSON.parse(data) as {
        choices?: { delta?: { content?: string | null } }[];
        error?: { message?: string };
      };
      if (event.error) error = event.error.message ?? "the model failed";
      text += event.choices?.[0]?.delta?.content ?? "";
    } catch {
      // a line that is not JSON carries no text
    }
  }
  return { text, rest, done, ...(error === undefined ? {} : { error }) };
}

interface Card {
  readonly item: HTMLLIElement;
  readonly summary: HTMLParagraphElement;
}

const cards = new WeakMap<HTMLElement, Map<string, Card>>();

/**
 * Shows the models, keeping each card (and its prompt box) across refreshes.
 * @example
 * renderModels(byId("models", HTMLUListElement), list.data.map((d) => d.corral), api)
 */
export function renderModels(container: HTMLElement, models: readonly GatewayModel[], api: ApiClient): void {
  let known = cards.get(container);
  if (!known) {
    known = new Map();
    cards.set(container, known);
  }
  const items: HTMLLIElement[] = [];
  for (const m of models) {
    let card = known.get(m.id);
    if (!card) {
      card = newCard(m.id, api);
      known.set(m.id, card);
    }
    card.summary.textContent = modelSummary(m);
    card.item.dataset.state = m.state;
    items.push(card.item);
  }
  for (const id of [...known.keys()]) if (!models.some((m) => m.id === id)) known.delete(id);
  container.replaceChildren(...items);
}

function newCard(id: string, api: ApiClient): Card {
  const summary = h("p", { class: "muted model-summary" });
  const input = h("input", {
    type: "text",
    name: "prompt",
    required: true,
    placeholder: "Say hello",
    autocomplete: "off",
  });
  const ask = h("button", { type: "submit" }, "Ask");
  const answer = h("output", { class: "model-answer", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "prompt", "aria-label": `Ask ${id}` },
    h("label", {}, h("span", { class: "visually-hidden" }, `Prompt for ${id}`), input),
    ask,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void stream(api, id, input.value, answer, ask);
  });
  const item = h("li", { class: "card model", "data-model": id }, h("h3", {}, id), summary, form, answer);
  return { item, summary };
}

async function stream(api: ApiClient, model: string, prompt: string, answer: HTMLElement, ask: HTMLButtonElement) {
  ask.disabled = true;
  answer.textContent = "";
  answer.dataset.state = "streaming";
  try {
    const response = await api.request("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model, stream: true, max_tokens: 64, messages: [{ role: "user", content: prompt }] }),
    });
    const reader = response.body?.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    while (reader) {
      const { done, value } = await reader.read();
      if (done) break;
      const parsed = sseDeltas(buffer + decoder.decode(value, { stream: true }));
      buffer = parsed.rest;
      answer.textContent += parsed.text;
      if (parsed.error) throw new Error(parsed.error);
    }
    answer.dataset.state = "done";
  } catch (error) {
    answer.dataset.state = "failed";
    answer.textContent += ` [${error instanceof Error ? error.message : String(error)}]`;
  } finally {
    ask.disabled = false;
  }
}
