/**
 * Scenario 4: 4 writer processes register 250 entries each at the same moment, into one
 * registry. Figures: the total time from "go" to the last acknowledged registration, and
 * how many registrations are missing afterwards from processes.json and from history.jsonl
 * (target: 0 lost).
 */
import { join } from "node:path";
import { createRegistry } from "@corral/core";
import { figure, round, type Scenario, within } from "./harness.ts";

const WRITERS = 4;
const EACH = 250;

export const writersScenario: Scenario = {
  scenario: 4,
  name: "concurrent writers",
  async run(ctx) {
    const home = ctx.tracker.tempDir("writers");
    const script = join(import.meta.dir, "writer.ts");
    const writers = Array.from({ length: WRITERS }, (_, w) =>
      ctx.tracker.process(
        Bun.spawn([process.execPath, script, home, String(w * EACH), String(EACH)], {
          stdin: "pipe",
          stdout: "pipe",
          stderr: "pipe",
        }),
      ),
    );
    const outputs = writers.map((w) => lines(w.stdout));
    // Everyone loads its modules and probes itself first, so "go" starts the writes together.
    await within(Promise.all(outputs.map((o) => o.next())), 30_000, "writers getting ready");
    for (const w of writers) {
      w.stdin.write("go\n");
      await w.stdin.flush();
    }
    const results = await within(
      Promise.all(outputs.map((o) => o.next())),
      180_000,
      `${WRITERS} writers × ${EACH} registrations`,
    );
    const codes = await within(Promise.all(writers.map((w) => w.exited)), 10_000, "writers exiting");
    if (codes.some((c) => c !== 0)) {
      const errors = await Promise.all(writers.map((w) => new Response(w.stderr).text()));
      throw new Error(`a writer failed (exit codes ${codes.join(", ")}): ${errors.join("\n").slice(0, 600)}`);
    }
    const reports = results.map((r) => JSON.parse(r ?? "{}") as { startedAt: number; endedAt: number });
    const total = Math.max(...reports.map((r) => r.endedAt)) - Math.min(...reports.map((r) => r.startedAt));
    const registry = createRegistry({ home });
    const { entries } = await registry.store.read();
    const expected = WRITERS * EACH;
    let present = 0;
    for (let slot = 0; slot < expected; slot++) if (entries[String(slot)]) present++;
    const events = await registry.history.read({ limit: expected * 2 });
    const registered = new Set(events.filter((e) => e.event === "registered").map((e) => e.slot));
    ctx.log(`writers: ${total.toFixed(0)} ms, ${expected - present} lost`);
    return [
      figure(
        4,
        "writers.total",
        `${WRITERS} writers × ${EACH} registrations, total`,
        round(total),
        "ms",
        undefined,
        `${round(total / expected)} ms per registration; from "go" to the last acknowledged one`,
      ),
      figure(4, "writers.lost", "  registrations lost (processes.json)", expected - present, "", { op: "=", value: 0 }),
      figure(4, "writers.lost.history", "  registrations lost (history.jsonl)", expected - registered.size, "", {
        op: "=",
        value: 0,
      }),
    ];
  },
};

/** The lines of a child's stdout, one `next()` at a time (undefined at the end). */
function lines(stream: ReadableStream<Uint8Array>): { next(): Promise<string | undefined> } {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  return {
    async next() {
      for (;;) {
        const at = buffer.indexOf("\n");
        if (at >= 0) {
          const line = buffer.slice(0, at);
          buffer = buffer.slice(at + 1);
          return line;
        }
        const { value, done } = await reader.read();
        if (done) return buffer ? buffer : undefined;
        buffer += decoder.decode(value, { stream: true });
      }
    },
  };
}
