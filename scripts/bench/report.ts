/** The results table on stdout and the same figures as JSON. */
import { cpus, loadavg, release } from "node:os";
import type { Figure } from "./harness.ts";

/** What bench-results.json holds. */
export interface BenchReport {
  readonly date: string;
  readonly quick: boolean;
  readonly machine: {
    readonly cpus: number;
    readonly cpu_model: string;
    readonly bun: string;
    readonly os: string;
    /** 1-minute load average at the start and the end: other work on the host skews timings */
    readonly loadavg_start: number;
    readonly loadavg_end: number;
  };
  readonly wall_s: number;
  readonly figures: readonly Figure[];
  /** scenarios that could not run to the end, with why */
  readonly errors: readonly { scenario: number; name: string; error: string }[];
  readonly summary: { readonly passed: number; readonly failed: number; readonly info: number };
}

/**
 * Assembles the report.
 * @example
 * const report = buildReport({ quick, figures, errors, startedAt, loadStart })
 */
export function buildReport(input: {
  quick: boolean;
  figures: readonly Figure[];
  errors: BenchReport["errors"];
  startedAt: number;
  loadStart: number;
}): BenchReport {
  const { figures } = input;
  return {
    date: new Date(input.startedAt).toISOString(),
    quick: input.quick,
    machine: {
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model.trim() ?? "unknown",
      bun: Bun.version,
      os: `${process.platform} ${release()}`,
      loadavg_start: Number(input.loadStart.toFixed(2)),
      loadavg_end: Number((loadavg()[0] ?? 0).toFixed(2)),
    },
    wall_s: Math.round((Date.now() - input.startedAt) / 100) / 10,
    figures,
    errors: input.errors,
    summary: {
      passed: figures.filter((f) => f.pass === true).length,
      failed: figures.filter((f) => f.pass === false).length + input.errors.length,
      info: figures.filter((f) => f.pass === null).length,
    },
  };
}

/**
 * The table: figure, value, target, pass/fail; then notes and errors.
 * @example
 * console.log(renderTable(report))
 */
export function renderTable(report: BenchReport): string {
  const rows = report.figures.map((f) => [
    String(f.scenario),
    f.figure,
    f.value === null ? "-" : `${f.value.toLocaleString("en-US")}${f.unit ? ` ${f.unit}` : ""}`,
    f.target ? `${f.target.op} ${f.target.value.toLocaleString("en-US")}${f.unit ? ` ${f.unit}` : ""}` : "",
    f.pass === true ? "pass" : f.pass === false ? "FAIL" : f.target ? "-" : "info",
  ]);
  const header = ["#", "figure", "value", "target", "result"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 2 || i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  const m = report.machine;
  const out = [
    `corral bench ${report.date}${report.quick ? " (--quick)" : ""}: ${m.cpus} × ${m.cpu_model}, Bun ${m.bun}, ${m.os}; ` +
      `load average ${m.loadavg_start} at start, ${m.loadavg_end} at end; ${report.wall_s} s`,
    "",
    line(header),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
    "",
    ...report.figures.filter((f) => f.note).map((f) => `  ${f.id}: ${f.note}`),
    ...report.errors.map((e) => `ERROR in scenario ${e.scenario} (${e.name}): ${e.error}`),
    "",
    `${report.summary.passed} passed, ${report.summary.failed} failed, ${report.summary.info} without a target`,
  ];
  return out.join("\n");
}
