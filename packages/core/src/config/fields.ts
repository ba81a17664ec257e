import { ConfigError } from "../errors.ts";

/**
 * Field readers for the configuration file. Each one names the exact key path
 * (`models[2].port`) when it refuses a value, so a user can find the line at once.
 * A missing or `null` value means "use the default": YAML writes an empty key as null.
 */

/** Where the values being read came from, for error messages. */
export interface FieldContext {
  readonly file: string | undefined;
}

/**
 * Joins a parent key path and a child key.
 * @example
 * keyPath("models[0]", "port") // "models[0].port"
 * keyPath("", "host") // "host"
 */
export function keyPath(parent: string, child: string | number): string {
  if (typeof child === "number") return `${parent}[${child}]`;
  return parent ? `${parent}.${child}` : child;
}

/**
 * Throws the ConfigError for one key.
 * @example
 * fail({ file: "/h/corral.yaml" }, "host", "must not be empty")
 */
export function fail(ctx: FieldContext, key: string, reason: string, cause?: unknown): never {
  throw new ConfigError(key || "(root)", reason, ctx.file, cause === undefined ? undefined : { cause });
}

/**
 * A short rendering of a bad value for "got …" in messages.
 * @example
 * shown("x".repeat(100)) // '"xxxxxxxx…"' (at most 40 characters)
 */
export function shown(value: unknown): string {
  if (value === undefined) return "nothing";
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

/** Whether a value is absent in the file's sense (missing or an empty YAML key). */
export function absent(value: unknown): value is null | undefined {
  return value === undefined || value === null;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * Reads a mapping. With `known`, any other key is refused: typos in a config file
 * otherwise pass silently and the user wonders why the setting has no effect.
 * @default absent → undefined
 * @example
 * mapping(ctx, { load_ms: 1 }, "timeouts", ["load_ms", "stop_ms"]) // { load_ms: 1 }
 */
export function mapping(
  ctx: FieldContext,
  value: unknown,
  key: string,
  known?: readonly string[],
): Record<string, unknown> | undefined {
  if (absent(value)) return undefined;
  if (!isPlainObject(value)) fail(ctx, key, `must be a mapping of settings, got ${shown(value)}`);
  if (known) {
    for (const name of Object.keys(value)) {
      if (known.includes(name)) continue;
      const close = known.find((k) => editDistance(k, name) <= 2);
      fail(
        ctx,
        keyPath(key, name),
        `unknown setting${close ? ` (did you mean "${close}"?)` : ""}; known: ${known.join(", ")}`,
      );
    }
  }
  return value;
}

/**
 * Reads an integer within bounds.
 * @default absent → fallback
 * @example
 * integer(ctx, 300000, "timeouts.load_ms", 1000, { min: 1 }) // 300000
 */
export function integer(
  ctx: FieldContext,
  value: unknown,
  key: string,
  fallback: number,
  bounds: { readonly min?: number; readonly max?: number } = {},
): number {
  if (absent(value)) return fallback;
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = bounds;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    fail(ctx, key, `must be a whole number ${range}, got ${shown(value)}`);
  }
  return value;
}

/**
 * Reads a TCP port (1..65535).
 * @default absent → undefined
 * @example
 * port(ctx, 8081, "models[0].port") // 8081
 */
export function port(ctx: FieldContext, value: unknown, key: string): number | undefined {
  if (absent(value)) return undefined;
  return integer(ctx, value, key, 0, { min: 1, max: 65535 });
}

/**
 * Reads a non-empty string.
 * @default absent → fallback
 * @example
 * text(ctx, "127.0.0.1", "host", "127.0.0.1") // "127.0.0.1"
 */
export function text<F extends string | undefined>(
  ctx: FieldContext,
  value: unknown,
  key: string,
  fallback: F,
): string | F {
  if (absent(value)) return fallback;
  if (typeof value !== "string" || value.trim() === "")
    fail(ctx, key, `must be a non-empty string, got ${shown(value)}`);
  return value;
}

/**
 * Reads a list of non-empty strings; a lone string counts as a list of one.
 * @default absent → []
 * @example
 * strings(ctx, ["http://a"], "webhooks") // ["http://a"]
 */
export function strings(ctx: FieldContext, value: unknown, key: string): string[] {
  if (absent(value)) return [];
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list)) fail(ctx, key, `must be a list of strings, got ${shown(value)}`);
  return list.map(
    (item, i) => text(ctx, item, keyPath(key, i), undefined) ?? fail(ctx, keyPath(key, i), "must not be empty"),
  );
}
