// The public surface of @corral/core: the one place other packages import from. Folders are concepts
// (see ARCHITECTURE.md); this file only re-exports, lowest layer first.
export * from "./errors.ts";
export * from "./paths.ts";
export * from "./slots.ts";

// Every response shape of the API (TypeBox schemas and their types), also `@corral/core/views`.
export * from "./views.ts";

export * from "./store/store.ts";
export * from "./store/history.ts";
export * from "./store/lock.ts";
export * from "./store/secure-fs.ts";

export * from "./auth/scopes.ts";
export * from "./auth/tokens.ts";

export * from "./process/types.ts";
export * from "./process/probe.ts";
export * from "./process/identity.ts";
export * from "./process/kill-tree.ts";
export * from "./process/orphans.ts";
export * from "./process/usage.ts";

export * from "./registry/registry.ts";
export * from "./registry/kill-policy.ts";

export * from "./config/load.ts";

export * from "./server/ports.ts";
export * from "./server/health.ts";
export * from "./server/logs.ts";
export * from "./server/gpu.ts";
export * from "./server/gpu-view.ts";
export * from "./server/spawn.ts";

export type * from "./lifecycle/types.ts";
export * from "./lifecycle/controller.ts";
export * from "./lifecycle/adopt.ts";
export * from "./lifecycle/recover.ts";
export * from "./lifecycle/status.ts";
export type * from "./lifecycle/context.ts";
export * from "./lifecycle/kill.ts";
export * from "./lifecycle/load.ts";
export * from "./lifecycle/port-choice.ts";
export * from "./lifecycle/unload.ts";

export * from "./placement/facts.ts";
export * from "./placement/ggml-types.ts";
export * from "./placement/args.ts";
export * from "./placement/estimate.ts";
export * from "./placement/gpu-state.ts";
export * from "./placement/fit.ts";
export * from "./placement/pick.ts";
export * from "./placement/errors.ts";
export * from "./placement/learned.ts";
export * from "./placement/check.ts";
export * from "./placement/views.ts";
export * from "./placement/room.ts";

export * from "./supervision/alerts.ts";
export * from "./supervision/watch-rules.ts";
export * from "./supervision/supervisor.ts";

export * from "./gateway/errors.ts";
export * from "./gateway/resolve.ts";
export * from "./gateway/gateway.ts";
export * from "./gateway/proxy.ts";
export * from "./gateway/route.ts";
export * from "./gateway/ollama.ts";
export * from "./gateway/ollama-views.ts";
