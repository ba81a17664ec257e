import { afterAll, describe, expect, it } from "bun:test";
import { call, killPids, spawnStandIn, type TestHome, testHome, waitFor } from "./helpers.ts";

const homes: TestHome[] = [];
const started = new Set<number>();
afterAll(() => {
  killPids(started);
  for (const t of homes) t.cleanup();
});

async function home(): Promise<TestHome> {
  const t = await testHome([{ id: "tiny" }]);
  homes.push(t);
  return t;
}

/** A llama-server nobody registered; the test home's probe is told it is this test's. */
async function orphanIn(t: TestHome) {
  const s = await spawnStandIn({ model: `${t.home}/tiny.gguf`, wait: "healthy" });
  started.add(s.pid);
  t.pids.add(s.pid);
  return s;
}

/** A process of ours that is not a llama-server. */
function sleeper(): number {
  const p = Bun.spawn(["sleep", "60"], { stdio: ["ignore", "ignore", "ignore"] });
  started.add(p.pid);
  return p.pid;
}

function gone(pid: number): boolean {
  try {
    const stat = require("node:fs").readFileSync(`/proc/${pid}/stat`, "utf8") as string;
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch {
    return true;
  }
}

describe("GET /api/v1/orphans", () => {
  it("lists an untracked llama-server with its evidence and verdict", async () => {
    const t = await home();
    const s = await orphanIn(t);
    const { status, body } = await call(t.app(), "GET", "/api/v1/orphans");
    expect(status).toBe(200);
    const orphan = body.orphans.find((o: { pid: number }) => o.pid === s.pid);
    expect(orphan).toMatchObject({
      pid: s.pid,
      port: s.port,
      model_path: `${t.home}/tiny.gguf`,
      verdict: "likely-ours",
    });
    expect(orphan.reasons.length).toBeGreaterThan(0);
    expect(orphan.command_line).toContain("--port");
  });
});

describe("POST /api/v1/orphans/:pid/adopt", () => {
  it("takes an orphan into the registry in the slot asked for, after which it unloads like any other", async () => {
    const t = await home();
    const s = await orphanIn(t);
    const app = t.app();
    const adopted = await call(app, "POST", `/api/v1/orphans/${s.pid}/adopt`, { slot: "3" });
    expect(adopted.status).toBe(200);
    expect(adopted.body).toMatchObject({ slot: "3", entry: { pid: s.pid, port: s.port, adopted: true } });
    expect((await call(app, "GET", "/api/v1/orphans")).body.orphans).toEqual([]);
    const unloaded = await call(app, "DELETE", "/api/v1/processes/3");
    expect(unloaded.status).toBe(200);
    await waitFor(() => gone(s.pid), 10_000, "the adopted server to exit");
  });

  it("refuses a process that is not a llama-server with 403, and a PID of 1 with 422", async () => {
    const t = await home();
    const app = t.app();
    const pid = sleeper();
    const refused = await call(app, "POST", `/api/v1/orphans/${pid}/adopt`, {});
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("NOT_OUR_PROCESS");
    const init = await call(app, "POST", "/api/v1/orphans/1/adopt", {});
    expect(init.status).toBe(422);
    expect(init.body.error.message).toContain("pid");
    expect(gone(pid)).toBe(false);
  });
});

describe("POST /api/v1/orphans/:pid/kill", () => {
  it("kills an orphan's process", async () => {
    const t = await home();
    const s = await orphanIn(t);
    const { status, body } = await call(t.app(), "POST", `/api/v1/orphans/${s.pid}/kill`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ pid: s.pid, verdict: "likely-ours", killed: true });
    await waitFor(() => gone(s.pid), 10_000, "the orphan to exit");
  });

  it("answers 404 for a PID that is not an orphaned llama-server, and touches nothing", async () => {
    const t = await home();
    const pid = sleeper();
    const { status, body } = await call(t.app(), "POST", `/api/v1/orphans/${pid}/kill`);
    expect(status).toBe(404);
    expect(body.error.message).toContain(String(pid));
    expect(gone(pid)).toBe(false);
  });
});

/** A llama-server another corral home started (its marker says so): foreign to this one. */
async function foreignIn(t: TestHome) {
  const s = await spawnStandIn({
    model: `${t.home}/tiny.gguf`,
    wait: "healthy",
    env: { CORRAL_HOME_ID: "another-home" },
  });
  started.add(s.pid);
  t.pids.add(s.pid);
  return s;
}

