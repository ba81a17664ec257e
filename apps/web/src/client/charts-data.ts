/** What the charts plot, from the API's usage columns (pure: tested without a browser). */
import type { GpuUsage, UsageMark, UsageSeries } from "@corral/core/views";

/** The ranges a process chart offers, as the API's `since` names them. */
export const CHART_RANGES = ["hour", "day", "week"] as const;
/** One of {@link CHART_RANGES}. */
export type ChartRange = (typeof CHART_RANGES)[number];

/** uPlot's aligned data: x in seconds, then one column per series. */
export type PlotColumns = [number[], ...(number | null)[][]];

const MIB = 1024 * 1024;

/**
 * A process chart's columns: x, resident memory (MiB), GPU memory (MiB), CPU (%).
 * @example
 * processColumns({ t: [1764547200000], rss_bytes: [104857600], gpu_memory_mib: [null], cpu_percent: [3] })
 * // [[1764547200], [100], [null], [3]]
 */
export function processColumns(
  series: Pick<UsageSeries, "t" | "rss_bytes" | "gpu_memory_mib" | "cpu_percent">,
): PlotColumns {
  return [
    series.t.map((t) => t / 1000),
    series.rss_bytes.map((v) => (v === null ? null : Math.round((v / MIB) * 10) / 10)),
    series.gpu_memory_mib.map((v) => v),
    series.cpu_percent.map((v) => v),
  ];
}

/**
 * A GPU chart's columns: x, then each process's memory (MiB), with their labels.
 * @example
 * gpuColumns({ index: 0, t: [0], series: [{ label: "slot 0", mib: [5120] }] }) // { labels: ["slot 0"], data: [[0], [5120]] }
 */
export function gpuColumns(gpu: GpuUsage["gpus"][number]): { labels: string[]; data: PlotColumns } {
  return {
    labels: gpu.series.map((s) => s.label),
    data: [gpu.t.map((t) => t / 1000), ...gpu.series.map((s) => s.mib)],
  };
}

/** Colours of the marks and their one-letter labels on the chart. */
export const MARK_STYLE: Readonly<Record<UsageMark["kind"], { readonly color: string; readonly letter: string }>> = {
  load: { color: "#2f9e44", letter: "L" },
  restart: { color: "#f08c00", letter: "R" },
  crash: { color: "#e03131", letter: "C" },
  unload: { color: "#868e96", letter: "U" },
};

/** Colours of successive series (process charts use the first three). */
export const SERIES_COLORS = ["#1c7ed6", "#ae3ec9", "#2f9e44", "#f08c00", "#e03131", "#0ca678", "#5c7cfa", "#d6336c"];

/**
 * What a mark says when hovered or read out: kind, time and reason.
 * @example
 * markTitle({ t: 0, kind: "crash", event: "status", reason: "exited" }) // "crash at 1/1/1970, 12:00:00 AM: exited"
 */
export function markTitle(mark: UsageMark): string {
  const at = new Date(mark.t).toLocaleString();
  return `${mark.kind} at ${at}${mark.reason ? `: ${mark.reason}` : ""}`;
}
