/**
 * Scenario 7: how promptly the controller notices what servers do.
 * Readiness: a stand-in started with `--fake-load-ms N` answers 503 for N ms, then 200;
 * `controller.load()` reports `readyMs`, and `readyMs − N` is the lag (it also holds the
 * stand-in's own start-up). A separate observer polling `/health` every 2 ms times, in the same
 * run, how long after the first 200 `load()` returned. Unload: `controller.unload()` of a
 * server that exits at once on SIGTERM, timed until it returns with the entry unregistered and
 * the port free (both checked afterwards). Targets: under 100 ms each.
 */
import { createController, isPortFree } from "@corral/core";
import { freePort } from "../../packages/core/test/fixtures/index.ts";
import { makeHome } from "../../packages/core/test/helpers/home.ts";
import { type Figure, figure, isAlive, median, round, type Scenario } from "./harness.ts";

const LOAD_MS = 500;

export const lifecycleScenario: Scenario = {
  scenario: 7,
  name: "readiness and unload",
  async run(ctx) {
    const home = await makeHome([{ id: "tiny", args: ["--fake-load-ms", String(LOAD_MS)] }]);
    ctx.tracker.dir(home.home);
    const controller = await createController({ home: home.home, configFile: home.configFile });
    const off = controller.registry.subscribe((event) => {
      if (event.event === "registered" && event.pid) ctx.tracker.group(event.pid);
    });
    const runs = ctx.runs(9, 3);
    const lag: number[] = [];
    const observed: number[] = [];
    const unload: number[] = [];
    try {
      for (let i = 0; i < runs; i++) {
        const port = await freePort();
        const observer = watchHealth(port);
        const { entry, readyMs } = await controller.load("tiny", { gpu: 0, port });
        const returnedAt = performance.now();
        const firstOk = await observer.stop();
        lag.push(readyMs - LOAD_MS);
        if (firstOk !== undefined) observed.push(returnedAt - firstOk);
        const started = performance.now();
        const result = await controller.unload("0");
        unload.push(performance.now() - started);
        const problems = [
          !result.signalled && "not signalled",
          result.escalated && "needed SIGKILL",
          !result.portFreed && "port not freed",
          (await controller.registry.get("0")) && "still registered",
          isAlive(entry.pid) && "still alive",
          !(await isPortFree(port)) && "port still taken",
        ].filter(Boolean);
        if (problems.length > 0) throw new Error(`unload of pid ${entry.pid}: ${problems.join(", ")}`);
        ctx.tracker.forget(entry.pid);
      }
    } finally {
      off();
      home.cleanup();
    }
    ctx.log(
      `lifecycle: ready lag ${median(lag).toFixed(0)} ms, observed ${median(observed).toFixed(1)} ms, unload ${median(unload).toFixed(1)} ms`,
    );
    const max = (xs: number[]) => round(Math.max(...xs));
    const figures: Figure[] = [
      figure(
        7,
        "ready.lag",
        `readiness: readyMs − ${LOAD_MS} (--fake-load-ms)`,
        round(median(lag)),
        "ms",
        { op: "<", value: 100 },
        `median of ${runs} loads, max ${max(lag)}; includes the stand-in's own start-up before its timer starts`,
      ),
      figure(
        7,
        "ready.observed",
        "  load() returned after /health first said 200",
        round(median(observed)),
        "ms",
        undefined,
        `median of ${observed.length}, max ${max(observed)}; first 200 seen by a separate observer polling every 2 ms`,
      ),
      figure(
        7,
        "unload",
        "unload (SIGTERM-prompt server): unregistered, port free",
        round(median(unload)),
        "ms",
        { op: "<", value: 100 },
        `median of ${runs}, max ${max(unload)}; each checked: not escalated, entry gone, pid gone, port free`,
      ),
    ];
    return figures;
  },
};

/** Polls /health on a port every 2 ms and remembers when it first answered 200. */
function watchHealth(port: number): { stop(): Promise<number | undefined> } {
  let firstOk: number | undefined;
  let running = true;
  const loop = (async () => {
    while (running && firstOk === undefined) {
      const ok = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) firstOk = performance.now();
      else await Bun.sleep(2);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return firstOk;
    },
  };
}
