/**
 * The usage charts (uPlot, bundled with the page; its stylesheet is a bundled file, and it styles
 * through the CSSOM, which the page's CSP allows): a sparkline of CPU per process row, a chart per
 * process of memory and CPU over the last hour / day / week with loads, restarts and crashes
 * marked, and per GPU the memory each process held.
 */
import type { GpuUsage, ProcessStatus, UsageMark, UsageSeries } from "@corral/core/views";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./charts.css";
import type { ApiClient } from "./api.ts";
import {
  CHART_RANGES,
  type ChartRange,
  gpuColumns,
  MARK_STYLE,
  markTitle,
  processColumns,
  SERIES_COLORS,
} from "./charts-data.ts";
import { h } from "./dom.ts";

/** The processes table's column that holds the sparklines. */
export const SPARK_COLUMN = "Last hour";
/** A chart's figures are read again at most this often. */
const STALE_MS = 15_000;

/** What main.ts drives. */
export interface Charts {
  /** mounts each row's sparkline and refreshes those (and the open chart) older than 15 s */
  updateRows(tbody: HTMLTableSectionElement, rows: readonly ProcessStatus[]): void;
  /** the per-GPU charts under the GPU cards */
  updateGpus(): void;
}

interface Spark {
  readonly button: HTMLButtonElement;
  plot: uPlot | undefined;
  fetchedAt: number;
}

/**
 * Creates the charts: the usage panel goes after `after` (the processes section), the GPU
 * charts at the end of `gpuSection`.
 * @example
 * const charts = createCharts({ api, after: processesSection, gpuSection: byId("gpus-section", HTMLElement) })
 */
export function createCharts(deps: {
  readonly api: Pick<ApiClient, "get">;
  readonly after: HTMLElement;
  readonly gpuSection: HTMLElement;
  readonly showError?: (what: string, error: unknown) => void;
}): Charts {
  const sparks = new Map<string, Spark>();
  const panel = usagePanel(deps.api);
  deps.after.after(panel.section);
  const gpuBox = h("div", { id: "gpu-usage", class: "cards gpu-usage" });
  deps.gpuSection.append(gpuBox);
  let gpuFetchedAt = 0;
  let gpuPlots: uPlot[] = [];

  const drawSpark = async (slot: string, spark: Spark) => {
    spark.fetchedAt = Date.now();
    const series = await deps.api.get<UsageSeries>(`/api/v1/processes/${slot}/usage?since=hour`);
    const data = processColumns(series);
    const cpu: uPlot.AlignedData = [data[0], data[3] ?? []];
    spark.plot?.destroy();
    spark.plot = new uPlot(sparkOptions(series), cpu, spark.button);
    spark.button.dataset.points = String(spark.plot.data[0].length);
  };

  return {
    updateRows(tbody, rows) {
      const live = new Set(rows.map((r) => r.slot));
      for (const [slot, spark] of sparks) {
        if (live.has(slot)) continue;
        spark.plot?.destroy();
        sparks.delete(slot);
      }
      for (const row of rows) {
        const cell = tbody.querySelector<HTMLElement>(`tr[data-key="${row.slot}"] [data-label="${SPARK_COLUMN}"]`);
        if (!cell) continue;
        let spark = sparks.get(row.slot);
        if (!spark) {
          const button = h("button", {
            type: "button",
            class: "spark",
            "aria-label": `Chart of slot ${row.slot}: memory and CPU over time`,
            onclick: () => panel.open(row.slot),
          });
          spark = { button, plot: undefined, fetchedAt: 0 };
          sparks.set(row.slot, spark);
        }
        if (spark.button.parentElement !== cell) cell.replaceChildren(spark.button);
        if (Date.now() - spark.fetchedAt >= STALE_MS) {
          void drawSpark(row.slot, spark).catch((error) => deps.showError?.(`The chart of slot ${row.slot}`, error));
        }
      }
      panel.refresh(live);
    },
    updateGpus() {
      if (Date.now() - gpuFetchedAt < STALE_MS) return;
      gpuFetchedAt = Date.now();
      void deps.api
        .get<GpuUsage>("/api/v1/gpus/usage?since=hour")
        .then((usage) => {
          for (const plot of gpuPlots) plot.destroy();
          gpuPlots = [];
          gpuBox.replaceChildren(
            ...usage.gpus.map((gpu) => {
              const { labels, data } = gpuColumns(gpu);
              const box = h("div", { class: "chart", "data-gpu": gpu.index });
              const card = h(
                "article",
                { class: "card gpu-chart" },
                h("h3", {}, `GPU ${gpu.index}: memory by process`),
                box,
              );
              const plot = new uPlot(gpuOptions(labels, usage), data, box);
              box.dataset.points = String(plot.data[0].length);
              gpuPlots.push(plot);
              return card;
            }),
          );
        })
        .catch((error) => deps.showError?.("The GPU charts", error));
    },
  };
}

