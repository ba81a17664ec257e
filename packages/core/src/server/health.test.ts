import { afterEach, describe, expect, it } from "bun:test";
import { checkHealth, fetchProps, notProbed, probeHost, serverUrl, statusOfHealth, waitReady } from "./health.ts";

type Server = ReturnType<typeof Bun.serve>;
const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop(true);
});

/** A real HTTP server whose answers the test scripts. `requests` counts /health hits. */
function serve(handler: (url: URL, count: number) => Response | Promise<Response>) {
  const hits = { health: 0 };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      const url = new URL(request.url);
      if (url.pathname === "/health") hits.health++;
      return handler(url, hits.health);
    },
  });
  servers.push(server);
  return { port: server.port as number, hits };
}

const ok = () => Response.json({ status: "ok" });
const loading = () =>
  Response.json({ error: { code: 503, message: "Loading model", type: "unavailable_error" } }, { status: 503 });

/** A port nothing listens on: bound by a server that is then stopped. */
async function closedPort(): Promise<number> {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = server.port as number;
  await server.stop(true);
  return port;
}

describe("checkHealth", () => {
  it("reports ok for 200 with status ok", async () => {
    const { port } = serve(ok);
    expect(await checkHealth({ host: "127.0.0.1", port })).toMatchObject({ ok: true, state: "ok", httpStatus: 200 });
  });

  it("reports loading for 503 with llama-server's message", async () => {
    const { port } = serve(loading);
    expect(await checkHealth({ host: "127.0.0.1", port })).toMatchObject({
      ok: false,
      state: "loading",
      httpStatus: 503,
      error: "Loading model",
    });
  });

  it("reports error for other statuses and for a 200 that is not llama-server's", async () => {
    const { port } = serve((url) =>
      url.searchParams.size ? new Response("boom", { status: 500 }) : new Response("<html>"),
    );
    expect(await checkHealth({ host: "127.0.0.1", port })).toMatchObject({
      ok: false,
      state: "error",
      httpStatus: 200,
    });
    const fetch500 = ((input: string) => globalThis.fetch(`${input}?x=1`)) as typeof fetch;
    expect(await checkHealth({ host: "127.0.0.1", port, fetch: fetch500 })).toMatchObject({
      ok: false,
      state: "error",
      httpStatus: 500,
      error: "HTTP 500",
    });
  });

  it("reports unreachable when nothing listens, without throwing", async () => {
    const health = await checkHealth({ host: "127.0.0.1", port: await closedPort() });
    expect(health).toMatchObject({ ok: false, state: "unreachable" });
    expect(health.error).toBeString();
  });

  it("reports unreachable when the server does not answer in time", async () => {
    const { port } = serve(() => new Promise<Response>(() => {}));
    const health = await checkHealth({ host: "127.0.0.1", port, timeoutMs: 100 });
    expect(health).toMatchObject({ ok: false, state: "unreachable", error: "no answer within 100 ms" });
  });

  it("reports unreachable when the injected fetch throws", async () => {
    const failing = (() => Promise.reject(new Error("socket hang up"))) as unknown as typeof fetch;
    expect(await checkHealth({ host: "10.0.0.1", port: 1, fetch: failing })).toMatchObject({
      state: "unreachable",
      error: "socket hang up",
    });
  });
});

describe("fetchProps", () => {
  it("returns the model path llama-server reports", async () => {
    const { port } = serve((url) =>
      url.pathname === "/props" ? Response.json({ model_path: "/m/qwen.gguf", n_ctx: 4096 }) : ok(),
    );
    expect(await fetchProps({ host: "127.0.0.1", port })).toEqual({ model_path: "/m/qwen.gguf" });
  });

  it("returns undefined when /props is missing or nothing listens", async () => {
    const { port } = serve(() => new Response("not found", { status: 404 }));
    expect(await fetchProps({ host: "127.0.0.1", port })).toBeUndefined();
    expect(await fetchProps({ host: "127.0.0.1", port: await closedPort() })).toBeUndefined();
  });
});

