/**
 * Scenario 5: the server under load. `corral serve` (the real CLI, as a user starts it) over
 * a home with 16 tracked stand-in llama-servers; `wrk` hammers `GET /api/v1/processes`.
 * Targets: over 5,000 requests/s, p99 under 10 ms, resident memory idle and after the load
 * under 80 MB. Honesty under load: a sampler beside wrk records how old the served status is
 * (`checked_at`) when it arrives, and a second load kills one server mid-run to time how long
 * the API keeps calling it running.
 */
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import type { ProcessStatus } from "../../packages/core/src/index.ts";
import { freePort } from "../../packages/core/test/fixtures/index.ts";
import { fleet, FLEET_SIZE } from "./fleet.ts";
import { figure, isAlive, median, round, rssBytes, within, type Figure, type Scenario } from "./harness.ts";
import { hasWrk, runWrk } from "./wrk.ts";

const REPO = join(import.meta.dir, "..", "..");
const CLI = join(REPO, "packages", "cli", "src", "main.ts");
const MB = 1024 * 1024;

export const serverScenario: Scenario = {
  scenario: 5,
  name: "server under load",
  async run(ctx) {
    if (!hasWrk()) {
      return [figure(5, "server.rps", "GET /api/v1/processes, requests/s", null, "req/s", { op: ">", value: 5000 },
        "not measured: wrk is not installed (apt-get install wrk)")];
    }
    const f = await fleet(ctx.tracker);
    const port = await freePort();
    const logFile = join(ctx.tracker.tempDir("server-log"), "serve.log");
    // The request log goes to a file, as under a service manager; a pipe we never read would stall it.
    const fd = openSync(logFile, "a");
    const server = ctx.tracker.process(
      Bun.spawn([process.execPath, CLI, "serve", "--home", f.home, "--config", f.configFile, "--port", String(port)], {
        cwd: REPO,
        stdio: ["ignore", fd, fd],
      }),
    );
    closeSync(fd);
    const base = `http://127.0.0.1:${port}`;
    const url = `${base}/api/v1/processes`;
    const figures: Figure[] = [];
    try {
      await within(waitUp(url, server.exited), 30_000, "corral serve answering");
      const first = await rows(url);
      const healthy = first.filter((r) => r.state === "running" && r.health?.state === "ok").length;
      if (first.length !== FLEET_SIZE || healthy !== FLEET_SIZE) {
        throw new Error(`expected ${FLEET_SIZE} running, healthy rows; got ${first.length} rows, ${healthy} healthy`);
      }
      await Bun.sleep(1000);
      const idle = rssBytes(server.pid) ?? Number.NaN;
      const seconds = ctx.quick ? 3 : 10;
      const sampler = sampleFreshness(url);
      const load = await runWrk({ url, seconds, connections: 16 }, ctx.tracker);
      const fresh = await sampler.stop();
      const after = rssBytes(server.pid) ?? Number.NaN;
      await Bun.sleep(3000);
      const settled = rssBytes(server.pid) ?? Number.NaN;
      ctx.log(`server: ${load.requestsPerSec.toFixed(0)} req/s, p99 ${load.p99} ms, rss ${(idle / MB).toFixed(0)} → ${(after / MB).toFixed(0)} MB`);
      const errors = load.non2xx + load.socketErrors;
      figures.push(
        figure(5, "server.rps", "GET /api/v1/processes, requests/s", Math.round(load.requestsPerSec), "req/s", { op: ">", value: 5000 },
          `wrk -t1 -c16 -d${seconds}s, ${FLEET_SIZE} tracked servers; ${load.requests} requests, ${errors} errors or non-2xx`),
        figure(5, "server.p50", "  latency p50", round(load.p50), "ms"),
        figure(5, "server.p99", "  latency p99", round(load.p99), "ms", { op: "<", value: 10 }),
        figure(5, "server.rss.idle", "  server RSS idle", round(idle / MB), "MB", { op: "<", value: 80 }, "VmRSS of the `corral serve` process, 1 s after start-up"),
        figure(5, "server.rss.after", "  server RSS right after the load", round(after / MB), "MB", { op: "<", value: 80 }),
        figure(5, "server.rss.settled", "  server RSS 3 s after the load", round(settled / MB), "MB"),
        figure(5, "server.fresh.max", "  status age served under load, max", round(fresh.max), "ms", undefined,
          `now − oldest checked_at when a response arrives; ${fresh.samples} samples beside wrk, median ${round(fresh.median)} ms; ` +
            `${fresh.wrong} rows not running+healthy`),
      );
      figures.push(...(await crashUnderLoad(ctx, f, url, seconds)));
    } finally {
      server.kill("SIGTERM");
      const code = await within(server.exited, 10_000, "corral serve stopping").catch(() => undefined);
      if (code === undefined) server.kill("SIGKILL");
    }
    // The CLI scenario needs all 16 again: reload the one killed above (the supervisor unregistered it).
    for (let slot = 0; slot < FLEET_SIZE; slot++) {
      if (!(await f.controller.registry.get(String(slot)))) {
        const { entry } = await f.controller.load(`model-${slot}`, { gpu: slot });
        f.servers.set(String(slot), entry.pid);
      }
    }
    return figures;
  },
};

