import { InvalidInputError } from "./errors.ts";

/**
 * The one slot grammar, as a regular-expression source: a GPU index 0-999 without leading zeros,
 * or up to 16 of them separated by commas. The API's schemas and the page's form fields use it.
 * @example
 * new RegExp(SLOT_PATTERN).test("0,1") // true; "01" and "0, 1" are not slot keys
 */
export const SLOT_PATTERN = "^(0|[1-9]\\d{0,2})(,(0|[1-9]\\d{0,2})){0,15}$";

const SLOT_RE = new RegExp(SLOT_PATTERN);

/**
 * Validates a slot key: one GPU index ("0") or a comma list ("0,1"). Anything else,
 * path tricks included, is refused.
 * @example
 * parseSlot("0,1") // [0, 1]
 */
export function parseSlot(slot: string): number[] {
  if (typeof slot !== "string" || !SLOT_RE.test(slot)) {
    throw new InvalidInputError("slot", `"${String(slot).slice(0, 40)}" is not a GPU index or a list like "0,1"`);
  }
  const gpus = slot.split(",").map(Number);
  if (new Set(gpus).size !== gpus.length) throw new InvalidInputError("slot", `"${slot}" names a GPU twice`);
  return gpus;
}

/**
 * The canonical slot key for a GPU selection: sorted, comma-separated.
 * @example
 * slotKey([1, 0]) // "0,1"
 * slotKey("1") // "1"
 */
export function slotKey(gpu: number | string | readonly number[]): string {
  const gpus =
    typeof gpu === "number" ? [gpu] : typeof gpu === "string" ? parseSlot(gpu.replace(/\s+/g, "")) : [...gpu];
  for (const g of gpus) {
    if (!Number.isInteger(g) || g < 0 || g > 999) throw new InvalidInputError("gpu", `${g} is not a GPU index`);
  }
  return [...new Set(gpus)].sort((a, b) => a - b).join(",");
}

/**
 * The GPUs an entry's `gpu_id` names (a number in the original's files, or "0,1").
 * @example
 * entryGpus({ gpu_id: "0,1" }) // [0, 1]
 */
export function entryGpus(entry: { gpu_id: number | string }): number[] {
  if (typeof entry.gpu_id === "number") return [entry.gpu_id];
  try {
    return parseSlot(entry.gpu_id.replace(/\s+/g, ""));
  } catch {
    return [];
  }
}

/**
 * Whether two GPU selections share a GPU ("0,1" overlaps "1").
 * @example
 * slotsOverlap("0,1", "1") // true
 */
export function slotsOverlap(a: string, b: string): boolean {
  const left = new Set(parseSlot(a));
  return parseSlot(b).some((g) => left.has(g));
}