describe("one kill rule for another home's server", () => {
  it("refuses it with 403 in /kill, orphan kill and adopt unless include_foreign, and says so per PID in cleanup", async () => {
    const t = await home();
    const app = t.app();
    const f = await foreignIn(t);
    const ours = await orphanIn(t);
    for (const [path, body] of [
      ["/api/v1/kill", { pid: f.pid }],
      [`/api/v1/orphans/${f.pid}/kill`, undefined],
      [`/api/v1/orphans/${f.pid}/adopt`, { slot: "4" }],
    ] as const) {
      const refused = await call(app, "POST", path, body);
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe("NOT_OUR_PROCESS");
      expect(refused.body.error.message).toContain("foreign");
    }
    const cleanup = await call(app, "POST", "/api/v1/orphans/cleanup", { pids: [f.pid, ours.pid, 999_999] });
    expect(cleanup.status).toBe(200);
    // 999999 was asked for and is no orphan: nothing was done for it, so the cleanup is not "ok".
    expect(cleanup.body).toMatchObject({
      ok: false,
      counts: { killed: 1, "left-foreign": 1, "not-orphan": 1, failed: 0 },
    });
    const outcome = (pid: number) => cleanup.body.results.find((r: { pid: number }) => r.pid === pid)?.outcome;
    expect([outcome(f.pid), outcome(ours.pid), outcome(999_999)]).toEqual(["left-foreign", "killed", "not-orphan"]);
    await waitFor(() => gone(ours.pid), 10_000, "our orphan to exit");
    expect(gone(f.pid)).toBe(false);
    const forced = await call(app, "POST", "/api/v1/kill", { pid: f.pid, include_foreign: true });
    expect(forced.status).toBe(200);
    await waitFor(() => gone(f.pid), 10_000, "the foreign server to exit once included");
  });

  it("answers 422 for a blank or whitespace name instead of matching every unreadable executable", async () => {
    const t = await home();
    for (const name of [" ", "   ", "\t"]) {
      const { status, body } = await call(t.app(), "POST", "/api/v1/kill", { name });
      expect(status).toBe(422);
      expect(body.error.code).toBe("INVALID_NAME");
    }
  });
});

describe("POST /api/v1/cleanup-orphaned", () => {
  it("kills this home's orphans and answers in the original controller's shape", async () => {
    const t = await home();
    const a = await orphanIn(t);
    const b = await orphanIn(t);
    const { status, body } = await call(t.app(), "POST", "/api/v1/cleanup-orphaned?force=false");
    expect(status).toBe(200);
    expect(body.success).toBe(true);
    expect(body.killed_count).toBe(2);
    expect([...body.orphaned_pids].sort()).toEqual([a.pid, b.pid].sort());
    expect(body.message).toContain("Cleaned up 2 orphaned processes");
    await waitFor(() => gone(a.pid) && gone(b.pid), 10_000, "both orphans to exit");
  });

  it("reports nothing to do when there are no orphans", async () => {
    const t = await home();
    const { body } = await call(t.app(), "POST", "/api/v1/cleanup-orphaned");
    expect(body).toEqual({
      success: true,
      orphaned_pids: [],
      killed_count: 0,
      message: "Cleaned up 0 orphaned processes",
    });
  });
});

describe("POST /api/v1/kill", () => {
  it("kills a tracked llama-server by PID and unregisters it", async () => {
    const t = await home();
    const app = t.app();
    const loaded = await call(app, "POST", "/api/v1/models/load", { model_id: "tiny", gpu_id: 0 });
    const pid = loaded.body.status.pid;
    const { status, body } = await call(app, "POST", "/api/v1/kill", { pid });
    expect(status).toBe(200);
    expect(body.killed).toEqual([expect.objectContaining({ pid, slot: "0", signalled: true })]);
    expect(await t.controller.registry.list()).toEqual([]);
  });

  it("kills tracked servers by model id", async () => {
    const t = await home();
    const app = t.app();
    await call(app, "POST", "/api/v1/models/load", { model_id: "tiny", gpu_id: 0 });
    await call(app, "POST", "/api/v1/models/load", { model_id: "tiny", gpu_id: 1 });
    const { status, body } = await call(app, "POST", "/api/v1/kill", { name: "tiny", force: true });
    expect(status).toBe(200);
    expect(body.killed.map((k: { slot: string }) => k.slot).sort()).toEqual(["0", "1"]);
  });

  it("refuses with 403 to kill a process that is not a llama-server, by PID or by name, and our own PID", async () => {
    const t = await home();
    const app = t.app();
    const pid = sleeper();
    const byPid = await call(app, "POST", "/api/v1/kill", { pid });
    expect(byPid.status).toBe(403);
    expect(byPid.body.error.code).toBe("NOT_OUR_PROCESS");
    const byName = await call(app, "POST", "/api/v1/kill", { name: "sleep" });
    expect(byName.status).toBe(403);
    expect((await call(app, "POST", "/api/v1/kill", { pid: process.pid })).status).toBe(403);
    expect(gone(pid)).toBe(false);
  });

  it("answers 404 for a PID or name that matches nothing", async () => {
    const t = await home();
    const app = t.app();
    const done = Bun.spawn(["true"]);
    await done.exited;
    expect((await call(app, "POST", "/api/v1/kill", { pid: done.pid })).body.error.code).toBe("NO_SUCH_PROCESS");
    const name = await call(app, "POST", "/api/v1/kill", { name: "no-such-program-anywhere" });
    expect(name.status).toBe(404);
  });

  it("answers 400 for neither or both of pid and name, and 422 for a bad pid or name", async () => {
    const t = await home();
    const app = t.app();
    expect((await call(app, "POST", "/api/v1/kill", {})).status).toBe(400);
    expect((await call(app, "POST", "/api/v1/kill", { pid: 1234, name: "x" })).status).toBe(400);
    for (const body of [
      { pid: 1 },
      { pid: 0 },
      { pid: -5 },
      { pid: 2.5 },
      { pid: "twelve" },
      { name: "" },
      { name: "x".repeat(129) },
    ]) {
      const res = await call(app, "POST", "/api/v1/kill", body);
      expect({ body, status: res.status }).toEqual({ body, status: 422 });
    }
  });
});
