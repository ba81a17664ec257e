import { type Gateway, type GatewayModelView, openaiStreamComplete, routeRequest } from "@corral/core";
import { Elysia } from "elysia";
import { type GatewayRouteDeps, jsonObject, openaiError, rawBody, untimed } from "./gateway-shared.ts";

/**
 * The OpenAI-compatible routes: `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
 * `/v1/rerank` go to the llama-server of the model the body names (loaded on demand); the body
 * is forwarded as it came and the answer (a stream included) passed back as llama-server sent it.
 * `GET /v1/models` lists every configured model with corral's state in an extra `corral` field.
 */

/**
 * `GET /v1/models` in OpenAI's list shape.
 * @example
 * openaiModelList(await gateway.models()).data[0] // { id: "qwen", object: "model", owned_by: "corral", corral: { state: "loaded", … } }
 */
export function openaiModelList(views: readonly GatewayModelView[]) {
  return {
    object: "list" as const,
    data: views.map((v) => ({ id: v.id, object: "model" as const, created: 0, owned_by: "corral", corral: v })),
  };
}

/**
 * Forwards one OpenAI request to its model's llama-server.
 * @example
 * return proxyOpenAI(deps, request, "/v1/chat/completions")
 */
export async function proxyOpenAI(deps: GatewayRouteDeps, request: Request, path: string): Promise<Response> {
  try {
    const raw = await rawBody(request);
    const body = jsonObject(raw);
    const { response, lease } = await routeRequest(
      deps.gateway,
      body.model,
      { method: "POST", path, headers: request.headers, body: raw, signal: request.signal },
      { complete: body.stream === true ? openaiStreamComplete : undefined },
    );
    deps.counts.add(lease.model.id, request);
    return response;
  } catch (error) {
    return openaiError(error);
  }
}

const PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/rerank"] as const;
const SUMMARY: Readonly<Record<(typeof PATHS)[number], string>> = {
  "/v1/chat/completions": "OpenAI chat completion (streaming with `stream: true`), routed by `model`",
  "/v1/completions": "OpenAI text completion, routed by `model`",
  "/v1/embeddings": "OpenAI embeddings (the model needs `--embeddings`), routed by `model`",
  "/v1/rerank": "Rerank (the model needs `--reranking`), routed by `model`",
};

/**
 * The OpenAI route plugin.
 * @example
 * app.use(gatewayOpenAIRoutes({ gateway, counts: new GatewayCounts() }))
 */
export function gatewayOpenAIRoutes(deps: GatewayRouteDeps & { readonly gateway: Gateway }) {
  const app = new Elysia({ detail: { tags: ["gateway"] } }).get(
    "/v1/models",
    async () => openaiModelList(await deps.gateway.models()),
    { detail: { summary: "Every configured model, loaded or not, with corral's state in `corral`" } },
  );
  for (const path of PATHS) {
    app.post(path, ({ request, server }) => proxyOpenAI(deps, untimed(request, server), path), {
      parse: "none",
      detail: { summary: SUMMARY[path] },
    });
  }
  return app;
}
