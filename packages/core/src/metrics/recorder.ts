import type { ProcessStatus } from "../lifecycle/types.ts";
import type { GpuSnapshot } from "../server/gpu.ts";
import type { GpuSample, MetricSample, MetricsStore } from "./store.ts";

/** What the gateway knows about one model, as `gateway.models()` gives it. */
export interface RequestFigures {
  readonly id: string;
  /** requests served since the gateway started */
  readonly served: number;
  readonly tokens_per_second?: number | undefined;
}

/** Options of {@link createMetricsRecorder}. */
export interface MetricsRecorderOptions {
  readonly store: Pick<MetricsStore, "insertTick">;
  /** the gateway's per-model figures @default none (request columns stay empty) */
  readonly requests?: () => Promise<readonly RequestFigures[]>;
}

/** Turns supervisor ticks into rows of the metrics store. */
export interface MetricsRecorder {
  /**
   * Writes one tick: a row per live process and a row per process per GPU, in one transaction.
   * Returns how many process rows were written.
   */
  record(at: number, statuses: readonly ProcessStatus[], gpu: GpuSnapshot | undefined): Promise<number>;
}

/**
 * Rows of one tick from the statuses the supervisor collected (pure). The request rate is the
 * change of the gateway's served count since `previous` (per model), per second.
 * @example
 * tickSamples({ at: Date.now(), statuses, gpu: undefined, requests: new Map(), previous: undefined })
 */
export function tickSamples(input: {
  readonly at: number;
  readonly statuses: readonly ProcessStatus[];
  readonly gpu: GpuSnapshot | undefined;
  readonly requests: ReadonlyMap<string, RequestFigures>;
  readonly previous: { readonly at: number; readonly served: ReadonlyMap<string, number> } | undefined;
}): { samples: MetricSample[]; gpus: GpuSample[] } {
  const { at, statuses, gpu, requests, previous } = input;
  const live = statuses.filter((s) => s.state === "running");
  const samples = live.map((s): MetricSample => {
    const figures = requests.get(s.entry.model_id);
    const before = previous?.served.get(s.entry.model_id);
    const seconds = previous ? (at - previous.at) / 1000 : 0;
    const rate =
      figures && before !== undefined && seconds > 0 ? Math.max(0, figures.served - before) / seconds : undefined;
    return {
      slot: s.slot,
      pid: s.entry.pid,
      model_id: s.entry.model_id,
      cpu_percent: s.usage?.cpu_percent,
      rss_bytes: s.usage?.rss_bytes,
      gpu_memory_mib: s.usage?.gpu_memory_mib,
      requests_per_s: rate,
      tokens_per_second: figures?.tokens_per_second,
      restarts: s.entry.restarts ?? 0,
    };
  });
  const slotOfPid = new Map(live.map((s) => [s.entry.pid, s.slot]));
  const gpus = (gpu?.processes ?? []).flatMap((p): GpuSample[] =>
    p.gpu_index === undefined
      ? []
      : [{ gpu: p.gpu_index, pid: p.pid, slot: slotOfPid.get(p.pid), mib: p.used_memory_mib }],
  );
  return { samples, gpus };
}

/**
 * A recorder the supervisor calls once per tick.
 * @example
 * const recorder = createMetricsRecorder({ store: openMetricsStore({ home }), requests: () => gateway.models() })
 * await recorder.record(Date.now(), statuses, await controller.gpuQuery())
 */
export function createMetricsRecorder(options: MetricsRecorderOptions): MetricsRecorder {
  let previous: { at: number; served: Map<string, number> } | undefined;
  return {
    async record(at, statuses, gpu) {
      const figures = options.requests ? await options.requests().catch(() => []) : [];
      const requests = new Map(figures.map((f) => [f.id, f]));
      const { samples, gpus } = tickSamples({ at, statuses, gpu, requests, previous });
      if (options.requests) previous = { at, served: new Map(figures.map((f) => [f.id, f.served])) };
      options.store.insertTick(at, samples, gpus);
      return samples.length;
    },
  };
}
