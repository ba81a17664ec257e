import { afterAll, describe, expect, it } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { autostartModels } from "../src/lifecycle/autostart.ts";
import { createController } from "../src/lifecycle/controller.ts";
import { killAll, makeHome, type TestHome } from "./helpers/home.ts";

const homes: TestHome[] = [];
const started = new Set<number>();
afterAll(() => {
  killAll(started);
  for (const t of homes) t.cleanup();
});

describe("autostartModels", () => {
  it("loads the autostart models not running yet, in config order, one at a time", async () => {
    const t = await makeHome([
      { id: "first", gpu: "0", args: ["--fake-load-ms", "150"] },
      { id: "running", gpu: "1" },
      { id: "broken", gpu: "2", args: ["--fake-exit-on-start", "2"] },
      { id: "manual", gpu: "3" },
      { id: "last", gpu: "4" },
    ]);
    homes.push(t);
    const config = JSON.parse(readFileSync(t.configFile, "utf8"));
    for (const m of config.models) if (m.id !== "manual") m.autostart = true;
    writeFileSync(t.configFile, JSON.stringify(config));
    const controller = await createController({
      home: t.home,
      configFile: t.configFile,
      gpuQuery: async () => undefined,
    });
    controller.registry.subscribe((e) => {
      if (e.pid) started.add(e.pid);
    });
    const already = await controller.load("running");
    const loading: string[] = [];
    let inFlight = 0;
    let most = 0;
    controller.subscribe((e) => {
      if (e.event === "registered" && e.model_id) {
        loading.push(e.model_id);
        most = Math.max(most, ++inFlight);
      }
      if ((e.event === "status" && e.to === "running") || e.event === "load-failed") inFlight--;
    });
    const outcomes = await autostartModels(controller);
    expect(outcomes.map((o) => [o.model_id, o.outcome])).toEqual([
      ["first", "loaded"],
      ["running", "already-running"],
      ["broken", "failed"],
      ["last", "loaded"],
    ]);
    expect(outcomes[1]?.pid).toBe(already.entry.pid);
    expect(outcomes[2]?.reason).toContain("exited with code 2");
    expect(loading).toEqual(["first", "broken", "last"]);
    expect(most).toBe(1);
    expect((await controller.history({ limit: 30 })).some((e) => e.reason?.startsWith("autostart"))).toBe(true);
    for (const { slot } of await controller.entries()) await controller.unload(slot, { force: true });
  });
});
