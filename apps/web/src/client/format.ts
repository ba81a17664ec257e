/** Pure formatting of the figures the page shows. */

/**
 * What a cell shows where the API gave no figure.
 * @example
 * cell.textContent = row.port ?? NONE
 */
export const NONE = "—";

/**
 * Bytes as KiB/MiB/GiB with one decimal where it helps.
 * @example
 * formatBytes(1536 * 1024 * 1024) // "1.5 GiB"
 */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return NONE;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/**
 * MiB (as nvidia-smi reports) in the same style as {@link formatBytes}.
 * @example
 * formatMib(2048) // "2.0 GiB"
 */
export function formatMib(mib: number | undefined): string {
  return mib === undefined ? NONE : formatBytes(mib * 1024 * 1024);
}

/**
 * A duration as its two largest units.
 * @example
 * formatUptime(93_784_000) // "1d 2h"
 * formatUptime(65_000) // "1m 5s"
 */
export function formatUptime(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return NONE;
  const s = Math.floor(ms / 1000);
  const parts: Array<[number, string]> = [
    [Math.floor(s / 86_400), "d"],
    [Math.floor((s % 86_400) / 3600), "h"],
    [Math.floor((s % 3600) / 60), "m"],
    [s % 60, "s"],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  if (first === -1) return "0s";
  return parts
    .slice(first, first + 2)
    .map(([n, u]) => `${n}${u}`)
    .join(" ");
}

/**
 * A CPU figure, percent of one core.
 * @example
 * formatPercent(12.345) // "12.3 %"
 */
export function formatPercent(percent: number | undefined): string {
  if (percent === undefined || !Number.isFinite(percent)) return NONE;
  return `${percent.toFixed(percent >= 100 ? 0 : 1)} %`;
}

/**
 * A GPU's memory as "used / total" with the share used (0..1) for a meter.
 * @example
 * gpuMemory(4096, 8192) // { text: "4.0 GiB / 8.0 GiB", share: 0.5 }
 */
export function gpuMemory(
  usedMib: number | undefined,
  totalMib: number | undefined,
): { text: string; share: number | undefined } {
  const share = usedMib !== undefined && totalMib ? Math.min(1, Math.max(0, usedMib / totalMib)) : undefined;
  return { text: `${formatMib(usedMib)} / ${formatMib(totalMib)}`, share };
}

/**
 * An ISO time as local date and time; the input itself where it does not parse.
 * @example
 * formatTime("2026-11-26T12:00:00.000Z") // "2026-11-26 13:00:00" in Europe/Paris
 */
export function formatTime(iso: string | undefined): string {
  if (!iso) return NONE;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/**
 * A command line for display: arguments joined, the ones with spaces quoted.
 * @example
 * formatCommand(["llama-server", "-m", "/models/my model.gguf"]) // 'llama-server -m "/models/my model.gguf"'
 */
export function formatCommand(cmd: readonly string[] | string | undefined): string {
  if (cmd === undefined) return NONE;
  if (typeof cmd === "string") return cmd;
  return cmd.map((a) => (/[\s"]/.test(a) ? JSON.stringify(a) : a)).join(" ");
}
