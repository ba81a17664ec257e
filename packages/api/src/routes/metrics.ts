import type { GpuSnapshot, ProcessStatus } from "@corral/core";
import { Elysia } from "elysia";
import type { RouteDeps } from "../deps.ts";

const MIB = 1024 * 1024;

/** A label value as Prometheus' text format wants it: backslash, quote and newline escaped. */
function label(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: "gauge" | "counter";
  readonly samples: ReadonlyArray<readonly [labels: Record<string, string>, value: number]>;
}

function render(families: readonly Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const [labels, value] of f.samples) {
      const pairs = Object.entries(labels).map(([k, v]) => `${k}="${label(v)}"`);
      out.push(`${f.name}${pairs.length ? `{${pairs.join(",")}}` : ""} ${Number.isFinite(value) ? value : 0}`);
    }
  }
  return `${out.join("\n")}\n`;
}

/**
 * The metric families for a set of statuses and a GPU snapshot, in Prometheus' text format.
 * A process is "up" when the OS confirms its identity and its `/health` answers ok.
 * @example
 * prometheusText(await controller.status(), await controller.gpuQuery())
 */
export function prometheusText(statuses: readonly ProcessStatus[], gpu: GpuSnapshot | undefined): string {
  const per = (pick: (s: ProcessStatus) => number | undefined) =>
    statuses.flatMap((s) => {
      const value = pick(s);
      return value === undefined ? [] : [[{ slot: s.slot, model: s.entry.model_id }, value] as const];
    });
  return render([
    {
      name: "corral_processes_tracked",
      help: "Entries in the registry.",
      type: "gauge",
      samples: [[{}, statuses.length]],
    },
    {
      name: "corral_process_up",
      help: "1 when the tracked llama-server is alive (identity checked) and its /health answers ok, else 0.",
      type: "gauge",
      samples: per((s) => (s.state === "running" && s.health?.ok ? 1 : 0)),
    },
    {
      name: "corral_process_restarts_total",
      help: "Automatic restarts of the slot's server since it was loaded.",
      type: "counter",
      samples: per((s) => s.entry.restarts ?? 0),
    },
    {
      name: "corral_process_uptime_seconds",
      help: "Seconds since the process started.",
      type: "gauge",
      samples: per((s) => (s.uptime_ms === undefined ? undefined : s.uptime_ms / 1000)),
    },
    {
      name: "corral_process_cpu_percent",
      help: "CPU use, percent of one core, since the previous sample.",
      type: "gauge",
      samples: per((s) => s.usage?.cpu_percent),
    },
    {
      name: "corral_process_resident_memory_bytes",
      help: "Resident memory of the process.",
      type: "gauge",
      samples: per((s) => s.usage?.rss_bytes),
    },
    {
      name: "corral_process_gpu_memory_bytes",
      help: "GPU memory the process holds, where nvidia-smi tells.",
      type: "gauge",
      samples: per((s) => (s.usage?.gpu_memory_mib === undefined ? undefined : s.usage.gpu_memory_mib * MIB)),
    },
    {
      name: "corral_gpu_memory_used_bytes",
      help: "GPU memory in use, per GPU.",
      type: "gauge",
      samples: (gpu?.gpus ?? []).flatMap((g) =>
        g.memory_used_mib === undefined
          ? []
          : [[{ gpu: String(g.index), name: g.name }, g.memory_used_mib * MIB] as const],
      ),
    },
    {
      name: "corral_gpu_memory_total_bytes",
      help: "GPU memory in total, per GPU.",
      type: "gauge",
      samples: (gpu?.gpus ?? []).flatMap((g) =>
        g.memory_total_mib === undefined
          ? []
          : [[{ gpu: String(g.index), name: g.name }, g.memory_total_mib * MIB] as const],
      ),
    },
  ]);
}

/**
 * `GET /metrics`: Prometheus text for scraping (not under /api/v1, where scrapers do not look).
 * @example
 * app.use(metricsRoutes(deps))
 */
export function metricsRoutes({ controller, supervisor }: Pick<RouteDeps, "controller" | "supervisor">) {
  return new Elysia({ detail: { tags: ["metrics"] } }).get(
    "/metrics",
    async ({ set }) => {
      const [statuses, gpu] = await Promise.all([
        supervisor ? supervisor.statuses(1000) : controller.status(),
        controller.gpuQuery(),
      ]);
      set.headers["content-type"] = "text/plain; version=0.0.4; charset=utf-8";
      return prometheusText(statuses, gpu);
    },
    { detail: { summary: "Prometheus metrics: per-slot up, restarts, CPU, memory and GPU memory; per-GPU memory" } },
  );
}
