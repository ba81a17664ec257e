import { readdirSync, statSync } from "node:fs";
import { dirname, join, resolve as resolvePath } from "node:path";
import { InvalidInputError } from "../errors.ts";
import type { Registry } from "../registry/registry.ts";
import { followFile, tailFile } from "../server/logs.ts";
import { slotKey } from "../slots.ts";
import { effectiveUid } from "../store/secure-fs.ts";

/**
 * A slot's log: the registered one, else the newest `slot-<slot>-*.log` in the logs folder.
 * @example
 * await slotLogFile(registry, "0") // "/home/me/.local/state/corral/logs/slot-0-qwen-20261126T120000Z.log"
 */
export async function slotLogFile(registry: Registry, slot: string): Promise<string | undefined> {
  const key = slotKey(slot);
  const entry = await registry.get(key);
  if (entry?.log_file) return entry.log_file;
  const prefix = `slot-${key.replaceAll(",", "_")}-`;
  const logs = registry.paths.logs;
  let names: string[];
  try {
    names = readdirSync(logs).filter((n) => n.startsWith(prefix) && n.endsWith(".log"));
  } catch {
    return undefined;
  }
  const newest = names
    .map((n) => ({ file: join(logs, n), mtime: statSync(join(logs, n)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime)[0];
  return newest?.file;
}

/**
 * The last lines of a slot's log, or none when it never had one.
 * @example
 * await slotLogs(registry, "0", 50)
 */
export async function slotLogs(registry: Registry, slot: string, lines: number): Promise<string[]> {
  const file = await slotLogFile(registry, slot);
  return file ? tailFile(file, lines, await logOwners(registry, slot, file)) : [];
}

/**
 * Follows a slot's log until `signal` aborts, `tail` lines back first.
 * @throws InvalidInputError when the slot has no log
 * @example
 * await followSlotLog(registry, "0", (l) => console.log(l.join("\n")), ac.signal, 20)
 */
export async function followSlotLog(
  registry: Registry,
  slot: string,
  onLines: (lines: string[]) => void,
  signal: AbortSignal | undefined,
  tail: number,
  onReady?: () => void,
): Promise<void> {
  const file = await slotLogFile(registry, slot);
  if (!file) throw new InvalidInputError("slot", `slot "${slot}" has no log`);
  await followFile(file, onLines, { signal, backLines: tail, owners: await logOwners(registry, slot, file), onReady });
}

/**
 * Who may own a slot's log: corral for files in its own logs folder; elsewhere (an adopted
 * server's stdout file) only the user the llama-server runs as, so a path through another
 * user's folders can never lead corral to a file of its own, such as root's /etc/shadow.
 */
async function logOwners(registry: Registry, slot: string, file: string): Promise<Array<number | undefined>> {
  if (dirname(resolvePath(file)) === registry.paths.logs) return [effectiveUid()];
  const entry = await registry.get(slotKey(slot));
  return [entry?.uid ?? effectiveUid()];
}
