import { afterAll, describe, expect, it } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, PortInUseError } from "@corral/core";
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
  it("makes a token on its first start (<home>/token, 0600), reuses it, and prints the page's link with it", async () => {
    const own = mkdtempSync(join(tmpdir(), "corral-serve-token-"));
    try {
      const lines: string[] = [];
      const first = await serve({ home: own, port: 0, env: {}, handleSignals: false, logger: (_, l) => lines.push(l) });
      const token = readFileSync(join(own, "token"), "utf8").trim();
      try {
        expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(statSync(join(own, "token")).mode & 0o777).toBe(0o600);
        expect(first.pageUrl).toBe(`${first.url.href}#token=${token}`);
        expect((await fetch(new URL("/api/v1/processes", first.url))).status).toBe(401);
        const ok = await fetch(new URL("/api/v1/processes", first.url), {
          headers: { authorization: `Bearer ${token}` },
        });
        expect(ok.status).toBe(200);
        expect(lines.join("\n")).not.toContain(token); // the log never holds the secret
      } finally {
        await first.stop();
      }
      const second = await serve({ home: own, port: 0, env: {}, handleSignals: false, logger: () => undefined });
      await second.stop();
      expect(second.pageUrl).toEndWith(`#token=${token}`);
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  it('refuses auth: none on a non-loopback address, and cors "*" without a token', async () => {
    const quiet = { home, port: 0, env: {}, handleSignals: false, logger: () => undefined } as const;
    const open = await serve({ ...quiet, host: "0.0.0.0", auth: "none" }).catch((e) => e);
    expect(open).toBeInstanceOf(ConfigError);
    expect(open.key).toBe("server.auth");
    const star = mkdtempSync(join(tmpdir(), "corral-serve-star-"));
    try {
      writeFileSync(join(star, "corral.yaml"), 'server: { cors: ["*"] }\n');
      const error = await serve({ ...quiet, home: star, auth: "none" }).catch((e) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect(error.key).toBe("server.cors");
    } finally {
      rmSync(star, { recursive: true, force: true });
    }
  });

  it("warns when corral.yaml holds a token and others can read it", async () => {
    const own = mkdtempSync(join(tmpdir(), "corral-serve-yaml-"));
    try {
      const file = join(own, "corral.yaml");
      writeFileSync(file, "server: { token: s3cret-of-mine }\n", { mode: 0o644 });
      chmodSync(file, 0o644);
      const lines: string[] = [];
      const server = await serve({
        home: own,
        port: 0,
        env: {},
        handleSignals: false,
        logger: (l, t) => lines.push(`${l} ${t}`),
      });
      await server.stop();
      expect(lines.some((l) => l.startsWith("warn ") && l.includes(`chmod 600 ${file}`))).toBe(true);
      chmodSync(file, 0o600);
      const quiet: string[] = [];
      const again = await serve({
        home: own,
        port: 0,
        env: {},
        handleSignals: false,
        logger: (l, t) => quiet.push(`${l} ${t}`),
      });
      await again.stop();
      expect(quiet.some((l) => l.includes("chmod 600"))).toBe(false);
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  it("with auth: none on loopback answers without a token, and still refuses foreign pages", async () => {
    const server = await serve({ home, port: 0, env: {}, handleSignals: false, logger: () => undefined, auth: "none" });
    try {
      expect(server.pageUrl).toBe(server.url.href);
      expect((await fetch(new URL("/api/v1/processes", server.url))).status).toBe(200);
      const csrf = await fetch(new URL("/api/v1/cleanup-orphaned?force=true", server.url), {
        method: "POST",
        headers: { origin: "http://evil.example" },
      });
      expect(csrf.status).toBe(403);
    } finally {
      await server.stop();
    }
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
