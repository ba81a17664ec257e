import { afterAll, describe, expect, it } from "bun:test";
import { ConfigError, PortInUseError } from "@corral/core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import page from "../test/fixtures/page.html";
import { isLoopback, serve } from "./serve.ts";

const home = mkdtempSync(join(tmpdir(), "corral-serve-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe("isLoopback", () => {
  it("accepts only addresses that never leave the machine", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"]) expect(isLoopback(host)).toBe(true);
    for (const host of ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", "128.0.0.1"])
      expect(isLoopback(host)).toBe(false);
  });
});

describe("serve", () => {
  it("refuses to listen on a non-loopback address without a token, and says how to set one", async () => {
    const error = await serve({
      home,
      host: "0.0.0.0",
      port: 0,
      env: {},
      handleSignals: false,
      logger: () => undefined,
    }).catch((e) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.key).toBe("server.token");
    expect(error.message).toContain("CORRAL_TOKEN");
    expect(error.message).toContain("server");
  });

  it("listens on a loopback port, serves the page it is given and health, and stops cleanly", async () => {
    const lines: string[] = [];
    const logger = (_: string, line: string) => lines.push(line);
    const server = await serve({ home, port: 0, env: {}, handleSignals: false, logger, page: { "/": page } });
    try {
      expect(server.url.hostname).toBe("127.0.0.1");
      const res = await fetch(new URL("/api/v1/health", server.url));
      expect(res.status).toBe(200);
      expect(lines[0]).toContain(`listening on ${server.url.href}`);
      const html = await fetch(server.url);
      expect(html.status).toBe(200);
      expect(html.headers.get("content-type")).toContain("text/html");
      expect(await html.text()).toContain("<title>page fixture</title>");
      // The request line is written once the response has gone out.
      for (let i = 0; i < 100 && !lines.some((l) => l.startsWith("GET /api/v1/health 200")); i++) await Bun.sleep(10);
      expect(lines.some((l) => l.startsWith("GET /api/v1/health 200"))).toBe(true);
    } finally {
      await server.stop();
    }
    expect(await fetch(new URL("/api/v1/health", server.url)).catch(() => "refused")).toBe("refused");
  });

  it("serves the OpenAPI page with Swagger UI from itself, never from a CDN", async () => {
    const server = await serve({ home, port: 0, env: {}, handleSignals: false, logger: () => undefined });
    try {
      const html = await (await fetch(new URL("/openapi", server.url))).text();
      const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
      expect(refs.length).toBeGreaterThanOrEqual(2);
      for (const ref of refs) {
        expect(ref.startsWith("/")).toBe(true);
        const asset = await fetch(new URL(ref, server.url));
        expect(asset.status).toBe(200);
        expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
      }
      const spec = (await (await fetch(new URL("/openapi/json", server.url))).json()) as {
        paths: Record<string, unknown>;
      };
      expect(Object.keys(spec.paths)).toContain("/api/v1/processes");
    } finally {
      await server.stop();
    }
  });

  it("takes the token from CORRAL_TOKEN and then requires it on every route but health", async () => {
    const server = await serve({
      home,
      host: "127.0.0.1",
      port: 0,
      env: { CORRAL_TOKEN: "t0ken" },
      handleSignals: false,
      logger: () => undefined,
    });
    try {
      expect((await fetch(new URL("/api/v1/processes", server.url))).status).toBe(401);
      expect((await fetch(new URL("/api/v1/health", server.url))).status).toBe(200);
      const ok = await fetch(new URL("/api/v1/processes", server.url), { headers: { authorization: "Bearer t0ken" } });
      expect(ok.status).toBe(200);
    } finally {
      await server.stop();
    }
  });

  it("says which process holds the port when it is taken", async () => {
    const holder = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("taken") });
    try {
      const error = await serve({
        home,
        port: holder.port,
        env: {},
        handleSignals: false,
        logger: () => undefined,
      }).catch((e) => e);
      expect(error).toBeInstanceOf(PortInUseError);
      expect(error.port).toBe(holder.port);
      expect(error.pid).toBe(process.pid);
    } finally {
      holder.stop(true);
    }
  });
});
