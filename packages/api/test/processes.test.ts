import { afterAll, describe, expect, it } from "bun:test";
import { isPortFree } from "@corral/core";
import { authed, call, type TestHome, testHome, waitFor } from "./helpers.ts";

const homes: TestHome[] = [];
afterAll(() => {
  for (const t of homes) t.cleanup();
});

async function loaded(
  slot = "0",
): Promise<{ t: TestHome; app: ReturnType<TestHome["app"]>; pid: number; port: number }> {
  const t = await testHome([{ id: "tiny" }]);
  homes.push(t);
  const app = t.app();
  const res = await call(app, "POST", "/api/v1/models/load", { model_id: "tiny", gpu_id: slot });
  expect(res.status).toBe(200);
  return { t, app, pid: res.body.status.pid, port: res.body.status.port };
}

describe("GET /api/v1/process-registry", () => {
  it("returns the entries keyed by slot, as the original controller did", async () => {
    const { app, pid } = await loaded("1");
    const { status, body } = await call(app, "GET", "/api/v1/process-registry");
    expect(status).toBe(200);
    expect(Object.keys(body.processes)).toEqual(["1"]);
    expect(body.processes["1"]).toMatchObject({ pid, model_id: "tiny", gpu_id: "1", status: "running" });
    expect(body.processes["1"].command_line).toBeArray();
  });
});

describe("GET /api/v1/processes", () => {
  it("lists every entry with its live state, health, uptime and usage", async () => {
    const { app, pid } = await loaded();
    const { status, body } = await call(app, "GET", "/api/v1/processes");
    expect(status).toBe(200);
    expect(body.processes).toHaveLength(1);
    const [row] = body.processes;
    expect(row).toMatchObject({ slot: "0", state: "running", entry: { pid }, health: { ok: true, state: "ok" } });
    expect(row.uptime_ms).toBeGreaterThanOrEqual(0);
    expect(row.usage.rss_bytes).toBeGreaterThan(0);
  });

  it("uses the supervisor's recent statuses when there is one", async () => {
    const { t, pid } = await loaded();
    let asked = 0;
    const supervisor = {
      subscribe: () => () => undefined,
      statuses: async () => {
        asked += 1;
        return t.controller.status();
      },
    };
    const { body } = await call(t.app({ supervisor }), "GET", "/api/v1/processes/0");
    expect(asked).toBe(1);
    expect(body.entry.pid).toBe(pid);
  });

  it("answers one slot, 404 for an empty one and 422 for a malformed one", async () => {
    const { app, pid } = await loaded("0");
    expect((await call(app, "GET", "/api/v1/processes/0")).body.entry.pid).toBe(pid);
    const missing = await call(app, "GET", "/api/v1/processes/3");
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("NOT_FOUND");
    // "01" and "0,01" are not core's slot keys either (the API's own pattern once took them).
    for (const slot of ["abc", "..%2F..%2Fetc", "0%2F1", "1,1", "-1", "01", "0,01"]) {
      const bad = await call(app, "GET", `/api/v1/processes/${slot}`);
      expect({ slot, status: bad.status }).toEqual({ slot, status: slot === "1,1" ? 400 : 422 });
      expect(bad.body.error.message).toContain("slot");
    }
  });
});

describe("POST /api/v1/processes/:slot/verify", () => {
  it("says the PID still belongs to the registered process, and how it knows", async () => {
    const { app, pid } = await loaded();
    const { status, body } = await call(app, "POST", "/api/v1/processes/0/verify");
    expect(status).toBe(200);
    expect(body).toMatchObject({ slot: "0", state: "running", entry: { pid }, process: { pid, name: "llama-server" } });
    expect(body.reason.length).toBeGreaterThan(0);
  });

  it("reports a process that died behind corral's back as exited", async () => {
    const { app, pid } = await loaded();
    process.kill(pid, "SIGKILL");
    // The kernel delivers SIGKILL asynchronously: ask until the process is seen gone.
    const body = await waitFor(
      async () => {
        const res = await call(app, "POST", "/api/v1/processes/0/verify");
        return res.body.state === "exited" ? res.body : undefined;
      },
      10_000,
      "verify to report the killed process as exited",
    );
    expect(body).toMatchObject({ slot: "0", state: "exited", entry: { pid } });
  });
});

