import { InvalidInputError } from "../errors.ts";
import type { CrashReport } from "../store/schema.ts";

/** What a webhook receives, as the JSON body of a POST. */
export interface AlertEvent {
  readonly event: "crash" | "restart" | "give-up" | "unhealthy" | (string & {});
  readonly slot?: string;
  readonly model?: string;
  readonly pid?: number;
  readonly reason?: string;
  /** ISO time of the event */
  readonly time: string;
  /** with `crash`: the whole crash report (exit, last log lines, last usage and /slots, restart decision) */
  readonly report?: CrashReport;
}

/** The subset of `fetch` the alerter calls; the global `fetch` fits, and so does a plain test fake. */
export type AlertFetch = (url: string, init: RequestInit) => Promise<Response>;

/** Options of {@link createAlerter}. */
export interface AlerterOptions {
  /** webhook URLs (http or https); every event goes to each of them */
  readonly urls: readonly string[];
  /**
   * Further attempts after a network error, a timeout, a 5xx, 408 or 429.
   * @default 3
   */
  readonly retries?: number;
  /**
   * Wait before the first retry; doubles for each one after.
   * @default 500
   */
  readonly backoffMs?: number;
  /**
   * Each attempt is aborted after this long.
   * @default 3000
   */
  readonly timeoutMs?: number;
  /**
   * Events waiting per URL; beyond it the oldest is dropped (and counted in `dropped`),
   * so a dead receiver never grows memory without bound.
   * @default 1000
   */
  readonly maxQueue?: number;
  /** @default globalThis.fetch */
  readonly fetch?: AlertFetch;
  /**
   * Called once per event a URL finally did not take, with the last error. Its own errors are ignored.
   * @default nothing: the count is in `failures`
   */
  readonly onError?: (url: string, error: unknown) => void;
}

/** Sends alert events to webhooks in the background. */
export interface Alerter {
  /** Queues the event for every URL and returns at once; never blocks, never throws. */
  notify(event: AlertEvent): void;
  /**
   * Resolves when every queued event was delivered or given up, or after `timeoutMs`,
   * whichever comes first; never rejects.
   * @default timeoutMs = 5000
   */
  flush(timeoutMs?: number): Promise<void>;
  /** deliveries (one event to one URL) given up after all retries */
  readonly failures: number;
  /** events dropped from a full queue */
  readonly dropped: number;
}

/**
 * A webhook answered with something other than a 2xx; handed to `onError`, never thrown.
 * @example
 * createAlerter({ urls, onError: (url, e) => e instanceof WebhookStatusError && console.warn(url, e.status) });
 */
export class WebhookStatusError extends Error {
  readonly status: number;
  constructor(url: string, status: number) {
    super(`webhook ${url} answered HTTP ${status}`);
    this.name = "WebhookStatusError";
    this.status = status;
  }
}

const DEFAULT_FLUSH_MS = 5000;
/** Answers worth another try: the receiver is overloaded or restarting, not refusing the event. */
const retryable = (status: number): boolean => status >= 500 || status === 408 || status === 429;

interface Channel {
  readonly url: string;
  readonly queue: string[];
  running: boolean;
  idle: Array<() => void>;
}

function checkUrls(urls: readonly string[]): void {
  urls.forEach((url, i) => {
    const protocol = URL.canParse(url) ? new URL(url).protocol : "";
    if (protocol !== "http:" && protocol !== "https:") {
      throw new InvalidInputError(`urls[${i}]`, `"${url}" is not an http(s) URL`);
    }
  });
}

/**
 * A webhook alerter: each event is POSTed as JSON (content-type application/json) to every
 * URL, each URL with its own queue and worker so a dead receiver delays no other. Network
 * errors, timeouts, 5xx, 408 and 429 are retried with exponential backoff; other answers
 * fail at once. Throws {@link InvalidInputError} for a URL that is not http(s).
 * @default options.retries = 3, options.backoffMs = 500, options.timeoutMs = 3000, options.maxQueue = 1000
 * @example
 * const alerter = createAlerter({ urls: config.webhooks, onError: (url, e) => log.warn(url, e) });
 * alerter.notify({ event: "crash", slot: "0", model: "qwen-7b", pid: 4242, reason: "exit 139", time: new Date().toISOString() });
 * await alerter.flush(2000);
 */
export function createAlerter(options: AlerterOptions): Alerter {
  checkUrls(options.urls);
  const retries = Math.max(0, options.retries ?? 3);
  const backoffMs = options.backoffMs ?? 500;
  const timeoutMs = options.timeoutMs ?? 3000;
  const maxQueue = Math.max(1, options.maxQueue ?? 1000);
  const fetchImpl: AlertFetch = options.fetch ?? ((url, init) => fetch(url, init));
  const channels: Channel[] = options.urls.map((url) => ({ url, queue: [], running: false, idle: [] }));
  let failures = 0;
  let dropped = 0;

  const attempt = async (url: string, body: string): Promise<{ ok: boolean; retry: boolean; error?: unknown }> => {
    try {
      const response = await fetchImpl(url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "corral" },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      // The answer's body is of no use; cancelling it frees the connection.
      await response.body?.cancel().catch(() => {});
      if (response.ok) return { ok: true, retry: false };
      return { ok: false, retry: retryable(response.status), error: new WebhookStatusError(url, response.status) };
    } catch (error) {
      return { ok: false, retry: true, error };
    }
  };

  const deliver = async (url: string, body: string): Promise<void> => {
    for (let n = 0; ; n++) {
      const result = await attempt(url, body);
      if (result.ok) return;
      if (!result.retry || n >= retries) {
        failures++;
        try {
          options.onError?.(url, result.error);
        } catch {
          // A failing error handler must not stop the queue.
        }
        return;
      }
      await Bun.sleep(backoffMs * 2 ** n);
    }
  };

  const drain = async (channel: Channel): Promise<void> => {
    channel.running = true;
    for (let body = channel.queue.shift(); body !== undefined; body = channel.queue.shift()) {
      await deliver(channel.url, body);
    }
    channel.running = false;
    for (const resolve of channel.idle.splice(0)) resolve();
  };

  const whenIdle = (channel: Channel): Promise<void> =>
    !channel.running && channel.queue.length === 0
      ? Promise.resolve()
      : new Promise((resolve) => channel.idle.push(resolve));

  return {
    notify: (event) => {
      let body: string;
      try {
        body = JSON.stringify(event);
      } catch {
        failures += channels.length;
        return;
      }
      for (const channel of channels) {
        if (channel.queue.length >= maxQueue) {
          channel.queue.shift();
          dropped++;
        }
        channel.queue.push(body);
        // Started on a microtask so that notify returns before any fetch is even called.
        if (!channel.running) {
          channel.running = true;
          queueMicrotask(() => void drain(channel));
        }
      }
    },
    flush: async (flushTimeoutMs = DEFAULT_FLUSH_MS) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, flushTimeoutMs)));
      await Promise.race([Promise.all(channels.map(whenIdle)), timeout]);
      clearTimeout(timer);
    },
    get failures() {
      return failures;
    },
    get dropped() {
      return dropped;
    },
  };
}
