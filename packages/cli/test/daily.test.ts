import { afterAll, describe, expect, it } from "bun:test";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createController, createSupervisor, reloadConfig } from "@corral/core";
import { freePort } from "../../core/test/fixtures/index.ts";
import { corral, makeHome, readUntil, spawnCorral, type TestHome } from "./helpers.ts";

const homes: TestHome[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const h of homes) await h.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function home(): Promise<TestHome> {
  const h = await makeHome();
  homes.push(h);
  // Nothing listens there: `corral reload` must never reach another home's server on 7070.
  appendFileSync(h.configFile, `server: { port: ${await freePort()} }\n`);
  return h;
}

describe("corral service", () => {
  it("prints the unit with --dry-run, writes it with install, checks it with status, removes it with uninstall", async () => {
    const h = await home();
    const userHome = mkdtempSync(join(tmpdir(), "corral-user-"));
    dirs.push(userHome);
    const env = { HOME: userHome };
    const unit = join(userHome, ".config", "systemd", "user", "corral.service");
    const dry = await corral(h, ["service", "install", "--user", "--dry-run"], env);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`Environment=CORRAL_HOME=${h.dir}`);
    expect(dry.stdout).toContain("KillMode=process");
    expect(dry.stdout).toContain("systemctl --user enable --now corral.service");
    expect(existsSync(unit)).toBe(false);

    const installed = await corral(h, ["service", "install", "--user"], env);
    expect(installed.code).toBe(0);
    expect(installed.stdout).toContain(`wrote ${unit}`);
    const content = readFileSync(unit, "utf8");
    expect(content).toMatch(/^ExecStart=\S+ \S+main\.ts serve$/m);
    expect(content).toContain("Restart=on-failure");

    const status = await corral(h, ["service", "status", "--user", "--json"], env);
    expect(JSON.parse(status.stdout)).toMatchObject({ installed: true, current: true, serving: false });

    const removed = await corral(h, ["service", "uninstall", "--user"], env);
    expect(removed.code).toBe(0);
    expect(existsSync(unit)).toBe(false);
    expect(removed.stdout).toContain("no systemd runs this machine");
  });
});

describe("corral reload", () => {
  it("checks the file when no server runs, and names the key of a bad one", async () => {
    const h = await home();
    const ok = await corral(h, ["reload"]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("no corral serve answers");
    appendFileSync(h.configFile, "logs: { max_bytes: 10 }\n");
    const bad = await corral(h, ["reload"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("logs.max_bytes");
  });
});

describe("corral reload against a running corral serve", () => {
  it("marks the changed model stale, then restarts it with --restart-changed", async () => {
    const h = await home();
    const serve = spawnCorral(h, ["serve"]);
    try {
      await readUntil(serve.stdout, /serving on/);
      expect((await corral(h, ["load", "tiny"])).code).toBe(0);
      const before = JSON.parse((await corral(h, ["ls", "--json"])).stdout)[0].entry.pid;
      writeFileSync(
        h.configFile,
        readFileSync(h.configFile, "utf8").replace('"--fake-load-ms", "200"', '"--fake-load-ms", "199"'),
      );
      const reloaded = await corral(h, ["reload"]);
      expect(reloaded.code).toBe(0);
      expect(reloaded.stdout).toContain("models added: none; removed: none; changed: tiny");
      expect(reloaded.stdout).toContain("stale (running with the old settings until restarted): slot 0");
      expect(JSON.parse((await corral(h, ["ls", "--json"])).stdout)[0].entry.pid).toBe(before);
      const restarted = await corral(h, ["reload", "--restart-changed", "--json"]);
      const body = JSON.parse(restarted.stdout);
      expect(body.restarted).toMatchObject([{ slot: "0", model_id: "tiny", outcome: "restarted" }]);
      expect(body.restarted[0].pid).not.toBe(before);
    } finally {
      serve.kill("SIGTERM");
      await serve.exited;
    }
  }, 60_000);
});

describe("stale servers and crash reports in the terminal", () => {
  it("ls marks a server stale after a reload changed its model; history --crashes shows the report", async () => {
    const h = await home();
    const controller = await createController({
      home: h.dir,
      configFile: h.configFile,
      gpuQuery: async () => undefined,
    });
    const supervisor = createSupervisor(controller, {
      followHistory: false,
      alerter: { notify() {}, flush: async () => {}, failures: 0, dropped: 0 },
    });
    const { entry } = await controller.load("tiny");
    writeFileSync(
      h.configFile,
      readFileSync(h.configFile, "utf8").replace('"--fake-load-ms", "200"', '"--fake-load-ms", "201"'),
    );
    expect((await reloadConfig(controller)).stale).toEqual(["0"]);
    const ls = await corral(h, ["ls"]);
    expect(ls.stdout).toMatch(/running stale/);
    expect(ls.stdout).toContain("slot 0 is stale: the configuration of model tiny changed");

    await supervisor.tick();
    process.kill(entry.pid, "SIGKILL");
    const deadline = Date.now() + 10_000;
    while (!(await controller.history({ event: "crash-report", limit: 1 })).length && Date.now() < deadline) {
      await supervisor.tick();
      await Bun.sleep(20);
    }
    const crashes = await corral(h, ["history", "--crashes"]);
    expect(crashes.code).toBe(0);
    expect(crashes.stdout).toContain(`slot 0  tiny  pid ${entry.pid}`);
    expect(crashes.stdout).toContain("signal SIGKILL");
    expect(crashes.stdout).toContain("not restarted: restart is off");
    expect(crashes.stdout).toContain("HTTP server is listening");
    await supervisor.stop();
  });
});
