// `@corral/core/views`: every shape the REST API sends, as TypeBox schemas with their static types.
// Only TypeBox below this file, no Node or Bun API, so the page can `import type` from here and
// type-check against the DOM library alone. index.ts re-exports the same names.

export * from "./auth/views.ts";
export * from "./error-view.ts";
export * from "./lifecycle/reload-views.ts";
export * from "./lifecycle/views.ts";
export * from "./metrics/views.ts";
export * from "./placement/views.ts";
export * from "./process/views.ts";
export * from "./registry/views.ts";
export * from "./server/views.ts";
export * from "./setup/views.ts";
export * from "./store/schema.ts";
export * from "./supervision/views.ts";
