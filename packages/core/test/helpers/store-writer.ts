// Adds entries to a registry one `update` at a time and prints each slot once its update resolved.
// usage: bun store-writer.ts <file> <first slot> <count|"forever"> [command_line bytes] [--lock=flock|pidfile]
import type { LockMethod } from "../../src/store/lock.ts";
import { createStore } from "../../src/store/store.ts";
import { storeEntry } from "./store-entry.ts";

const args = process.argv.slice(2);
const lockMethod = args.find((a) => a.startsWith("--lock="))?.slice("--lock=".length) as LockMethod | undefined;
const [file, firstArg, countArg, padArg] = args.filter((a) => !a.startsWith("--lock="));
if (!file || !firstArg || !countArg) throw new Error("usage: store-writer.ts <file> <first> <count|forever> [pad]");
const store = createStore({ file, lockTimeoutMs: 60_000, lockMethod });
const first = Number(firstArg);
const count = countArg === "forever" ? Number.POSITIVE_INFINITY : Number(countArg);
const pad = padArg ? ["x".repeat(Number(padArg))] : [];

for (let i = first; i < first + count; i++) {
  const slot = String(i);
  try {
    await store.update((entries) => {
      const entry = storeEntry(slot);
      entries[slot] = { ...entry, command_line: [...entry.command_line, ...pad] };
    });
  } catch (error) {
    const e = error as Error & { code?: string };
    console.log(JSON.stringify({ error: e.name, code: e.code, message: e.message }));
    process.exit(3);
  }
  console.log(slot);
}
