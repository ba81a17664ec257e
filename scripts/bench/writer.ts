/**
 * One writer process of scenario 4: registers `count` entries in slots `first`… of a home,
 * one durable `registry.register` each, starting when the parent writes "go".
 * usage: bun scripts/bench/writer.ts <home> <first slot> <count>
 * stdout: "ready", then one JSON line { first, count, startedAt, endedAt } (epoch ms, sub-ms).
 */
import { createRegistry } from "@corral/core";
import { entryFor } from "./entries.ts";

const [home, firstArg, countArg] = process.argv.slice(2);
if (!home || !firstArg || !countArg) throw new Error("usage: writer.ts <home> <first slot> <count>");
const first = Number(firstArg);
const count = Number(countArg);
const registry = createRegistry({ home, lockTimeoutMs: 120_000 });
const me = await registry.probe.get(process.pid);
if (!me) throw new Error("cannot probe this process");
const now = () => performance.timeOrigin + performance.now();

console.log("ready");
for await (const line of console) {
  if (line.trim() === "go") break;
}
const startedAt = now();
for (let slot = first; slot < first + count; slot++) {
  await registry.register(String(slot), entryFor(me, String(slot)), { reason: "bench writer" });
}
console.log(JSON.stringify({ first, count, startedAt, endedAt: now() }));
process.exit(0);
