import type { Gateway, GatewayModelView, GpuSnapshot, ProcessStatus } from "@corral/core";
import { Elysia } from "elysia";
import type { RouteDeps } from "../deps.ts";
import type { GatewayCounts } from "./gateway-shared.ts";

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
 * The gateway's families: requests per model and per token, and each model's requests in flight,
 * waiting and served, and its last generation speed.
 * @example
 * gatewayMetricsText(await gateway.models(), counts)
 */
export function gatewayMetricsText(views: readonly GatewayModelView[], counts: GatewayCounts): string {
  const per = (pick: (v: GatewayModelView) => number | undefined) =>
    views.flatMap((v) => {
      const value = pick(v);
      return value === undefined ? [] : [[{ model: v.id }, value] as const];
    });
  return render([
    {
      name: "corral_gateway_requests_total",
      help: "Requests the gateway routed, by model and by token (its name; anonymous without one).",
      type: "counter",
      samples: [...counts.byModelAndToken.values()].map((r) => [{ model: r.model, token: r.token }, r.count] as const),
    },
    {
      name: "corral_gateway_model_served_total",
      help: "Requests the gateway finished for the model since this corral started.",
      type: "counter",
      samples: per((v) => v.served),
    },
    {
      name: "corral_gateway_model_in_flight",
      help: "Requests in flight to the model (streams included).",
      type: "gauge",
      samples: per((v) => v.in_flight),
    },
    {
      name: "corral_gateway_model_waiting",
      help: "Requests waiting for the model to load or for its slot.",
      type: "gauge",
      samples: per((v) => v.waiting),
    },
    {
      name: "corral_gateway_model_loaded",
      help: "1 when the model is loaded.",
      type: "gauge",
      samples: per((v) => (v.state === "loaded" ? 1 : 0)),
    },
    {
      name: "corral_gateway_model_tokens_per_second",
      help: "Generation speed of the model's last request, as llama-server timed it.",
      type: "gauge",
      samples: per((v) => v.tokens_per_second),
    },
  ]);
}

/**
 * `GET /metrics`: Prometheus text for scraping (not under /api/v1, where scrapers do not look).
 * @example
 * app.use(metricsRoutes(deps))
 */
export function metricsRoutes({
  controller,
  supervisor,
  gateway,
  counts,
}: Pick<RouteDeps, "controller" | "supervisor"> & { gateway?: Gateway; counts?: GatewayCounts }) {
  return new Elysia({ detail: { tags: ["metrics"] } }).get(
    "/metrics",
    async ({ set }) => {
      const [statuses, gpu] = await Promise.all([
        supervisor ? supervisor.statuses(1000) : controller.status(),
        controller.gpuQuery(),
      ]);
      set.headers["content-type"] = "text/plain; version=0.0.4; charset=utf-8";
      const gatewayText = gateway && counts ? gatewayMetricsText(await gateway.models(), counts) : "";
      return prometheusText(statuses, gpu) + gatewayText;
    },
    { detail: { summary: "Prometheus metrics: per-slot up, restarts, CPU, memory and GPU memory; per-GPU memory" } },
  );
}
