import { inLoadingGrace } from "../lifecycle/status.ts";
import type { ProcessStatus } from "../lifecycle/types.ts";
import { isGone } from "../process/identity.ts";
import { probeHost, serverHeaders, serverUrl } from "../server/health.ts";
import type { EntryStatus } from "../store/schema.ts";

/** What the supervisor should do about one status row. */
export interface Verdict {
  /** the process of a running entry is gone: crash handling (and maybe a restart) */
  readonly crashed: boolean;
  /** the process of a loading entry is gone: drop the entry, no restart */
  readonly remove: boolean;
  /** the status the entry should have now, when it should change */
  readonly status: EntryStatus | undefined;
  readonly reason: string;
}

/**
 * Decides the next status of an entry from what a tick saw.
 * @example
 * nextStatus(row, undefined, Date.now(), 300000) // { crashed: false, remove: false, status: "running", reason: "healthy" }
 */
export function nextStatus(row: ProcessStatus, wedged: string | undefined, now: number, loadMs: number): Verdict {
  const keep = (reason: string): Verdict => ({ crashed: false, remove: false, status: undefined, reason });
  const to = (status: EntryStatus, reason: string): Verdict => ({ crashed: false, remove: false, status, reason });
  const { entry } = row;
  if (entry.status === "stopping") return keep("being stopped");
  if (isGone(row.state)) {
    if (entry.status === "loading")
      return { crashed: false, remove: true, status: undefined, reason: row.state_reason };
    return { crashed: true, remove: false, status: "exited", reason: row.state_reason };
  }
  if (row.state !== "running") return keep(row.state_reason);
  const health = row.health;
  if (!health) return keep("not checked");
  if (health.state === "ok") return wedged ? to("unhealthy", wedged) : to("running", "healthy");
  if (health.state === "loading") return to("loading", "model still loading (503)");
  if (inLoadingGrace(entry, now, loadMs)) return keep("starting up");
  return to("unhealthy", `/health ${health.state}${health.error ? `: ${health.error}` : ""}`);
}

/** What the supervisor does about a crash: restart after a delay, give up, or nothing (restart is off). */
export interface RestartDecision {
  readonly decision: "restart" | "none" | "give-up";
  readonly reason: string;
  readonly attempt?: number;
  readonly max_attempts?: number;
  readonly delay_ms?: number;
}

/**
 * The restart decision for a crashed server, the same one the supervisor then carries out.
 * @example
 * restartDecision({ policy: "on-failure", attempts: 0, maxAttempts: 5, backoffMs: 1000, backoffMaxMs: 60000 })
 * // { decision: "restart", reason: "restart attempt 1 of 5 in 1000 ms", attempt: 1, max_attempts: 5, delay_ms: 1000 }
 */
export function restartDecision(input: {
  readonly policy: "never" | "on-failure";
  readonly adopted?: boolean;
  readonly configured?: boolean;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly backoffMs: number;
  readonly backoffMaxMs: number;
}): RestartDecision {
  if (input.configured === false) return { decision: "none", reason: "not restarted: its model is not configured" };
  if (input.adopted) return { decision: "none", reason: "not restarted: corral adopted it, it did not start it" };
  if (input.policy !== "on-failure") return { decision: "none", reason: "not restarted: restart is off for its model" };
  if (input.attempts >= input.maxAttempts) {
    return {
      decision: "give-up",
      reason: `gave up after ${input.attempts} restart attempts`,
      max_attempts: input.maxAttempts,
    };
  }
  const delay = restartDelay(input.attempts, input.backoffMs, input.backoffMaxMs);
  const attempt = input.attempts + 1;
  return {
    decision: "restart",
    reason: `restart attempt ${attempt} of ${input.maxAttempts} in ${delay} ms`,
    attempt,
    max_attempts: input.maxAttempts,
    delay_ms: delay,
  };
}