describe("waitReady", () => {
  it("notices the first 200 after a run of 503s", async () => {
    const { port, hits } = serve((_url, count) => (count <= 3 ? loading() : ok()));
    const result = await waitReady({ host: "127.0.0.1", port, timeoutMs: 10_000 });
    expect(result.ready).toBe(true);
    // Ready was seen on the very poll that first answered 200, not later.
    expect(hits.health).toBe(4);
  });

  it("keeps polling while nothing listens yet, then sees the server come up", async () => {
    const port = await closedPort();
    let polls = 0;
    // The server comes up only after two polls found nothing listening.
    const counting: typeof fetch = Object.assign(
      (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
        if (++polls === 3) servers.push(Bun.serve({ hostname: "127.0.0.1", port, fetch: ok }));
        return fetch(input, init);
      },
      { preconnect: fetch.preconnect },
    );
    expect((await waitReady({ host: "127.0.0.1", port, timeoutMs: 10_000, fetch: counting })).ready).toBe(true);
    expect(polls).toBeGreaterThanOrEqual(3);
  });

  it("stops with the exit code when the process exits while loading", async () => {
    const { port } = serve(loading);
    const child = Bun.spawn([process.execPath, "-e", "setTimeout(() => process.exit(3), 50)"]);
    const result = await waitReady({ host: "127.0.0.1", port, timeoutMs: 10_000, exited: child.exited });
    expect(result).toMatchObject({ ready: false, reason: "exited", exitCode: 3 });
  });

  it("stops with reason timeout when the server stays loading", async () => {
    const { port, hits } = serve(loading);
    const result = await waitReady({ host: "127.0.0.1", port, timeoutMs: 200 });
    expect(result).toMatchObject({ ready: false, reason: "timeout" });
    expect(hits.health).toBeGreaterThan(1);
  });

  it("stops with reason aborted when the signal aborts", async () => {
    const { port } = serve(loading);
    const result = await waitReady({ host: "127.0.0.1", port, timeoutMs: 10_000, signal: AbortSignal.timeout(100) });
    expect(result).toMatchObject({ ready: false, reason: "aborted" });
  });

  it("stops polling once it has returned", async () => {
    const { port } = serve(loading);
    let returned = false;
    let late = 0;
    const counting: typeof fetch = Object.assign(
      (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
        if (returned) late++;
        return fetch(input, init);
      },
      { preconnect: fetch.preconnect },
    );
    await waitReady({ host: "127.0.0.1", port, timeoutMs: 100, intervalMs: 10, fetch: counting });
    returned = true;
    // Ten poll intervals with no poll started: not a wait for something to happen, a window in which nothing may.
    await Bun.sleep(100);
    expect(late).toBe(0);
  });
});

describe("where corral sends a server's requests", () => {
  it("writes one URL form, with brackets for IPv6 literals", () => {
    expect(serverUrl("127.0.0.1", 8081)).toBe("http://127.0.0.1:8081");
    expect(serverUrl("::1", 8081, "/health")).toBe("http://[::1]:8081/health");
    expect(serverUrl("[::1]", 8081, "/slots")).toBe("http://[::1]:8081/slots");
  });

  it("probes only the configured host or loopback; a server listening elsewhere is reported, not probed", () => {
    expect(probeHost(undefined, "127.0.0.1")).toBe("127.0.0.1");
    expect(probeHost("0.0.0.0", "127.0.0.1")).toBe("127.0.0.1");
    expect(probeHost("0.0.0.0", "0.0.0.0")).toBe("127.0.0.1");
    expect(probeHost("::1", "127.0.0.1")).toBe("::1");
    expect(probeHost("localhost", "127.0.0.1")).toBe("localhost");
    expect(probeHost("10.1.2.3", "10.1.2.3")).toBe("10.1.2.3");
    expect(probeHost("10.1.2.3", "127.0.0.1")).toBeUndefined();
    expect(probeHost("metadata.internal", "127.0.0.1")).toBeUndefined();
    expect(notProbed("10.1.2.3")).toMatchObject({ ok: false, state: "error", ms: 0 });
    expect(notProbed("10.1.2.3").error).toContain("not probed");
  });

  it("maps /health to the registry status the same way everywhere", () => {
    expect(statusOfHealth({ state: "ok" })).toBe("running");
    expect(statusOfHealth({ state: "loading" })).toBe("loading");
    expect(statusOfHealth({ state: "error" })).toBe("unhealthy");
    expect(statusOfHealth({ state: "unreachable" })).toBe("unhealthy");
  });
});