/** Kills one server while wrk runs and times until the API stops calling it running. */
async function crashUnderLoad(
  ctx: Parameters<Scenario["run"]>[0],
  f: Awaited<ReturnType<typeof fleet>>,
  url: string,
  seconds: number,
): Promise<Figure[]> {
  const slot = String(FLEET_SIZE - 1);
  const pid = f.servers.get(slot);
  if (pid === undefined || !isAlive(pid)) throw new Error(`slot ${slot} has no live server to kill`);
  const load = runWrk({ url, seconds: Math.max(3, Math.ceil(seconds / 2)), connections: 16 }, ctx.tracker);
  await Bun.sleep(1000);
  const killedAt = Date.now();
  process.kill(-pid, "SIGKILL");
  ctx.tracker.forget(pid);
  let seenAt: number | undefined;
  while (seenAt === undefined && Date.now() - killedAt < 15_000) {
    const row = (await rows(url).catch(() => undefined))?.find((r) => r.slot === slot);
    if (!row || row.state !== "running") seenAt = Date.now();
    else await Bun.sleep(10);
  }
  const result = await load;
  const ms = seenAt === undefined ? null : seenAt - killedAt;
  ctx.log(`server: a killed server stopped showing as running after ${ms} ms under load`);
  return [
    figure(5, "server.crash.seen", "  killed server shown not running after", ms, "ms", undefined,
      `SIGKILL to slot ${slot} during a second wrk run (${Math.round(result.requestsPerSec)} req/s); polled every 10 ms`),
  ];
}

async function rows(url: string): Promise<ProcessStatus[]> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return ((await res.json()) as { processes: ProcessStatus[] }).processes;
}

async function waitUp(url: string, exited: Promise<number>): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  for (;;) {
    if (gone) throw new Error("corral serve exited during start-up");
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    await Bun.sleep(50);
  }
}

/** Polls the route beside the load (every 50 ms) and records how old the served status is. */
function sampleFreshness(url: string): { stop(): Promise<{ samples: number; max: number; median: number; wrong: number }> } {
  const ages: number[] = [];
  let wrong = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const got = await rows(url).catch(() => undefined);
      const at = Date.now();
      if (got && got.length > 0) {
        ages.push(at - Math.min(...got.map((r) => Date.parse(r.checked_at))));
        wrong += got.filter((r) => r.state !== "running" || r.health?.state !== "ok").length;
      }
      await Bun.sleep(50);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { samples: ages.length, max: Math.max(...ages), median: median(ages), wrong };
    },
  };
}
