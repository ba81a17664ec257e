/** Runs Debian's `wrk` (a C load generator, light enough to share 2 cores with the server). */
import { type Tracker, within } from "./harness.ts";

/** What one wrk run measured. */
export interface WrkResult {
  readonly requestsPerSec: number;
  readonly requests: number;
  /** latency percentiles in ms */
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  /** responses other than 2xx/3xx */
  readonly non2xx: number;
  /** connect, read, write and timeout errors together */
  readonly socketErrors: number;
}

/** Options of {@link runWrk}. */
export interface WrkOptions {
  readonly url: string;
  readonly seconds: number;
  /** @default 16 */
  readonly connections?: number;
  /** @default 1 */
  readonly threads?: number;
}

/**
 * Whether wrk is installed.
 * @example
 * if (!hasWrk()) console.log("apt-get install wrk")
 */
export function hasWrk(): boolean {
  return Bun.which("wrk") !== null;
}

/**
 * Runs `wrk --latency` against one URL and parses its report.
 * @example
 * const r = await runWrk({ url: "http://127.0.0.1:7070/api/v1/processes", seconds: 10 }, tracker)
 */
export async function runWrk(options: WrkOptions, tracker: Tracker): Promise<WrkResult> {
  const argv = [
    "wrk",
    `-t${options.threads ?? 1}`,
    `-c${options.connections ?? 16}`,
    `-d${options.seconds}s`,
    "--timeout",
    "2s",
    "--latency",
    options.url,
  ];
  const child = tracker.process(Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" }));
  const [code, out, err] = await within(
    Promise.all([child.exited, new Response(child.stdout).text(), new Response(child.stderr).text()]),
    (options.seconds + 20) * 1000,
    "wrk",
  );
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${err || out}`);
  return parseWrk(out);
}

/**
 * Parses wrk's text report (with --latency).
 * @example
 * parseWrk("     99%    3.20ms\n  1000 requests in 1.00s, 1MB read\nRequests/sec:   1000.00\n").p99 // 3.2
 */
export function parseWrk(text: string): WrkResult {
  const pct = (p: number) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m").exec(text);
    if (!m) throw new Error(`wrk report without a ${p}% latency:\n${text}`);
    const scale = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2] as "us" | "ms" | "s" | "m"];
    return Number(m[1]) * scale;
  };
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  if (!rps) throw new Error(`wrk report without Requests/sec:\n${text}`);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    requestsPerSec: Number(rps[1]),
    requests: Number(/(\d+) requests in/.exec(text)?.[1] ?? 0),
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0),
    socketErrors: socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
  };
}