/**
 * Capped exponential backoff.
 * @example
 * restartDelay(3, 1000, 60000) // 8000
 */
export function restartDelay(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
}

interface Progress {
  pid: number;
  decoded: number;
  since: number;
}

/**
 * Finds servers that answer `/health` but make no progress: a request in flight (llama-server's
 * `/slots` shows `is_processing`) whose decoded token count has not moved for `afterMs`.
 * Servers without `/slots` (started with `--no-slots`) are never judged wedged.
 * @example
 * const wedged = await new WedgeDetector(120000).check(rows, 2000)
 */
export class WedgeDetector {
  readonly #afterMs: number;
  readonly #now: () => number;
  readonly #seen = new Map<string, Progress>();

  constructor(afterMs: number, now: () => number = Date.now) {
    this.#afterMs = afterMs;
    this.#now = now;
  }

  /**
   * @param configHost where servers without a host of their own listen (the configuration's `host`)
   * @returns slot → reason, for the wedged ones
   */
  async check(
    rows: readonly ProcessStatus[],
    timeoutMs: number,
    configHost = "127.0.0.1",
    /** hears each `/slots` answer (the crash reports keep the last one) */
    onSlots?: (row: ProcessStatus, slots: unknown) => void,
  ): Promise<Map<string, string>> {
    const wedged = new Map<string, string>();
    const live = rows.filter((r) => r.state === "running" && r.health?.state === "ok");
    for (const slot of this.#seen.keys()) if (!live.some((r) => r.slot === slot)) this.#seen.delete(slot);
    await Promise.all(
      live.map(async (row) => {
        const host = probeHost(row.entry.host, configHost);
        const slots =
          host === undefined ? undefined : await fetchSlots(host, row.entry.port, timeoutMs, row.entry.api_key);
        if (slots !== undefined) onSlots?.(row, slots);
        const decoded = busyDecoded(slots);
        const prev = this.#seen.get(row.slot);
        if (decoded === undefined) {
          this.#seen.delete(row.slot);
          return;
        }
        if (!prev || prev.pid !== row.entry.pid || prev.decoded !== decoded) {
          this.#seen.set(row.slot, { pid: row.entry.pid, decoded, since: this.#now() });
          return;
        }
        const stuck = this.#now() - prev.since;
        if (stuck >= this.#afterMs) {
          wedged.set(
            row.slot,
            `wedged: a request is in progress but no token was decoded for ${Math.round(stuck / 1000)} s`,
          );
        }
      }),
    );
    return wedged;
  }
}

/** A server's `/slots` answer, or undefined when it has none (`--no-slots`) or does not answer. */
async function fetchSlots(
  host: string,
  port: number,
  timeoutMs: number,
  apiKey: string | undefined,
): Promise<unknown[] | undefined> {
  try {
    const res = await fetch(serverUrl(host, port, "/slots"), {
      signal: AbortSignal.timeout(timeoutMs),
      headers: serverHeaders(apiKey),
    });
    if (!res.ok) return undefined;
    const slots = (await res.json()) as unknown;
    return Array.isArray(slots) ? slots : undefined;
  } catch {
    return undefined;
  }
}

/** Sum of decoded tokens over busy slots, or undefined when no slot is busy or `/slots` is unavailable. */
function busyDecoded(slots: unknown[] | undefined): number | undefined {
  if (!slots) return undefined;
  const busy = slots.filter(
    (s) => s && typeof s === "object" && (s as { is_processing?: unknown }).is_processing === true,
  );
  if (busy.length === 0) return undefined;
  return busy.reduce((sum: number, s) => sum + decodedOf(s as Record<string, unknown>), 0);
}

function decodedOf(slot: Record<string, unknown>): number {
  const next = slot.next_token;
  const first = Array.isArray(next) ? next[0] : next;
  const n = (first as { n_decoded?: unknown } | undefined)?.n_decoded ?? slot.n_decoded;
  return typeof n === "number" ? n : 0;
}
