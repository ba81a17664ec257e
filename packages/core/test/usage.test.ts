import { afterEach, describe, expect, it } from "bun:test";
import type { Subprocess } from "bun";
import { createUsageSampler, type UsageSampler } from "../src/process/usage.ts";

const started: Subprocess[] = [];

function start(cmd: string[]): Subprocess {
  const child = Bun.spawn(cmd, { stdout: "ignore", stderr: "ignore" });
  started.push(child);
  return child;
}

afterEach(async () => {
  for (const child of started.splice(0)) {
    child.kill("SIGKILL");
    await child.exited;
  }
});

// Three spinning threads: the child stays well above 20 % of a core even while other suites load the machine.
const BUSY = `for (let i = 0; i < 2; i++) new Worker(URL.createObjectURL(new Blob(["for (;;) {}"]))); for (;;) {}`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Samples twice, a second apart, and returns the second sample. */
async function twoSamples(sampler: UsageSampler, pids: number[]) {
  await sampler.sample(pids);
  await sleep(1000);
  return sampler.sample(pids);
}

describe.each(["procfs", "ps"] as const)("usage of real processes from %s", (source) => {
  it("shows a busy child using CPU and more than a megabyte of memory", async () => {
    const busy = start([process.execPath, "-e", BUSY]);
    await sleep(300);
    const usage = (await twoSamples(createUsageSampler({ source }), [busy.pid])).get(busy.pid);
    expect(usage).toBeDefined();
    expect(usage!.cpu_percent).toBeGreaterThan(20);
    expect(usage!.rss_bytes).toBeGreaterThan(1024 * 1024);
  }, 15_000);

  it("shows an idle sleep using next to no CPU", async () => {
    const idle = start(["sleep", "60"]);
    const usage = (await twoSamples(createUsageSampler({ source }), [idle.pid])).get(idle.pid);
    expect(usage).toBeDefined();
    expect(usage!.cpu_percent).toBeLessThan(5);
    // ps reports memory in tenths of a percent of RAM: a sleep rounds to 0 there.
    if (source === "procfs") expect(usage!.rss_bytes).toBeGreaterThan(0);
  }, 15_000);

  it("omits a PID whose process has exited", async () => {
    const gone = Bun.spawn(["true"]);
    await gone.exited;
    const alive = start(["sleep", "60"]);
    const usage = await createUsageSampler({ source }).sample([gone.pid, alive.pid]);
    expect(usage.has(gone.pid)).toBe(false);
    expect(usage.has(alive.pid)).toBe(true);
  }, 15_000);
});
