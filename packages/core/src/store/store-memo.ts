import type { BigIntStats } from "node:fs";
import { REGISTRY_VERSION } from "./schema.ts";

/**
 * What a store last read or wrote, so that a file it already knows is neither parsed nor rendered
 * again: at 1000 entries JSON.parse and JSON.stringify were half the time of a register. The file
 * is the known one while its device, inode, size, mtime and ctime are: a writer that follows the
 * protocol renames a new file into place (a new inode), and an edit in place moves mtime and ctime
 * (Linux 6.13+ makes them fine-grained once stat'ed; on older kernels an edit in place of the same
 * size within one timer tick of the store's own write could go unseen until the file next changes).
 * Its objects never leave the store: callers get copies.
 */
export interface Memo {
  /** {@link statKey} of the file this describes */
  readonly key: string;
  readonly version: string;
  readonly last_updated: string;
  readonly processes: Record<string, unknown>;
  readonly extra: Record<string, unknown>;
  /** slot → the text `render` gave `processes[slot]`, filled as it renders */
  readonly rendered: Map<string, string>;
}

/**
 * The identity of one version of a file (see {@link Memo}).
 * @example
 * statKey(fstatSync(fd, { bigint: true })) // "2049:1234:512:…"
 */
export function statKey(s: BigIntStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

/**
 * What the store knows after writing `processes`: its own copies (an entry rendered from the
 * previous memo's unchanged value keeps that value; others are parsed back from their text).
 * @example
 * memo.current = remember(key, last_updated, processes, extra, memo.current, rendered)
 */
export function remember(
  key: string,
  last_updated: string,
  processes: Record<string, unknown>,
  extra: Record<string, unknown>,
  previous: Memo | undefined,
  rendered: Map<string, string>,
): Memo {
  const own: Record<string, unknown> = {};
  for (const slot of Object.keys(processes)) {
    const text = rendered.get(slot);
    // What JSON left out (an undefined value) is not in the file, so not in its memory either.
    if (text === undefined) continue;
    const same = previous !== undefined && previous.rendered.get(slot) === text;
    setOwn(own, slot, same ? previous.processes[slot] : JSON.parse(text));
  }
  const extraCopy = Object.keys(extra).length === 0 ? {} : structuredClone(extra);
  return { key, version: REGISTRY_VERSION, last_updated, processes: own, extra: extraCopy, rendered };
}

/**
 * Assignment that also works for a slot a hostile file names "__proto__" (which `=` would not store).
 * @example
 * setOwn(entries, slot, entry)
 */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  // defineProperty is about ten times slower than `=`, which is right for every other key.
  if (key === "__proto__")
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}
