/**
 * Scenario 5: the server under load. `corral serve` (the real CLI, as a user starts it) over
 * a home with 16 tracked stand-in llama-servers; `wrk` hammers `GET /api/v1/processes`.
 * Targets: over 5,000 requests/s, p99 under 10 ms, resident memory idle and after the load
 * under 80 MB. Honesty under load: a sampler beside wrk records how old the served status is
 * (`checked_at`) when it arrives, and a second load kills servers mid-run to time how long the
 * API keeps calling them running. A last load (not with --quick) runs with 1000 idle processes
 * more on the host, whose scans each status tick makes.
 */
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import type { ProcessStatus } from "@corral/core";
import { freePort } from "../../packages/core/test/fixtures/index.ts";
import { FLEET_SIZE, type Fleet, fleet } from "./fleet.ts";
import {
  type BenchContext,
  type Figure,
  figure,
  isAlive,
  median,
  round,
  rssBytes,
  type Scenario,
  within,
} from "./harness.ts";
import { spawnSleepers } from "./sleepers.ts";
import { hasWrk, runWrk } from "./wrk.ts";

const REPO = join(import.meta.dir, "..", "..");
const CLI = join(REPO, "packages", "cli", "src", "main.ts");
const MB = 1024 * 1024;

export const serverScenario: Scenario = {
  scenario: 5,
  name: "server under load",
  async run(ctx) {
    if (!hasWrk()) {
      return [
        figure(
          5,
          "server.rps",
          "GET /api/v1/processes, requests/s",
          null,
          "req/s",
          { op: ">", value: 5000 },
          "not measured: wrk is not installed (apt-get install wrk)",
        ),
      ];
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
    const url = `http://127.0.0.1:${port}/api/v1/processes`;
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
      ctx.log(
        `server: ${load.requestsPerSec.toFixed(0)} req/s, p99 ${load.p99} ms, rss ${(idle / MB).toFixed(0)} → ${(after / MB).toFixed(0)} MB`,
      );
      const errors = load.non2xx + load.socketErrors;
      figures.push(
        figure(
          5,
          "server.rps",
          "GET /api/v1/processes, requests/s",
          Math.round(load.requestsPerSec),
          "req/s",
          { op: ">", value: 5000 },
          `wrk -t1 -c16 -d${seconds}s, ${FLEET_SIZE} tracked servers; ${load.requests} requests, ${errors} errors or non-2xx`,
        ),
        figure(5, "server.p50", "  latency p50", round(load.p50), "ms"),
        figure(5, "server.p90", "  latency p90", round(load.p90), "ms"),
        figure(5, "server.p99", "  latency p99", round(load.p99), "ms", { op: "<", value: 10 }),
        figure(
          5,
          "server.rss.idle",
          "  server RSS idle",
          round(idle / MB),
          "MB",
          { op: "<", value: 80 },
          "VmRSS of the `corral serve` process, 1 s after start-up",
        ),
        figure(5, "server.rss.after", "  server RSS right after the load", round(after / MB), "MB", {
          op: "<",
          value: 80,
        }),
        figure(5, "server.rss.settled", "  server RSS 3 s after the load", round(settled / MB), "MB"),
        figure(
          5,
          "server.fresh.max",
          "  status age served under load, max",
          round(fresh.max),
          "ms",
          undefined,
          `now − oldest checked_at when a response arrives; ${fresh.samples} samples beside wrk, median ${round(fresh.median)} ms; ` +
            `${fresh.wrong} rows not running+healthy`,
        ),
      );
      if (!ctx.quick) figures.push(...(await busyHost(ctx, url, 5)));
      figures.push(...(await crashUnderLoad(ctx, f, url)));
    } finally {
      server.kill("SIGTERM");
      const code = await within(server.exited, 10_000, "corral serve stopping").catch(() => undefined);
      if (code === undefined) server.kill("SIGKILL");
    }
    // The CLI scenario needs all 16 again: reload the ones killed above (the supervisor unregistered them).
    for (let slot = 0; slot < FLEET_SIZE; slot++) {
      if (!(await f.controller.registry.get(String(slot)))) {
        const { entry } = await f.controller.load(`model-${slot}`, { gpu: slot });
        f.servers.set(String(slot), entry.pid);
      }
    }
    return figures;
  },
};

/**
 * Kills servers one after another while wrk runs (1.3 s apart, so the kills land at different
 * points of the 1 s status cache) and times how long the API keeps calling each one running.
 */
async function crashUnderLoad(ctx: BenchContext, f: Fleet, url: string): Promise<Figure[]> {
  const kills = ctx.quick ? 1 : 3;
  const load = runWrk({ url, seconds: Math.ceil(1 + kills * 1.3 + 1.5), connections: 16 }, ctx.tracker);
  const seen: number[] = [];
  for (let k = 0; k < kills; k++) {
    await Bun.sleep(k === 0 ? 1000 : 300);
    const slot = String(FLEET_SIZE - 1 - k);
    const pid = f.servers.get(slot);
    if (pid === undefined || !isAlive(pid)) throw new Error(`slot ${slot} has no live server to kill`);
    const killedAt = Date.now();
    process.kill(-pid, "SIGKILL");
    ctx.tracker.forget(pid);
    for (;;) {
      const row = (await rows(url).catch(() => undefined))?.find((r) => r.slot === slot);
      if (row?.state !== "running") break;
      if (Date.now() - killedAt > 15_000)
        throw new Error(`slot ${slot} still shown running 15 s after its server was killed`);
      await Bun.sleep(10);
    }
    seen.push(Date.now() - killedAt);
    await Bun.sleep(Math.max(0, 1000 - (Date.now() - killedAt)));
  }
  const result = await load;
  ctx.log(`server: killed servers stopped showing as running after ${seen.join(", ")} ms under load`);
  return [
    figure(
      5,
      "server.crash.seen",
      "  killed server shown not running after",
      round(median(seen)),
      "ms",
      undefined,
      `median of ${kills} SIGKILLs during a second wrk run (${Math.round(result.requestsPerSec)} req/s), max ${Math.max(...seen)} ms; polled every 10 ms`,
    ),
  ];
}

/** The same load with 1000 idle processes more on the host: every status tick scans them all. */
async function busyHost(ctx: BenchContext, url: string, seconds: number): Promise<Figure[]> {
  const extra = await spawnSleepers(1000, ctx.tracker, { name: "bench-idle" });
  try {
    const load = await runWrk({ url, seconds, connections: 16 }, ctx.tracker);
    ctx.log(`server, 1000 extra processes: ${load.requestsPerSec.toFixed(0)} req/s, p99 ${load.p99} ms`);
    return [
      figure(
        5,
        "server.busyhost.p99",
        "  latency p99, 1000 extra processes on the host",
        round(load.p99),
        "ms",
        undefined,
        `same wrk run with 1000 idle processes added: ${Math.round(load.requestsPerSec)} req/s, p90 ${round(load.p90)} ms`,
      ),
    ];
  } finally {
    await extra.stop();
  }
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
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await Bun.sleep(50);
  }
}

/** Polls the route beside the load (every 50 ms) and records how old the served status is. */
function sampleFreshness(url: string): {
  stop(): Promise<{ samples: number; max: number; median: number; wrong: number }>;
} {
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