/** The panel with one slot's chart, its range buttons and its marks listed (for screen readers too). */
function usagePanel(api: Pick<ApiClient, "get">) {
  const title = h("h2", { id: "usage-title" }, "Usage");
  const chart = h("div", { id: "usage-chart", class: "chart" });
  const marks = h("ul", { id: "usage-marks", class: "usage-marks" });
  const state: { slot?: string; range: ChartRange; fetchedAt: number; plot?: uPlot; marks: UsageMark[] } = {
    range: "hour",
    fetchedAt: 0,
    marks: [],
  };
  const buttons = CHART_RANGES.map((range) =>
    h(
      "button",
      { type: "button", "data-range": range, "aria-pressed": "false", onclick: () => show(state.slot, range) },
      range,
    ),
  );
  const close = h("button", { type: "button", onclick: () => hide() }, "Close");
  const section = h(
    "section",
    { id: "usage-section", "aria-labelledby": "usage-title" },
    h("div", { class: "section-head" }, title, h("div", { class: "ranges" }, ...buttons), close),
    chart,
    marks,
  );
  section.hidden = true;

  const hide = () => {
    section.hidden = true;
    state.plot?.destroy();
    state.plot = undefined;
    state.slot = undefined;
  };
  const show = async (slot: string | undefined, range: ChartRange) => {
    if (slot === undefined) return;
    Object.assign(state, { slot, range, fetchedAt: Date.now() });
    section.hidden = false;
    title.textContent = `Slot ${slot} over the last ${range}`;
    for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.range === range));
    const series = await api.get<UsageSeries>(`/api/v1/processes/${slot}/usage?since=${range}`);
    if (state.slot !== slot || state.range !== range) return; // another slot or range was asked meanwhile
    state.marks = series.marks;
    state.plot?.destroy();
    const width = Math.max(320, chart.clientWidth || section.clientWidth || 800);
    state.plot = new uPlot(
      processOptions(series, width, () => state.marks),
      processColumns(series),
      chart,
    );
    chart.dataset.points = String(state.plot.data[0].length);
    chart.dataset.marks = String(series.marks.length);
    marks.replaceChildren(
      ...series.marks.map((m) =>
        h("li", { "data-kind": m.kind }, h("span", { class: `mark-dot mark-${m.kind}` }), markTitle(m)),
      ),
    );
  };
  return {
    section,
    open: (slot: string) => void show(slot, state.range),
    refresh(live: ReadonlySet<string>) {
      if (state.slot === undefined) return;
      if (!live.has(state.slot)) return;
      if (Date.now() - state.fetchedAt >= STALE_MS) void show(state.slot, state.range);
    },
  };
}

function sparkOptions(series: UsageSeries): uPlot.Options {
  return {
    width: 120,
    height: 32,
    legend: { show: false },
    cursor: { show: false },
    select: { show: false, left: 0, top: 0, width: 0, height: 0 },
    axes: [{ show: false }, { show: false }],
    scales: { x: { time: true, range: () => xRange(series) } },
    series: [{}, { label: "CPU %", stroke: SERIES_COLORS[0], width: 1.5, points: { show: false } }],
  };
}

function processOptions(series: UsageSeries, width: number, marks: () => readonly UsageMark[]): uPlot.Options {
  return {
    width,
    height: 280,
    scales: { x: { time: true, range: () => xRange(series) }, mib: {}, pct: {} },
    axes: [{}, { scale: "mib", label: "MiB" }, { scale: "pct", side: 1, label: "CPU %", grid: { show: false } }],
    series: [
      {},
      { label: "Memory (MiB)", scale: "mib", stroke: SERIES_COLORS[0], width: 2 },
      { label: "GPU memory (MiB)", scale: "mib", stroke: SERIES_COLORS[1], width: 2 },
      { label: "CPU %", scale: "pct", stroke: SERIES_COLORS[2], width: 1 },
    ],
    plugins: [marksPlugin(marks)],
  };
}

function gpuOptions(labels: readonly string[], usage: GpuUsage): uPlot.Options {
  return {
    width: 480,
    height: 200,
    scales: { x: { time: true, range: () => xRange({ ...usage, t: usage.gpus.flatMap((g) => g.t.slice(0, 1)) }) } },
    axes: [{}, { label: "MiB" }],
    series: [{}, ...labels.map((label, i) => ({ label, stroke: SERIES_COLORS[i % SERIES_COLORS.length], width: 2 }))],
  };
}

/**
 * The x range in seconds: the range asked for, starting no earlier than a step before the first
 * sample, so a server started a minute ago fills its chart instead of a sliver at the right edge.
 */
function xRange(series: {
  readonly since: number;
  readonly until: number;
  readonly step_ms: number;
  readonly t: readonly number[];
}): [number, number] {
  const first = series.t.length > 0 ? Math.min(...series.t) - series.step_ms : series.since;
  return [Math.max(series.since, first) / 1000, series.until / 1000];
}

/** Draws each mark as a coloured vertical line with its letter (L load, R restart, C crash, U unload). */
function marksPlugin(marks: () => readonly UsageMark[]): uPlot.Plugin {
  return {
    hooks: {
      draw: [
        (u: uPlot) => {
          const { ctx } = u;
          const { left, top, width, height } = u.bbox;
          const ratio = globalThis.devicePixelRatio || 1;
          for (const mark of marks()) {
            const x = u.valToPos(mark.t / 1000, "x", true);
            if (x < left || x > left + width) continue;
            const style = MARK_STYLE[mark.kind];
            ctx.save();
            ctx.strokeStyle = style.color;
            ctx.fillStyle = style.color;
            ctx.lineWidth = 2 * ratio;
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + height);
            ctx.stroke();
            ctx.font = `bold ${12 * ratio}px sans-serif`;
            ctx.fillText(style.letter, x + 3 * ratio, top + 12 * ratio);
            ctx.restore();
          }
        },
      ],
    },
  };
}
