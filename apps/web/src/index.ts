/**
 * The corral web page, for the API server to mount. Bun's HTML import bundles the page's
 * TypeScript and CSS on the fly when the server first serves it: no build step, no CDN.
 *
 * Mount it through `Bun.serve`'s `routes` (Elysia: `new Elysia({ serve: { routes: webRoutes() } })`),
 * not `.get("/", indexHtml)`: Elysia 1.4 only serves an HTML bundle natively when the app has no
 * `onRequest` hook, and answers `{}` otherwise. See apps/web/README.md.
 */
import indexHtml from "./index.html";

export { indexHtml };

/** Options of {@link webRoutes}. */
export interface WebRoutesOptions {
  /** the path the page is served at @default "/" */
  readonly path?: string;
}

/**
 * The page as a `routes` object for `Bun.serve` (Elysia passes `serve.routes` through). Bun adds
 * the routes of the bundled scripts and styles itself.
 * @default { "/": indexHtml }
 * @example
 * const app = new Elysia({ serve: { development: false, routes: webRoutes() } })
 * @example
 * Bun.serve({ port: 7070, development: false, routes: { ...webRoutes(), "/api/v1/*": api.fetch } })
 */
export function webRoutes(options: WebRoutesOptions = {}): Record<string, Bun.HTMLBundle> {
  const { path = "/" } = options;
  return { [path]: indexHtml };
}

/**
 * Headers the page and its files are sent with: no framing (clickjacking), scripts, styles and
 * connections only from this server, no MIME sniffing, no Referer (the address may hold a token
 * for a moment before the page drops it).
 * @example
 * new Response(html, { headers: PAGE_SECURITY_HEADERS })
 */
export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  // data: images for the blank favicon (`<link rel="icon" href="data:,">`), which holds nothing.
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/**
 * The page bundled once with `Bun.build` (the same bundler the HTML import uses) and served as
 * ready responses that carry {@link PAGE_SECURITY_HEADERS}: `Bun.serve` sends an HTML import's
 * files with headers of its own choosing, and those cannot be changed. Scripts and styles are
 * separate files (nothing inline), so the strict policy holds.
 * @default options.path = "/"
 * @example
 * Bun.serve({ port: 7070, routes: { ...(await pageRoutes()), "/api/v1/*": api.fetch } })
 */
export async function pageRoutes(options: WebRoutesOptions = {}): Promise<Record<string, Response>> {
  const { path = "/" } = options;
  const built = await Bun.build({
    entrypoints: [Bun.fileURLToPath(new URL("./index.html", import.meta.url))],
    target: "browser",
    minify: true,
  });
  if (!built.success) throw new AggregateError(built.logs, "bundling the web page failed");
  const routes: Record<string, Response> = {};
  for (const output of built.outputs) {
    const name = output.path.replace(/^\.\//, "");
    const headers = { ...PAGE_SECURITY_HEADERS, "content-type": output.type, "cache-control": "no-cache" };
    routes[name === "index.html" ? path : `/${name}`] = new Response(await output.arrayBuffer(), { headers });
  }
  return routes;
}
