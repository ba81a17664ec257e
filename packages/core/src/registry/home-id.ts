import { createHash } from "node:crypto";
import { realpathSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

/**
 * A stable id for a home folder; corral puts it in the environment of every process it
 * starts, so orphans can be told apart from other homes' processes and strangers.
 * @example
 * homeIdOf("/var/lib/corral") // "3f1a9c0d2b7e4a51"
 */
export function homeIdOf(home: string): string {
  return createHash("sha256")
    .update(canonicalPath(resolve(home)))
    .digest("hex")
    .slice(0, 16);
}

/**
 * The real path of `path`, even before it exists: the deepest existing ancestor is resolved
 * (so /tmp → /private/tmp on macOS gives the same id before and after the home is created).
 */
function canonicalPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(canonicalPath(parent), basename(path));
  }
}
