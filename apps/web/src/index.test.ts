import { afterAll, describe, expect, it } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { indexHtml, PAGE_SECURITY_HEADERS, pageRoutes, webRoutes } from "./index.ts";

// Served as the API will serve it: Bun.serve's routes, production mode (bundled once, no HMR).
const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  development: false,
  routes: webRoutes(),
  fetch: () => new Response("not the page", { status: 404 }),
});
afterAll(() => server.stop(true));
const base = `http://127.0.0.1:${server.port}`;

async function page() {
  const res = await fetch(`${base}/`);
  const html = await res.text();
  const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)]
    .map((m) => m[1] ?? "")
    .filter((u) => !u.startsWith("data:"));
  return { res, html, assets };
}

describe("webRoutes", () => {
  it("maps / to the HTML bundle", () => {
    expect(webRoutes()).toEqual({ "/": indexHtml });
    expect(webRoutes({ path: "/ui" })).toEqual({ "/ui": indexHtml });
  });

  it("serves the page with its bundled script and stylesheet", async () => {
    const { res, html, assets } = await page();
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(html).toContain('id="processes-body"');
    expect(assets.some((a) => a.endsWith(".js"))).toBe(true);
    expect(assets.some((a) => a.endsWith(".css"))).toBe(true);
  });

  it("needs nothing from another host (the machines are often offline)", async () => {
    const { html, assets } = await page();
    const bodies = [html];
    for (const asset of assets) {
      expect(asset.startsWith("/")).toBe(true);
      const res = await fetch(new URL(asset, base));
      expect(res.status).toBe(200);
      bodies.push(await res.text());
    }
    for (const body of bodies)
      expect(body).not.toMatch(/(?:src|href)=["']?https?:|@import\s+url\(["']?https?:|from\s*["']https?:/);
  });

  it("bundles the TypeScript: the browser gets no TypeScript-only syntax or bare imports", async () => {
    const { assets } = await page();
    const js = await (await fetch(new URL(assets.find((a) => a.endsWith(".js")) ?? "/missing", base))).text();
    expect(js).toContain("/api/v1/processes");
    expect(js).not.toMatch(/^\s*import\s.+from\s+["'][^./]/m);
    expect(js).not.toContain("import type");
  });

  it("bundles no server code: core's types leave nothing behind, and no package or Node/Bun module comes in", async () => {
    const client = join(import.meta.dir, "client");
    const importers = readdirSync(client).filter((f) =>
      /^import type \{[^}]+\} from "@corral\/core\/views";$/m.test(readFileSync(join(client, f), "utf8")),
    );
    expect(importers.length).toBeGreaterThan(3);
    const build = await Bun.build({ entrypoints: [join(import.meta.dir, "index.html")], metafile: true });
    expect(build.success).toBe(true);
    const meta = build.metafile?.inputs ?? {};
    const inputs = Object.keys(meta).map((input) => relative(import.meta.dir, resolve(input)));
    expect(inputs).toContain(join("client", "main.ts"));
    // Plain TypeScript of this page, or a pure module of core it imports on purpose, or the one chart
    // library the page bundles (uPlot: its module and its stylesheet); no other package.
    const core = join("..", "..", "..", "packages", "core", "src");
    const uplot = /\/node_modules\/uplot\/dist\/uPlot\.(esm\.js|min\.css)$/;
    expect(inputs.filter((input) => input.startsWith("..") && !input.startsWith(core) && !uplot.test(input))).toEqual(
      [],
    );
    expect(inputs.filter((input) => uplot.test(input))).toHaveLength(2);
    const imported = Object.values(meta).flatMap((input) => input.imports.map((i) => i.path));
    expect(imported.filter((path) => /^(node:|bun(:|$))/.test(path))).toEqual([]);
    const js = await Promise.all(build.outputs.filter((o) => o.path.endsWith(".js")).map((o) => o.text()));
    expect(js.join("\n")).not.toContain("TypeBox");
  });
});

describe("pageRoutes", () => {
  it("serves the bundled page and every file of it with the security headers, and nothing inline", async () => {
    const routes = await pageRoutes();
    const secure = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      development: false,
      routes,
      fetch: () => new Response(null, { status: 404 }),
    });
    try {
      const res = await fetch(`http://127.0.0.1:${secure.port}/`);
      const html = await res.text();
      const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)]
        .map((m) => m[1] ?? "")
        .filter((u) => !u.startsWith("data:"));
      expect(assets.length).toBeGreaterThanOrEqual(2);
      // A strict CSP refuses inline scripts and styles: everything must be a file of this server.
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toContain("<style");
      for (const url of ["/", ...assets]) {
        const r = await fetch(new URL(url, `http://127.0.0.1:${secure.port}/`));
        expect({ url, status: r.status }).toEqual({ url, status: 200 });
        for (const [name, value] of Object.entries(PAGE_SECURITY_HEADERS)) expect(r.headers.get(name)).toBe(value);
        await r.arrayBuffer();
      }
      expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    } finally {
      secure.stop(true);
    }
  });
});
