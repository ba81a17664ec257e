import { REGISTRY_VERSION } from "./schema.ts";
import type { Memo } from "./store-memo.ts";

/**
 * The file's text: exactly `JSON.stringify({ version, last_updated, processes, ...extra }, null, 2)`
 * plus a newline, built entry by entry so that an entry equal to the one `known` rendered keeps
 * its text (at 1000 entries a register then stringifies one entry, not the whole file).
 * `rendered` receives each slot's text.
 * @example
 * const text = render({ last_updated, processes, extra: {} }, memo.current, rendered)
 */
export function render(
  doc: { last_updated: string; processes: Record<string, unknown>; extra: Record<string, unknown> },
  known?: Memo,
  rendered = new Map<string, string>(),
): string {
  const fields = [
    `  "version": ${JSON.stringify(REGISTRY_VERSION)}`,
    `  "last_updated": ${JSON.stringify(doc.last_updated)}`,
  ];
  const slots: string[] = [];
  for (const [slot, value] of Object.entries(doc.processes)) {
    const before = known?.rendered.get(slot);
    const text = before !== undefined && Bun.deepEquals(known?.processes[slot], value) ? before : nested(value, "    ");
    if (text === undefined) continue;
    rendered.set(slot, text);
    slots.push(`    ${JSON.stringify(slot)}: ${text}`);
  }
  fields.push(slots.length === 0 ? `  "processes": {}` : `  "processes": {\n${slots.join(",\n")}\n  }`);
  for (const [key, value] of Object.entries(doc.extra)) {
    const text = nested(value, "  ");
    if (text !== undefined) fields.push(`  ${JSON.stringify(key)}: ${text}`);
  }
  return `{\n${fields.join(",\n")}\n}\n`;
}

/** A value as `JSON.stringify(…, null, 2)` writes it `indent` deep (undefined where JSON leaves it out). */
function nested(value: unknown, indent: string): string | undefined {
  const text = JSON.stringify(value, null, 2) as string | undefined;
  return text?.replaceAll("\n", `\n${indent}`);
}
