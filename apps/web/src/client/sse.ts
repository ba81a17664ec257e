/**
 * The live event stream. It reads `text/event-stream` over `fetch` rather than `EventSource`:
 * `EventSource` can send no `Authorization` header and hides the status of a failed connection,
 * so it could neither carry the token nor tell a 401 (ask for a token) from a server that is
 * down (retry later). This way the token never has to go into a URL either.
 */

/** One server-sent event. */
export interface SseMessage {
  /** the `event:` field @default "message" */
  readonly event: string;
  readonly data: string;
  readonly id: string | undefined;
}

/**
 * An incremental parser of the `text/event-stream` format (WHATWG HTML §9.2.6): feed it
 * chunks as they arrive, get the complete events back.
 * @example
 * const parser = new SseParser()
 * parser.push("event: status\ndata: {\"slot\":\"0\"}\n\n") // [{ event: "status", data: '{"slot":"0"}', id: undefined }]
 */
export class SseParser {
  #buffer = "";
  #data: string[] = [];
  #event = "";
  #id: string | undefined;
  /** the previous chunk ended with "\r": a "\n" that starts this one is the rest of that line break */
  #skipLineFeed = false;

  /** Feeds a chunk; returns the events it completed. */
  push(chunk: string): SseMessage[] {
    const text = this.#skipLineFeed && chunk.startsWith("\n") ? chunk.slice(1) : chunk;
    this.#skipLineFeed = text.endsWith("\r");
    const lines = (this.#buffer + text).split(/\r\n|\r|\n/);
    this.#buffer = lines.pop() ?? "";
    const out: SseMessage[] = [];
    for (const line of lines) this.#line(line, out);
    return out;
  }

  #line(line: string, out: SseMessage[]): void {
    if (line === "") {
      if (this.#data.length > 0)
        out.push({ event: this.#event || "message", data: this.#data.join("\n"), id: this.#id });
      this.#data = [];
      this.#event = "";
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.#data.push(value);
    else if (field === "event") this.#event = value;
    else if (field === "id" && !value.includes("\0")) this.#id = value;
  }
}

/** The connection's state, for the page's indicator. */
export type StreamState =
  | { kind: "connecting" }
  | { kind: "open" }
  | { kind: "waiting"; retryInMs: number; why: string }
  /** the API answered 401 and no token was given: no retries until {@link EventStream.reconnect} */
  | { kind: "unauthorized"; why: string }
  | { kind: "closed" };

/** What {@link openEventStream} returns. */
export interface EventStream {
  /** connects now (after a token was entered, say), cancelling a pending retry */
  reconnect(): void;
  close(): void;
}

/** Options of {@link openEventStream}. */
export interface EventStreamOptions {
  /** @default "/api/v1/events" */
  readonly url?: string;
  /** makes the request; the API client's `request` adds the token and prompts on 401 */
  readonly request: (url: string, init: RequestInit) => Promise<Response>;
  readonly onEvent: (message: SseMessage) => void;
  /** @default () => {} */
  readonly onState?: (state: StreamState) => void;
  /** first retry delay, doubled per failure up to `maxDelayMs` @default 1000 */
  readonly initialDelayMs?: number;
  /** @default 30000 */
  readonly maxDelayMs?: number;
}

/**
 * Keeps an event stream open: reconnects with doubling back-off after an error or the end of
 * the stream, and resets the back-off once a connection opens.
 * @example
 * const stream = openEventStream({ request: api.request, onEvent: () => refresh.schedule() })
 * stream.close()
 */
export function openEventStream(options: EventStreamOptions): EventStream {
  const {
    url = "/api/v1/events",
    request,
    onEvent,
    onState = () => {},
    initialDelayMs = 1000,
    maxDelayMs = 30_000,
  } = options;
  const abort = new AbortController();
  let delay = initialDelayMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let attempt: AbortController | undefined;

  const connect = async () => {
    timer = undefined;
    attempt = new AbortController();
    const signal = AbortSignal.any([abort.signal, attempt.signal]);
    onState({ kind: "connecting" });
    let why = "the stream ended";
    try {
      const response = await request(url, { headers: { Accept: "text/event-stream" }, signal });
      if (!response.ok) throw Object.assign(new Error(`HTTP ${response.status}`), { status: response.status });
      if (!response.body) throw new Error("the response has no body");
      onState({ kind: "open" });
      delay = initialDelayMs;
      const parser = new SseParser();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const message of parser.push(value)) onEvent(message);
      }
    } catch (error) {
      why = error instanceof Error ? error.message : String(error);
      if (signal.aborted) return abort.signal.aborted ? onState({ kind: "closed" }) : undefined;
      if ((error as { status?: unknown }).status === 401) return onState({ kind: "unauthorized", why });
    }
    if (signal.aborted) return abort.signal.aborted ? onState({ kind: "closed" }) : undefined;
    onState({ kind: "waiting", retryInMs: delay, why });
    timer = setTimeout(connect, delay);
    delay = Math.min(maxDelayMs, delay * 2);
  };
  void connect();
  return {
    reconnect() {
      clearTimeout(timer);
      attempt?.abort();
      delay = initialDelayMs;
      void connect();
    },
    close() {
      abort.abort();
      clearTimeout(timer);
    },
  };
}

/**
 * Coalesces bursts of "something changed" into one run of `task`: calls within `waitMs` of the
 * first share a run, and a call during a run queues exactly one more run after it.
 * @default waitMs 250
 * @example
 * const refresh = createCoalescer(() => loadEverything(), 250)
 * source.onEvent = () => refresh.schedule()
 */
export function createCoalescer(task: () => Promise<void>, waitMs = 250): { schedule(): void; idle(): Promise<void> } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  const run = async (): Promise<void> => {
    timer = undefined;
    running = task()
      .catch(() => {})
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          schedule();
        }
      });
    return running;
  };
  const schedule = () => {
    if (running) again = true;
    else timer ??= setTimeout(run, waitMs);
  };
  const idle = async () => {
    while (timer !== undefined || running) await (running ?? new Promise((r) => setTimeout(r, waitMs)));
  };
  return { schedule, idle };
}
