import { collectStatus, createUsageSampler, type GatewayModelView, type ProcessStatus } from "@corral/core";
import { booleanFlag, integerFlag, UsageError } from "../args.ts";
import type { Command, Outcome } from "../context.ts";
import { bytes, duration, stateWord, style, table } from "../render.ts";
import { gatewayViews } from "../server-client.ts";

/** One screen of `corral top`: the rows and what the gateway said, with the request rate since the last screen. */
export interface TopFrame {
  readonly at: number;
  readonly statuses: readonly ProcessStatus[];
  readonly models: readonly GatewayModelView[];
  /** requests per second per model id since the previous frame */
  readonly rates: ReadonlyMap<string, number>;
}

/**
 * `corral top`: a live view of this home's servers (health, CPU, memory, GPU memory, requests),
 * redrawn every tick until q; `--once` prints one screen (what a pipe or a script gets).
 * @example
 * corral top --interval 1000
 */
export const command: Command = {
  name: "top",
  args: [],
  options: {
    interval: {
      type: "string",
      value: "MS",
      description: "ms between screens (default: watch.interval_ms of corral.yaml)",
    },
    once: { type: "boolean", description: "print one screen and exit (no terminal needed)" },
  },
  json: true,
  examples: ["corral top", "corral top --interval 1000", "corral top --once", "corral top --once --json"],
  async run(ctx, input) {
    const controller = await ctx.controller();
    const intervalMs =
      integerFlag(input, "interval", { min: 100, max: 3_600_000 }, "top") ?? controller.config.watch.interval_ms;
    const sampler = createUsageSampler();
    let previous: TopFrame | undefined;
    const next = async (): Promise<TopFrame> => {
      const [statuses, models] = await Promise.all([
        collectStatus(controller, { usage: sampler }),
        gatewayViews(controller),
      ]);
      const frame = withRates(Date.now(), statuses, models, previous);
      previous = frame;
      return frame;
    };
    if (booleanFlag(input, "once")) {
      const frame = await next();
      return { data: frame.statuses, lines: renderFrame(frame, { home: controller.paths.home }) } satisfies Outcome;
    }
    if (!ctx.interactive || ctx.json) {
      throw new UsageError("corral top redraws a terminal: run it in one, or use --once (with --json for data)", "top");
    }
    await live({ next, intervalMs, home: controller.paths.home });
  },
};

/** Adds each model's request rate since the previous frame (from the gateway's served counts). */
export function withRates(
  at: number,
  statuses: readonly ProcessStatus[],
  models: readonly GatewayModelView[],
  previous: TopFrame | undefined,
): TopFrame {
  const rates = new Map<string, number>();
  const seconds = previous ? (at - previous.at) / 1000 : 0;
  for (const m of models) {
    const before = previous?.models.find((p) => p.id === m.id)?.served;
    if (before !== undefined && seconds > 0) rates.set(m.id, Math.max(0, m.served - before) / seconds);
  }
  return { at, statuses, models, rates };
}

/**
 * The lines of one screen.
 * @example
 * renderFrame(frame, { home: "/var/lib/corral", intervalMs: 5000 }).join("\n")
 */
export function renderFrame(frame: TopFrame, info: { readonly home: string; readonly intervalMs?: number }): string[] {
  const every = info.intervalMs ? ` · every ${(info.intervalMs / 1000).toFixed(1)} s · q quits` : "";
  const head = `${style.bold("corral top")} · ${info.home} · ${new Date(frame.at).toLocaleTimeString()}${every}`;
  if (frame.statuses.length === 0) return [head, "", "no tracked llama-servers"];
  const model = (s: ProcessStatus) => frame.models.find((m) => m.id === s.entry.model_id);
  const rows = table(frame.statuses, [
    { header: "SLOT", cell: (s) => style.bold(s.slot), align: "right" },
    { header: "MODEL", cell: (s) => s.entry.model_id },
    { header: "PID", cell: (s) => String(s.entry.pid), align: "right" },
    { header: "STATE", cell: (s) => stateWord(s.state === "running" ? s.entry.status : s.state) },
    { header: "HEALTH", cell: (s) => s.health?.state ?? "-" },
    { header: "UPTIME", cell: (s) => duration(s.uptime_ms), align: "right" },
    {
      header: "CPU",
      cell: (s) => (s.usage ? `${s.usage.cpu_percent.toFixed(1)}%` : "-"),
      align: "right",
    },
    { header: "MEMORY", cell: (s) => bytes(s.usage?.rss_bytes), align: "right" },
    {
      header: "GPU MEM",
      cell: (s) => (s.usage?.gpu_memory_mib === undefined ? "-" : `${s.usage.gpu_memory_mib} MiB`),
      align: "right",
    },
    {
      header: "REQ/S",
      cell: (s) => {
        const rate = frame.rates.get(s.entry.model_id);
        return rate === undefined ? "-" : rate.toFixed(2);
      },
      align: "right",
    },
    { header: "SERVED", cell: (s) => String(model(s)?.served ?? "-"), align: "right" },
    { header: "IN FLIGHT", cell: (s) => String(model(s)?.in_flight ?? "-"), align: "right" },
    {
      header: "TOK/S",
      cell: (s) => {
        const tps = model(s)?.tokens_per_second;
        return tps === undefined ? "-" : tps.toFixed(0);
      },
      align: "right",
    },
    { header: "RESTARTS", cell: (s) => String(s.entry.restarts ?? 0), align: "right" },
  ]);
  return [head, "", ...rows];
}

/** Redraws on the alternate screen every `intervalMs` until q, Esc or Ctrl-C; the terminal is restored after. */
async function live(options: {
  readonly next: () => Promise<TopFrame>;
  readonly intervalMs: number;
  readonly home: string;
}): Promise<void> {
  const { stdin, stdout } = process;
  let stop: () => void = () => undefined;
  const quit = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const onKey = (data: Buffer) => {
    const key = data.toString("utf8");
    if (key === "q" || key === "Q" || key === "\u0003" || key === "\u001b") stop();
  };
  stdin.setRawMode(true);
  stdin.resume();
  stdin.on("data", onKey);
  stdout.write("\u001b[?1049h\u001b[?25l");
  let timer: ReturnType<typeof setTimeout> | undefined;
  let done = false;
  const draw = async () => {
    try {
      const frame = await options.next();
      if (done) return;
      const lines = renderFrame(frame, { home: options.home, intervalMs: options.intervalMs });
      stdout.write(`\u001b[H\u001b[2J${lines.join("\n")}\n`);
    } catch (error) {
      if (!done) stdout.write(`\u001b[H\u001b[2J${style.red((error as Error).message)}\n`);
    }
    if (!done) timer = setTimeout(draw, options.intervalMs);
  };
  void draw();
  try {
    await quit;
  } finally {
    done = true;
    clearTimeout(timer);
    stdin.off("data", onKey);
    stdin.setRawMode(false);
    stdin.pause();
    stdout.write("\u001b[?25h\u001b[?1049l");
  }
}
