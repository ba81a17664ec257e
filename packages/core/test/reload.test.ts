import { afterAll, describe, expect, it } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { ConfigError } from "../src/errors.ts";
import { createGateway } from "../src/gateway/gateway.ts";
import { createController } from "../src/lifecycle/controller.ts";
import { reloadConfig } from "../src/lifecycle/reload.ts";
import { createSupervisor } from "../src/supervision/supervisor.ts";
import { alive, killAll, makeHome, type TestHome } from "./helpers/home.ts";

const homes: TestHome[] = [];
const started = new Set<number>();

afterAll(() => {
  killAll(started);
  for (const t of homes) t.cleanup();
});

async function setup() {
  const t = await makeHome([
    { id: "tiny", gpu: "0" },
    { id: "other", gpu: "1" },
  ]);
  homes.push(t);
  const controller = await createController({
    home: t.home,
    configFile: t.configFile,
    gpuQuery: async () => undefined,
  });
  controller.registry.subscribe((e) => {
    if (e.pid) started.add(e.pid);
  });
  const edit = (change: (config: Record<string, any>) => void) => {
    const config = JSON.parse(readFileSync(t.configFile, "utf8"));
    change(config);
    writeFileSync(t.configFile, JSON.stringify(config, null, 2));
  };
  return { t, controller, edit };
}

describe("reloadConfig", () => {
  it("refuses a file that does not validate, names the key and keeps the configuration in force", async () => {
    const { controller, edit } = await setup();
    const before = controller.config;
    edit((c) => {
      c.webhooks = ["http://127.0.0.1:9/hook"];
      c.timeouts.load_ms = -5;
    });
    const error = await reloadConfig(controller).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).key).toBe("timeouts.load_ms");
    // Nothing half-applied: not even the valid webhook of the same file.
    expect(controller.config).toBe(before);
    expect(controller.config.webhooks).toEqual([]);
    const [last] = await controller.history({ limit: 1 });
    expect(last?.event).toBe("config-reload-refused");
    expect(last?.reason).toContain("timeouts.load_ms");
  });

  it("applies webhooks, ports, ttl, gateway and watch settings at once, to every reader", async () => {
    const { controller, edit } = await setup();
    const supervisor = createSupervisor(controller, { followHistory: false });
    const gateway = createGateway({ controller });
    const alerterBefore = supervisor.alerter;
    const range = controller.config.ports.range;
    edit((c) => {
      c.webhooks = ["http://127.0.0.1:9/hook"];
      c.watch = { interval_ms: 1234 };
      c.gateway = { ttl: 60, max_queue: 3 };
      c.ports.range = [range[0] + 50, range[0] + 60];
      c.models.push({ id: "added", path: c.models[0].path, gpu: 2, aliases: ["new-name"] });
    });
    const result = await reloadConfig(controller, { by: "test" });
    expect(result.changed).toEqual(expect.arrayContaining(["gateway", "ports", "watch", "webhooks"]));
    expect(result.added).toEqual(["added"]);
    expect(supervisor.intervalMs).toBe(1234);
    expect(supervisor.alerter).not.toBe(alerterBefore);
    expect(gateway.config.gateway.max_queue).toBe(3);
    expect(gateway.resolver.resolve("new-name").id).toBe("added");
    // The next load picks its port from the new range.
    const { entry } = await controller.load("tiny");
    expect(entry.port).toBeGreaterThanOrEqual(range[0] + 50);
    expect(entry.port).toBeLessThanOrEqual(range[0] + 60);
    const [event] = (await controller.history({ limit: 20 })).filter((e) => e.event === "config-reloaded");
    expect(event?.by).toBe("test");
    expect(event?.reload?.added).toEqual(["added"]);
    await gateway.stop();
    await controller.unload("0", { force: true });
  });

  it("never stops a running server: a changed model is marked stale, a removed one keeps running, --restart-changed restarts", async () => {
    const { controller, edit } = await setup();
    const tiny = await controller.load("tiny");
    const other = await controller.load("other");
    edit((c) => {
      c.models[0].args = ["--ctx-size", "2048"];
      c.models = c.models.filter((m: { id: string }) => m.id !== "other");
    });
    const result = await reloadConfig(controller);
    expect(result.changed_models).toEqual(["tiny"]);
    expect(result.removed).toEqual(["other"]);
    expect(result.stale).toEqual(["0", "1"]);
    expect(alive(tiny.entry.pid)).toBe(true);
    expect(alive(other.entry.pid)).toBe(true);
    expect((await controller.entry("0"))?.stale).toContain("changed");
    expect((await controller.entry("1"))?.stale).toContain("no longer configured");

    // Back to what it was started with: no longer stale.
    edit((c) => {
      c.models[0].args = [];
    });
    expect((await reloadConfig(controller)).stale).toEqual(["1"]);
    expect((await controller.entry("0"))?.stale).toBeUndefined();

    edit((c) => {
      c.models[0].args = ["--ctx-size", "1024"];
    });
    const restarted = await reloadConfig(controller, { restartChanged: true });
    // The removed model is not restarted (it cannot be): it runs until unloaded.
    expect(restarted.restarted.map((r) => [r.slot, r.outcome])).toEqual([["0", "restarted"]]);
    const now = await controller.entry("0");
    expect(now?.pid).not.toBe(tiny.entry.pid);
    expect(now?.stale).toBeUndefined();
    expect(now?.command_line).toContain("1024");
    expect(alive(other.entry.pid)).toBe(true);
    await controller.unload("0", { force: true });
    await controller.unload("1", { force: true });
  });
});
