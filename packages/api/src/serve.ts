import {
  type AutostartOutcome,
  autostartModels,
  ConfigError,
  type Controller,
  createController,
  createGateway,
  createMetricsRecorder,
  createSupervisor,
  createTokenStore,
  ensureServerToken,
  type MetricsStore,
  openMetricsStore,
  PortInUseError,
  portHolder,
  type RecoveredSlot,
  readableByOthers,
  reattached,
  reloadConfig,
  type Supervisor,
  serverUrl,
} from "@corral/core";
import { type AppDeps, createApp } from "./app.ts";
import type { Logger } from "./deps.ts";
import { GATEWAY_BODY_LIMIT_BYTES } from "./routes/gateway-shared.ts";

/**
 * Options of {@link serve}. Each falls back to corral.yaml's `server` section, then the default.
 * @example
 * const options: ServeOptions = { home: "/var/lib/corral", port: 7070 }
 */
export interface ServeOptions {
  /** @default defaultHome() (CORRAL_HOME or the platform's state folder) */
  readonly home?: string;
  /** @default <home>/corral.yaml */
  readonly configFile?: string;
  /** @default config server.host, else "127.0.0.1" */
  readonly host?: string;
  /** 0 picks a free port @default config server.port, else 7070 */
  readonly port?: number;
  /** @default CORRAL_TOKEN, else config server.token, else `<home>/token` (made on the first start) */
  readonly token?: string;
  /** `"none"` turns authentication off, on a loopback bind only (`serve --no-auth`) @default config server.auth ("token") */
  readonly auth?: "token" | "none";
  /** @default one line per request on stdout/stderr, prefixed with the time and level */
  readonly logger?: Logger;
  /** stop cleanly on SIGINT and SIGTERM, then exit @default true */
  readonly handleSignals?: boolean;
  /** re-read corral.yaml on SIGHUP (`systemctl reload corral`), whatever `handleSignals` says @default true */
  readonly reloadOnHup?: boolean;
  /** load the models with `autostart: true` after recovery, once listening @default true */
  readonly autostart?: boolean;
  /** watcher tick @default config watch.interval_ms (5000) */
  readonly intervalMs?: number;
  /** environment read for CORRAL_TOKEN @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** the web page's routes, mounted at `/` by the caller (`corral serve` passes @corral/web's) @default none */
  readonly page?: AppDeps["page"];
}

/**
 * A listening corral server.
 * @example
 * const { url, stop } = await serve(); console.log(url.href); await stop()
 */
export interface RunningServer {
  readonly url: URL;
  /** the page's address; with the server's own token in the fragment (`#token=…`), which no server log or Referer ever sees */
  readonly pageUrl: string;
  readonly controller: Controller;
  readonly supervisor: Supervisor;
  /** what recover() found at start-up */
  readonly recovered: RecoveredSlot[];
  /** the autostart loads, one model at a time after recovery (they run while the server already answers) */
  readonly autostarted: Promise<AutostartOutcome[]>;
  /** Stops the watcher and the listener; the llama-servers keep running (the next start reattaches them). */
  stop(): Promise<void>;
}

/**
 * Whether an address only accepts connections from this machine.
 * @example
 * isLoopback("127.0.0.1") // true
 * isLoopback("0.0.0.0") // false
 */
export function isLoopback(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || h === "::ffff:127.0.0.1";
}

/**
 * The default logger: info lines on stdout, warnings and errors on stderr, each with the time.
 * @example
 * consoleLogger("info", "GET /api/v1/processes 200 3.1ms") // 2026-11-26T12:00:00.000Z info GET /api/v1/processes 200 3.1ms
 */
export const consoleLogger: Logger = (level, line) => {
  const text = `${new Date().toISOString()} ${level} ${line}`;
  if (level === "info") console.log(text);
  else console.error(text);
};

/**
 * Starts the corral server: opens the home, runs `recover()` (reattaching every llama-server
 * that outlived the last run), starts the watcher, then listens. Refuses a non-loopback address
 * without a token. With `handleSignals`, SIGINT/SIGTERM stop it cleanly and exit; the
 * llama-servers keep running.
 * @throws ConfigError (`server.token`) for a non-loopback host without a token
 * @throws PortInUseError naming the holder where the OS tells
 * @example
 * const server = await serve({ home: "/var/lib/corral", port: 7070 })
 * console.log(`listening on ${server.url}`)
 */
