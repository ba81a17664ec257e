import { fileURLToPath } from "node:url";

/** Where the OpenAPI page loads Swagger UI from: this server, never a CDN (the machines are often offline). */
export const SWAGGER_ASSETS = {
  script: "/openapi/assets/swagger-ui-bundle.js",
  style: "/openapi/assets/swagger-ui.css",
} as const;

/**
 * Bun.serve routes for Swagger UI's script and stylesheet, straight from the `swagger-ui-dist`
 * package. Like the web page, they hold no data, so they are served without the token.
 * @example
 * new Elysia({ serve: { routes: { ...webRoutes(), ...openapiAssetRoutes() } } })
 */
export function openapiAssetRoutes(): Record<string, Response> {
  const file = (name: string) => fileURLToPath(import.meta.resolve(`swagger-ui-dist/${name}`));
  return {
    [SWAGGER_ASSETS.script]: new Response(Bun.file(file("swagger-ui-bundle.js")), {
      headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "public, max-age=86400" },
    }),
    [SWAGGER_ASSETS.style]: new Response(Bun.file(file("swagger-ui.css")), {
      headers: { "content-type": "text/css; charset=utf-8", "cache-control": "public, max-age=86400" },
    }),
  };
}
