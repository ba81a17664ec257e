import { afterAll, describe, expect, it } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { createSupervisor, type Supervisor } from "@corral/core";
import { call, type TestHome, testHome, waitFor } from "./helpers.ts";

const homes: TestHome[] = [];
const supervisors: Supervisor[] = [];
afterAll(async () => {
  for (const s of supervisors) await s.stop();
  for (const t of homes) t.cleanup();
});

describe("GET /api/v1/watcher", () => {
  it("shows the latest error of the watch loop, which the loop outlives, and clears it once a tick succeeds", async () => {
    const t = await testHome([{ id: "tiny" }]);
    homes.push(t);
    const supervisor = createSupervisor(t.controller, { intervalMs: 50, followHistory: false });
    supervisors.push(supervisor);
    const app = t.app({ supervisor });
    supervisor.start();
    await waitFor(async () => (await call(app, "GET", "/api/v1/watcher")).body.running === true, 5000, "the watcher");
    expect((await call(app, "GET", "/api/v1/watcher")).body.last_error).toBeUndefined();
    writeFileSync(t.controller.paths.registry, "{ not json");
    await waitFor(
      async () => (await call(app, "GET", "/api/v1/watcher")).body.last_error !== undefined,
      5000,
      "the watcher to report the corrupt registry",
    );
    const { status, body } = await call(app, "GET", "/api/v1/watcher");
    expect(status).toBe(200);
    expect(body).toMatchObject({
      running: true,
      interval_ms: 50,
      last_error: { where: "tick", code: "REGISTRY_CORRUPT" },
    });
    rmSync(t.controller.paths.registry, { force: true });
    await waitFor(
      async () => (await call(app, "GET", "/api/v1/watcher")).body.last_error === undefined,
      5000,
      "the error to clear",
    );
  });

  it("says the watcher is not running when the app has none", async () => {
    const t = await testHome([{ id: "tiny" }]);
    homes.push(t);
    expect((await call(t.app(), "GET", "/api/v1/watcher")).body).toEqual({ running: false });
  });
});
