import { afterAll, describe, expect, it } from "bun:test";
import { ApiError, createApiClient, errorOf, TOKEN_KEY, type TokenStore, takeTokenFromFragment } from "./api.ts";

/** A plain-object sessionStorage. */
function memoryStore(initial: Record<string, string> = {}): TokenStore & { data: Record<string, string> } {
  const data = { ...initial };
  return {
    data,
    getItem: (k) => data[k] ?? null,
    setItem: (k, v) => {
      data[k] = v;
    },
    removeItem: (k) => void delete data[k],
  };
}

// A real server that wants "Bearer s3cret" and answers in the API's error format.
const seen: Array<{ auth: string | null; body: string; method: string }> = [];
const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  async fetch(req) {
    const body = await req.text();
    seen.push({ auth: req.headers.get("authorization"), body, method: req.method });
    if (req.headers.get("authorization") !== "Bearer s3cret") {
      return Response.json({ error: { code: "UNAUTHORIZED", message: "a bearer token is required" } }, { status: 401 });
    }
    const path = new URL(req.url).pathname;
    if (path === "/conflict")
      return Response.json({ error: { code: "SLOT_IN_USE", message: "slot 0 is held by qwen" } }, { status: 409 });
    if (path === "/empty") return new Response(null, { status: 204 });
    return Response.json({ ok: true, echo: body ? JSON.parse(body) : null });
  },
});
afterAll(() => server.stop(true));
const base = `http://127.0.0.1:${server.port}`;

describe("createApiClient", () => {
  it("sends the stored token as a bearer header and JSON bodies", async () => {
    const api = createApiClient({ base, storage: memoryStore({ [TOKEN_KEY]: "s3cret" }) });
    expect(await api.post("/load", { model_id: "q", gpu_id: 0 })).toEqual({
      ok: true,
      echo: { model_id: "q", gpu_id: 0 },
    });
    expect(seen.at(-1)).toMatchObject({ auth: "Bearer s3cret", method: "POST" });
  });

  it("asks once for a token when concurrent calls get 401, keeps it and retries them", async () => {
    const storage = memoryStore();
    const prompts: string[] = [];
    const api = createApiClient({
      base,
      storage,
      askToken: async (m) => {
        prompts.push(m);
        return " s3cret ";
      },
    });
    const results = await Promise.all([api.get("/a"), api.get("/b"), api.del("/c")]);
    expect(results.every((r) => (r as { ok: boolean }).ok)).toBe(true);
    expect(prompts).toEqual(["a bearer token is required"]);
    expect(storage.data[TOKEN_KEY]).toBe("s3cret");
  });

  it("forgets a refused token and says so in the prompt", async () => {
    const storage = memoryStore({ [TOKEN_KEY]: "wrong" });
    const prompts: string[] = [];
    const api = createApiClient({
      base,
      storage,
      askToken: async (m) => {
        prompts.push(m);
        return undefined;
      },
    });
    const error = await api.get("/a").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 401, code: "UNAUTHORIZED", message: "a bearer token is required" });
    expect(prompts).toEqual(["The token was refused: a bearer token is required"]);
    expect(storage.data[TOKEN_KEY]).toBeUndefined();
  });

  it("throws the API's own code and message for other failures", async () => {
    const api = createApiClient({ base, storage: memoryStore({ [TOKEN_KEY]: "s3cret" }) });
    expect(await api.post("/conflict").catch((e: unknown) => e)).toMatchObject({
      status: 409,
      code: "SLOT_IN_USE",
      message: "slot 0 is held by qwen",
    });
  });

  it("returns undefined for an empty body", async () => {
    const api = createApiClient({ base, storage: memoryStore({ [TOKEN_KEY]: "s3cret" }) });
    expect(await api.del("/empty")).toBeUndefined();
  });
});

describe("errorOf", () => {
  it("names the field of an Elysia validation error", async () => {
    const res = Response.json(
      { type: "validation", on: "body", property: "/gpu_id", summary: "Expected integer" },
      { status: 422 },
    );
    expect(await errorOf(res)).toMatchObject({ status: 422, code: "HTTP_422", message: "gpu_id: Expected integer" });
  });

  it("uses plain text bodies and falls back to the status line", async () => {
    expect((await errorOf(new Response("upstream down", { status: 502 }))).message).toBe("upstream down");
    expect((await errorOf(new Response("", { status: 500, statusText: "Internal Server Error" }))).message).toBe(
      "500 Internal Server Error",
    );
  });

  it("reads a string error field", async () => {
    expect((await errorOf(Response.json({ error: "model not found" }, { status: 404 }))).message).toBe(
      "model not found",
    );
  });
});

describe("takeTokenFromFragment", () => {
  it("stores the token of the printed link and drops it from the address bar, keeping the rest", () => {
    const storage = memoryStore();
    const replaced: string[] = [];
    const history = {
      replaceState: (_: unknown, __: string, url?: string | URL | null) => void replaced.push(String(url)),
    };
    const found = takeTokenFromFragment(
      { hash: "#token=abc_DEF-123&panel=logs", pathname: "/", search: "?x=1" },
      history,
      storage,
    );
    expect(found).toBe(true);
    expect(storage.data[TOKEN_KEY]).toBe("abc_DEF-123");
    expect(replaced).toEqual(["/?x=1#panel=logs"]);
  });

  it("leaves the address and the stored token alone without a token in the fragment", () => {
    const storage = memoryStore({ [TOKEN_KEY]: "kept" });
    const replaced: string[] = [];
    const history = {
      replaceState: (_: unknown, __: string, url?: string | URL | null) => void replaced.push(String(url)),
    };
    expect(takeTokenFromFragment({ hash: "", pathname: "/", search: "" }, history, storage)).toBe(false);
    expect(storage.data[TOKEN_KEY]).toBe("kept");
    expect(replaced).toEqual([]);
  });
});
