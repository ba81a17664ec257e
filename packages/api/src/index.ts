// The public surface of @corral/api: the app (for tests and embedding) and the server (for `corral serve`).
export { type AppDeps, type CorralApp, createApp } from "./app.ts";
export { tokensMatch } from "./auth.ts";
export type { EventFeed, Logger, LogLevel, SupervisorLike } from "./deps.ts";
export { describeError, type ErrorBody, HttpError, STATUS_OF_CODE } from "./errors.ts";
export { prometheusText } from "./routes/metrics.ts";
export { consoleLogger, isLoopback, type RunningServer, type ServeOptions, serve } from "./serve.ts";
