import {
  OLLAMA_COMPAT_VERSION,
  ollamaAnswer,
  ollamaChatRequest,
  ollamaEmbedAnswer,
  ollamaEmbedRequest,
  ollamaGenerateRequest,
  ollamaPs,
  ollamaShow,
  ollamaTags,
  openaiStreamComplete,
  routeRequest,
  type Translated,
} from "@corral/core";
import { Elysia } from "elysia";
import type { SupervisorLike } from "../deps.ts";
import { type GatewayRouteDeps, jsonObject, ollamaError, rawBody, untimed } from "./gateway-shared.ts";

/**
 * Ollama's API (the original controller's): `POST /api/chat`, `/api/generate`, `/api/embed`
 * (and the older `/api/embeddings`), `GET /api/tags`, `POST /api/show`, `GET /api/version`,
 * `GET /api/ps`, translated to and from llama-server's OpenAI endpoints; streams as NDJSON.
 */

type Kind = "chat" | "generate" | "embed" | "embeddings";

const TRANSLATE: Readonly<Record<Kind, (body: Record<string, unknown>) => Translated>> = {
  chat: ollamaChatRequest,
  generate: ollamaGenerateRequest,
  embed: ollamaEmbedRequest,
  embeddings: ollamaEmbedRequest,
};

/**
 * One Ollama request through the gateway.
 * @example
 * return proxyOllama(deps, request, "chat")
 */
export async function proxyOllama(deps: GatewayRouteDeps, request: Request, kind: Kind): Promise<Response> {
  const startedAt = performance.now();
  try {
    const body = jsonObject(await rawBody(request));
    const translated = TRANSLATE[kind](body);
    const model = String(body.model);
    // Ollama clients load a model with an empty generate (or chat) request: answer once it is loaded.
    const preload =
      (kind === "generate" && !body.prompt) ||
      (kind === "chat" && Array.isArray(body.messages) && body.messages.length === 0);
    if (preload) {
      const lease = await deps.gateway.acquire(body.model, { signal: request.signal });
      deps.counts.add(lease.model.id, request);
      lease.done();
      const head = kind === "chat" ? { message: { role: "assistant", content: "" } } : { response: "" };
      return Response.json({ model, created_at: new Date().toISOString(), ...head, done: true, done_reason: "load" });
    }
    const { response, lease } = await routeRequest(
      deps.gateway,
      body.model,
      {
        method: "POST",
        path: translated.path,
        headers: { "content-type": "application/json" },
        body: translated.body,
        signal: request.signal,
      },
      { complete: translated.stream ? openaiStreamComplete : undefined },
    );
    deps.counts.add(lease.model.id, request);
    if (kind === "embed" || kind === "embeddings")
      return await ollamaEmbedAnswer(response, model, kind === "embeddings");
    return await ollamaAnswer(response, { kind, model, startedAt, loadMs: lease.waitedMs });
  } catch (error) {
    return ollamaError(error);
  }
}

/**
 * The Ollama route plugin.
 * @example
 * app.use(gatewayOllamaRoutes({ gateway, counts, supervisor }))
 */
export function gatewayOllamaRoutes(deps: GatewayRouteDeps & { readonly supervisor: SupervisorLike | undefined }) {
  const { gateway } = deps;
  const models = () => gateway.config.models;
  const app = new Elysia({ detail: { tags: ["ollama"] } })
    .get("/api/version", () => ({ version: OLLAMA_COMPAT_VERSION }), {
      detail: { summary: "Ollama: the API version corral speaks" },
    })
    .get("/api/tags", () => ollamaTags(models()), { detail: { summary: "Ollama: every configured model" } })
    .get(
      "/api/ps",
      async () => {
        const [views, statuses] = await Promise.all([
          gateway.models(),
          deps.supervisor ? deps.supervisor.statuses(5000) : gateway.controller.status(),
        ]);
        return ollamaPs(models(), views, statuses);
      },
      { detail: { summary: "Ollama: the loaded models, with their GPU memory and unload time" } },
    )
    .post(
      "/api/show",
      async ({ request }) => {
        try {
          const body = jsonObject(await rawBody(request));
          return Response.json(await ollamaShow(gateway.resolver.resolve(body.model ?? body.name)));
        } catch (error) {
          return ollamaError(error);
        }
      },
      { parse: "none", detail: { summary: "Ollama: what corral knows of a model" } },
    );
  for (const kind of ["chat", "generate", "embed", "embeddings"] as const) {
    app.post(`/api/${kind}`, ({ request, server }) => proxyOllama(deps, untimed(request, server), kind), {
      parse: "none",
      detail: { summary: `Ollama: ${kind}, translated to llama-server's OpenAI endpoint` },
    });
  }
  return app;
}