export async function serve(options: ServeOptions = {}): Promise<RunningServer> {
  const env = options.env ?? process.env;
  const log = options.logger ?? consoleLogger;
  const controller = await createController({ home: options.home, configFile: options.configFile });
  const { server: conf } = controller.config;
  const host = options.host ?? conf.host;
  const port = options.port ?? conf.port;
  const authMode = options.auth ?? conf.auth;
  const configFile = controller.config.file ?? "corral.yaml";
  if (authMode === "none" && !isLoopback(host)) {
    throw new ConfigError(
      "server.auth",
      `refusing to listen on ${host} with auth: none: anyone who can reach it could start and kill processes. ` +
        `Remove \`auth: none\` from ${configFile} (a token is made for you), or listen on 127.0.0.1`,
    );
  }
  const chosen = options.token ?? (env.CORRAL_TOKEN || undefined) ?? conf.token;
  const token = authMode === "none" ? undefined : (chosen ?? ensureServerToken(controller.paths.home));
  if (conf.cors.includes("*") && token === undefined) {
    throw new ConfigError(
      "server.cors",
      `"*" lets every web page call corral, which needs a token: remove \`auth: none\` or list the origins in ${configFile}`,
    );
  }
  if (conf.token !== undefined && controller.config.file && readableByOthers(controller.config.file)) {
    log(
      "warn",
      `${controller.config.file} holds server.token and other users can read it: run \`chmod 600 ${controller.config.file}\``,
    );
  }
  if (controller.config.gateway?.auth === "none" && !isLoopback(host)) {
    log("warn", `gateway.auth: none is ignored on ${host}: the model routes want a token off loopback too`);
  }
  const recovered = await controller.recover();
  // The watch loop goes on after an error (a corrupt registry, a lock timeout): the log hears of each.
  // Held here so that stopping writes the gateway's pending last-request times (Elysia's onStop does not run).
  const gateway = createGateway({ controller });
  // The supervisor's samples (the page's charts, `corral top`); a home where it cannot open still serves.
  const metrics = openMetricsOrWarn(controller, log);
  const supervisor = createSupervisor(controller, {
    intervalMs: options.intervalMs,
    onError: (error, where) =>
      log("error", `watcher ${where}: ${error instanceof Error ? error.message : String(error)}`),
    ...(metrics ? { metrics: createMetricsRecorder({ store: metrics, requests: () => gateway.models() }) } : {}),
  });
  supervisor.start();
  const app = createApp({
    controller,
    supervisor,
    gateway,
    metrics,
    token,
    tokens: createTokenStore({ file: controller.paths.tokens }),
    auth: authMode,
    // Asked on each request: a reload of gateway.auth applies at once.
    inferenceAuth: () => (controller.config.gateway?.auth === "none" && isLoopback(host) ? "none" : "token"),
    bindHost: host,
    hosts: conf.hosts,
    maxStreams: conf.max_streams,
    cors: conf.cors,
    logger: log,
    page: options.page,
  });
  try {
    app.listen({
      hostname: host,
      port,
      // Production mode: the page is bundled once instead of through the HMR dev server, whose
      // reload socket made browser connections flaky; errors carry no stack traces either.
      development: false,
      // Two corral servers must never share one port silently.
      reusePort: false,
      // A backstop: Bun answers a bare 413 past this; below it our parsers answer 413 with a JSON body
      // (64 KiB for the management routes, 16 MiB for the gateway's prompts).
      maxRequestBodySize: GATEWAY_BODY_LIMIT_BYTES + 1024,
      // Loads and event streams reset their own timer; plain requests never idle this long.
      idleTimeout: 60,
    });
  } catch (error) {
    await supervisor.stop();
    metrics?.close();
    if ((error as { code?: string }).code !== "EADDRINUSE") throw error;
    const holder = await portHolder(port).catch(() => undefined);
    throw new PortInUseError(port, holder?.pid, holder?.name);
  }
  const server = app.server;
  if (!server) throw new Error("the API server did not start listening");
  const url = new URL(serverUrl(server.hostname ?? host, server.port ?? port, "/"));
  // The server's own token goes in the fragment; a token the user chose is theirs to give out.
  const pageUrl = token !== undefined && chosen === undefined ? `${url.href}#token=${token}` : url.href;
  const onHup = () => {
    reloadConfig(controller, { reason: "SIGHUP" }).then(
      (r) =>
        log(
          "info",
          `SIGHUP: reloaded ${r.file ?? "the defaults"}: ${r.stale.length} stale, changed: ${r.changed.join(", ") || "nothing"}`,
        ),
      (error) => log("error", `SIGHUP: reload refused, the configuration in force stays: ${(error as Error).message}`),
    );
  };
  if (options.reloadOnHup ?? true) process.on("SIGHUP", onHup);
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      process.off("SIGHUP", onHup);
      await supervisor.stop();
      await app.stop(true);
      await gateway.stop();
      metrics?.close();
    })());
  if (options.handleSignals ?? true) {
    const onSignal = (signal: NodeJS.Signals) => {
      log("info", `${signal}: stopping (llama-servers keep running; the next start reattaches them)`);
      void stop().finally(() => process.exit(0));
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  }
  for (const r of recovered)
    log("info", `recovered slot ${r.slot}: ${r.outcome} (pid ${r.pid}, ${r.model_id}): ${r.reason}`);
  const live = reattached(recovered);
  log(
    "info",
    `corral listening on ${url.href} (${live} process${live === 1 ? "" : "es"} recovered, ` +
      `${token === undefined ? "auth: none, loopback only" : "token required"})`,
  );
  const autostarted = (options.autostart ?? true) ? autostartModels(controller) : Promise.resolve([]);
  void autostarted.then((outcomes) => {
    for (const o of outcomes)
      log(
        o.outcome === "failed" ? "warn" : "info",
        `autostart ${o.model_id}: ${o.outcome}${o.slot ? ` in slot ${o.slot}` : ""}${o.reason ? `: ${o.reason}` : ""}`,
      );
  });
  return { url, pageUrl, controller, supervisor, recovered, autostarted, stop };
}

/** `<home>/metrics.db`, or undefined with one warning when it cannot be opened (a symlink planted there, a full disk). */
function openMetricsOrWarn(controller: Controller, log: Logger): MetricsStore | undefined {
  try {
    // Read at each pruning: a reload that changes metrics.retention_days applies without a restart.
    return openMetricsStore({
      home: controller.paths.home,
      retentionDays: () => controller.config.metrics.retention_days,
    });
  } catch (error) {
    log("warn", `metrics.db not opened, no usage history: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}
