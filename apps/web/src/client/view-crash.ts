/** A crash report, one click away in the history: how the server ended, its last figures, its last log lines. */
import type { CrashReport } from "@corral/core/views";
import { h } from "./dom.ts";
import { formatBytes, formatMib, formatPercent, formatTime, formatUptime, NONE } from "./format.ts";

/**
 * How a server ended, as far as corral can tell.
 * @example
 * exitText({ code: null, signal: "SIGSEGV", known: true }) // "signal SIGSEGV"
 */
export function exitText(exit: CrashReport["exit"]): string {
  if (!exit.known) return exit.note ?? "exit status unknown";
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}

/**
 * A `<details>` that opens (one click) on the whole report.
 * @example
 * item.append(crashDetails(event.report))
 */
export function crashDetails(report: CrashReport): HTMLElement {
  const field = (label: string, value: string) => [h("dt", {}, label), h("dd", {}, value)];
  const usage = report.usage;
  const slots = report.slots
    ? `${report.slots.slots.filter((s) => s.is_processing).length} of ${report.slots.slots.length} busy at ${formatTime(report.slots.at)}`
    : NONE;
  return h(
    "details",
    { class: "crash-report" },
    h("summary", {}, `Crash report: ${exitText(report.exit)}`),
    h(
      "dl",
      {},
      ...field("How", exitText(report.exit)),
      ...field("Uptime", formatUptime(report.uptime_ms)),
      ...field("CPU", formatPercent(usage?.cpu_percent)),
      ...field("Memory", formatBytes(usage?.rss_bytes)),
      ...field("GPU memory", formatMib(usage?.gpu_memory_mib)),
      ...field("Slots", slots),
      ...field("Restart", report.restart.reason),
      ...field("Log", report.log_file ?? NONE),
    ),
    h("pre", { class: "log-tail", tabindex: 0, "aria-label": "Last log lines" }, report.log_tail.join("\n")),
  );
}
