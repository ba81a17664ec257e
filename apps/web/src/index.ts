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
