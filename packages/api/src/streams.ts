import { HttpError } from "./errors.ts";

/**
 * A cap on how many event and log-follow streams run at once: each holds a socket, a file
 * descriptor or two and a send buffer, and 20,000 held streams took every descriptor the process had.
 * @example
 * const streams = createStreamLimiter(64); const release = streams.acquire(); … release()
 */
export interface StreamLimiter {
  readonly max: number;
  /** streams open now */
  active(): number;
  /** Takes a slot, or throws 429 `TOO_MANY_STREAMS`; the returned function gives it back (once). */
  acquire(): () => void;
}

/** Default of `server.max_streams`. */
export const DEFAULT_MAX_STREAMS = 64;

/**
 * A {@link StreamLimiter} for `max` streams.
 * @default max = 64
 * @example
 * createApp({ controller, maxStreams: 128 }) // uses createStreamLimiter(128)
 */
export function createStreamLimiter(max: number = DEFAULT_MAX_STREAMS): StreamLimiter {
  let open = 0;
  return {
    max,
    active: () => open,
    acquire() {
      if (open >= max) {
        throw new HttpError(
          429,
          "TOO_MANY_STREAMS",
          `stream limit: ${max} event and log streams are open already (server.max_streams); close one and retry`,
          { "retry-after": "5" },
        );
      }
      open++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        open--;
      };
    },
  };
}
