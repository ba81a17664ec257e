/**
 * The original controller's Python registry (original_registry.py, psutil), run as a child that
 * answers one command per line with the time it measured itself, so corral and the original can
 * be timed in the same run, interleaved. It needs an interpreter with psutil: Debian's
 * /usr/bin/python3 with python3-psutil here (pyenv's python3 has none and PyPI is unreachable).
 */
import { join } from "node:path";
import { type Figure, figure, median, round, type Tracker } from "./harness.ts";

/** A running original registry. */
export interface Original {
  readonly python: string;
  /** Sends one command; resolves to the time the original took for it and what it answered. */
  ask(command: string): Promise<{ ms: number; result: unknown }>;
  close(): Promise<void>;
}

const SCRIPT = join(import.meta.dir, "original_registry.py");
const INTERPRETERS = ["/usr/bin/python3", "python3"];

/**
 * Starts the original registry, or says in one line why it cannot.
 * @example
 * const original = await startOriginal(ctx.tracker);
 * if (typeof original === "string") ctx.log(original);
 */
export async function startOriginal(tracker: Tracker): Promise<Original | string> {
  const python = INTERPRETERS.find((p) => {
    const which = p.startsWith("/") ? p : Bun.which(p);
    return which && Bun.spawnSync([which, "-c", "import psutil"], { stderr: "ignore" }).exitCode === 0;
  });
  if (!python) {
    return "the comparison with the original (Python, psutil) was skipped: no python3 here can import psutil (apt-get install python3-psutil)";
  }
  const child = tracker.process(Bun.spawn([python, SCRIPT], { stdin: "pipe", stdout: "pipe", stderr: "inherit" }));
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  const nextLine = async (): Promise<string> => {
    for (;;) {
      const newline = pending.indexOf("\n");
      if (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        return line;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error("the original registry exited");
      pending += decoder.decode(value, { stream: true });
    }
  };
  return {
    python,
    async ask(command) {
      child.stdin.write(`${command}\n`);
      await child.stdin.flush();
      return JSON.parse(await nextLine()) as { ms: number; result: unknown };
    },
    async close() {
      child.stdin.write("quit\n");
      await child.stdin.end();
      await child.exited;
    },
  };
}

/**
 * The figures comparing a measurement with the original's: its time and the ratio, or one figure
 * saying why the comparison was skipped.
 * @example
 * figures.push(...originalFigures(2, "findOrphans", "find_orphaned_processes", original, samples.original, corral, "same registry"))
 */
export function originalFigures(
  scenario: number,
  key: string,
  theirName: string,
  original: Original | string,
  samples: readonly number[],
  ours: number,
  note: string,
): Figure[] {
  const label = `  original ${theirName} (psutil)`;
  if (typeof original === "string")
    return [figure(scenario, `${key}.original`, label, null, "ms", undefined, original)];
  const theirs = median([...samples]);
  const ourName = key.split(".")[0];
  return [
    figure(scenario, `${key}.original`, label, round(theirs), "ms", undefined, `${original.python}, ${note}`),
    figure(scenario, `${key}.vs-original`, `  ${ourName} / original`, round(ours / theirs), "×"),
  ];
}
