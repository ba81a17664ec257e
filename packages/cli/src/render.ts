/**
 * Human output: aligned tables, a few colours (off under `NO_COLOR`, or when stdout is not a
 * terminal, unless `FORCE_COLOR`), short durations and sizes. Machine output is plain JSON.
 */

/**
 * Whether to colour output: never under `NO_COLOR`, always under `FORCE_COLOR`, else on a terminal.
 * @default env = process.env, isTTY = whether stdout is a terminal
 * @example
 * colorEnabled({ NO_COLOR: "1" }, true) // false
 */
export function colorEnabled(
  env: Readonly<Record<string, string | undefined>> = process.env,
  isTTY: boolean = process.stdout.isTTY === true,
): boolean {
  // https://no-color.org: present and not empty disables colour, whatever its value.
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0") return true;
  return isTTY && env.TERM !== "dumb";
}

const USE_COLOR = colorEnabled();

function paint(open: number, close: number): (text: string) => string {
  return (text) => (USE_COLOR ? `\u001b[${open}m${text}\u001b[${close}m` : text);
}

/**
 * ANSI styles that turn into the identity function when colour is off.
 * @example
 * style.green("running") // "\u001b[32mrunning\u001b[39m", or "running" under NO_COLOR
 */
export const style = {
  bold: paint(1, 22),
  dim: paint(2, 22),
  red: paint(31, 39),
  green: paint(32, 39),
  yellow: paint(33, 39),
  cyan: paint(36, 39),
} as const;

// biome-ignore lint/suspicious/noControlCharactersInRegex: ESC is what an ANSI colour sequence starts with
const ANSI = /\u001b\[[0-9;]*m/g;

/**
 * Width of a string as shown: without colour codes.
 * @example
 * visibleWidth(style.green("ok")) // 2
 */
export function visibleWidth(text: string): number {
  return text.replace(ANSI, "").length;
}

/** One column of a {@link table}. */
export interface Column<Row> {
  readonly header: string;
  readonly cell: (row: Row) => string;
  /** @default "left" */
  readonly align?: "left" | "right";
}

/**
 * Lines of an aligned table with a dimmed header; the last column is never padded.
 * @example
 * table([{ n: "a", v: 1 }], [{ header: "NAME", cell: (r) => r.n }, { header: "V", cell: (r) => String(r.v), align: "right" }])
 * // ["NAME  V", "a     1"]
 */
export function table<Row>(rows: readonly Row[], columns: readonly Column<Row>[]): string[] {
  const cells = rows.map((row) => columns.map((c) => c.cell(row)));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => visibleWidth(r[i] ?? ""))));
  const line = (values: readonly string[]) =>
    values
      .map((value, i) => {
        const last = i === values.length - 1;
        const pad = " ".repeat(Math.max(0, (widths[i] ?? 0) - visibleWidth(value)));
        if (columns[i]?.align === "right") return pad + value;
        return last ? value : value + pad;
      })
      .join("  ")
      .trimEnd();
  return [style.dim(line(columns.map((c) => c.header))), ...cells.map(line)];
}

/**
 * A duration as a person reads it.
 * @example
 * duration(3_723_000) // "1h 2m"
 * duration(850) // "850ms"
 */
export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "-";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/**
 * A byte count in binary units.
 * @example
 * bytes(1_572_864) // "1.5 MiB"
 */
export function bytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 || value >= 100 ? 0 : 1)} ${units[unit]}`;
}

/**
 * A time stamp shortened to local date and time; unparsable input is shown as given.
 * @example
 * when("2026-11-26T12:00:00.000Z") // "2026-11-26 12:00:00" (in the local zone)
 */
export function when(iso: string | number | undefined): string {
  if (iso === undefined) return "-";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/**
 * A state word coloured by what it means: green for good, yellow for in between, red for bad.
 * @example
 * stateWord("running") // "\u001b[32mrunning\u001b[39m" (when colour is on)
 */
export function stateWord(state: string | undefined): string {
  if (state === undefined) return "-";
  if (["running", "ok", "ours", "true"].includes(state)) return style.green(state);
  if (["loading", "stopping", "likely-ours", "unknown", "access-denied"].includes(state)) return style.yellow(state);
  return style.red(state);
}

/**
 * Machine output: stable, indented JSON with a trailing newline.
 * @example
 * json({ ok: true }) // '{\n  "ok": true\n}\n'
 */
export function json(value: unknown): string {
  return `${JSON.stringify(value ?? null, null, 2)}\n`;
}

/**
 * Shortens a long text to `max` characters with an ellipsis.
 * @example
 * clip("/very/long/path/model.gguf", 12) // "…/model.gguf"
 */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  return `…${text.slice(text.length - max + 1)}`;
}