describe("DELETE /api/v1/processes/:slot", () => {
  it("unloads with SIGKILL at once when forced, and frees the port", async () => {
    const { t, app, pid, port } = await loaded();
    const { status, body } = await call(app, "DELETE", "/api/v1/processes/0?force=true");
    expect(status).toBe(200);
    expect(body).toMatchObject({ slot: "0", pid, signalled: true, port_freed: true });
    expect(await isPortFree(port)).toBe(true);
    expect(await t.controller.registry.list()).toEqual([]);
  });

  it("answers 404 for an empty slot and 422 for force=maybe", async () => {
    const { app } = await loaded();
    expect((await call(app, "DELETE", "/api/v1/processes/4")).status).toBe(404);
    expect((await call(app, "DELETE", "/api/v1/processes/0?force=maybe")).status).toBe(422);
    expect((await call(app, "GET", "/api/v1/processes/0")).status).toBe(200);
  });
});

describe("GET /api/v1/history", () => {
  it("returns the newest events first, limited and filtered by slot", async () => {
    const { app, pid } = await loaded("2");
    const { status, body } = await call(app, "GET", "/api/v1/history?limit=1");
    expect(status).toBe(200);
    expect(body.events).toHaveLength(1);
    expect(body.events[0]).toMatchObject({ event: "status", to: "running", slot: "2", pid });
    const other = await call(app, "GET", "/api/v1/history?slot=5");
    expect(other.body.events).toEqual([]);
    expect((await call(app, "GET", "/api/v1/history?limit=0")).status).toBe(422);
    expect((await call(app, "GET", "/api/v1/history?slot=..")).status).toBe(422);
  });
});

describe("GET /api/v1/gpus", () => {
  it("says there are no GPU figures where nvidia-smi is missing", async () => {
    const t = await testHome([]);
    homes.push(t);
    expect((await call(t.app(), "GET", "/api/v1/gpus")).body).toEqual({ available: false, gpus: [] });
  });

  it("shows memory per GPU with the slot and processes on each", async () => {
    let pidOnGpu = 0;
    const t = await testHome([{ id: "tiny" }], {
      gpuQuery: async () => ({
        gpus: [
          { index: 0, name: "NVIDIA H100", memory_total_mib: 81_559, memory_used_mib: 2_048 },
          { index: 1, name: "NVIDIA H100", memory_total_mib: 81_559, memory_used_mib: 0 },
        ],
        processes: [{ pid: pidOnGpu, used_memory_mib: 2_000, gpu_index: 0 }],
        taken_at: "2026-11-26T12:00:00.000Z",
      }),
    });
    homes.push(t);
    const app = t.app();
    const res = await call(app, "POST", "/api/v1/models/load", { model_id: "tiny", gpu_id: 0 });
    pidOnGpu = res.body.status.pid;
    const { body } = await call(app, "GET", "/api/v1/gpus");
    expect(body.available).toBe(true);
    expect(body.gpus[0]).toMatchObject({
      index: 0,
      memory_used_mib: 2_048,
      slots: ["0"],
      processes: [{ pid: pidOnGpu, slot: "0" }],
    });
    expect(body.gpus[1]).toMatchObject({ index: 1, slots: [], processes: [] });
    const metrics = await app.handle(authed("/metrics"));
    expect(await metrics.text()).toContain(
      `corral_process_gpu_memory_bytes{slot="0",model="tiny"} ${2_000 * 1024 * 1024}`,
    );
  });
});

describe("GET /metrics", () => {
  it("serves Prometheus text with the slot up", async () => {
    const { app } = await loaded();
    const res = await app.handle(authed("/metrics"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
    const text = await res.text();
    expect(text).toContain('corral_process_up{slot="0",model="tiny"} 1');
    expect(text).toContain('corral_process_restarts_total{slot="0",model="tiny"} 0');
    expect(text).toMatch(/corral_process_resident_memory_bytes\{slot="0",model="tiny"\} \d+/);
  });
});
