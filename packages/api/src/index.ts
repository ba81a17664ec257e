// The public surface of @corral/api: the app (for tests and embedding) and the server (for `corral serve`).
export { createApp, type AppDeps, type CorralApp } from "./app.ts";
export { serve, isLoopback, consoleLogger, type ServeOptions, type RunningServer } from "./serve.ts";
export { describeError, HttpError, STATUS_OF_CODE, type ErrorBody } from "./errors.ts";
export { tokensMatch } from "./auth.ts";
export { prometheusText } from "./routes/metrics.ts";
export type { EventFeed, Logger, LogLevel, SupervisorLike } from "./deps.ts";
