import { describe, expect, it } from "bun:test";
import type { ProcessStatus } from "../lifecycle/types.ts";
import type { HealthReport } from "../server/views.ts";
import type { EntryStatus } from "../store/schema.ts";
import { nextStatus, restartDelay } from "./watch-rules.ts";

const now = Date.UTC(2026, 10, 26, 12, 0, 0);
const LOAD_MS = 300_000;

/** A status row as one supervisor tick sees it. */
function row(
  status: EntryStatus,
  state: ProcessStatus["state"],
  health?: Partial<HealthReport> & Pick<HealthReport, "state">,
  startedAgoMs = 10_000,
): ProcessStatus {
  return {
    slot: "0",
    entry: {
      pid: 4242,
      model_id: "m",
      model_name: "M",
      model_path: "/m.gguf",
      gpu_id: "0",
      port: 8081,
      started_at: new Date(now - startedAgoMs).toISOString(),
      command_line: [],
      status,
    },
    state,
    state_reason: `the process is ${state}`,
    ...(health ? { health: { ok: health.state === "ok", ms: 1, ...health } } : {}),
    checked_at: new Date(now).toISOString(),
  };
}

const verdict = (r: ProcessStatus, wedged?: string) => nextStatus(r, wedged, now, LOAD_MS);

describe("nextStatus", () => {
  it("leaves an entry being stopped alone, whatever its process does", () => {
    expect(verdict(row("stopping", "exited"))).toEqual({
      crashed: false,
      remove: false,
      status: undefined,
      reason: "being stopped",
    });
  });

  it("calls a running entry whose process exited or whose PID was reused a crash", () => {
    for (const state of ["exited", "pid-reused"] as const) {
      expect(verdict(row("running", state))).toEqual({
        crashed: true,
        remove: false,
        status: "exited",
        reason: `the process is ${state}`,
      });
    }
    expect(verdict(row("unhealthy", "exited")).crashed).toBe(true);
  });

  it("removes a loading entry whose process is gone, without calling it a crash", () => {
    expect(verdict(row("loading", "exited"))).toMatchObject({ crashed: false, remove: true, status: undefined });
  });

  it("keeps the status while the process cannot be judged or was not health-checked", () => {
    for (const state of ["access-denied", "unknown"] as const) {
      expect(verdict(row("running", state))).toMatchObject({ status: undefined, reason: `the process is ${state}` });
    }
    expect(verdict(row("running", "running"))).toMatchObject({ status: undefined, reason: "not checked" });
  });

  it("moves a healthy server to running, and a wedged one to unhealthy", () => {
    expect(verdict(row("loading", "running", { state: "ok" }))).toMatchObject({ status: "running", reason: "healthy" });
    expect(verdict(row("running", "running", { state: "ok" }), "wedged: no token for 130 s")).toMatchObject({
      status: "unhealthy",
      reason: "wedged: no token for 130 s",
    });
  });

  it("says loading while /health answers 503, even for an entry that was running", () => {
    expect(verdict(row("running", "running", { state: "loading" }))).toMatchObject({ status: "loading" });
  });

  it("gives a loading entry its grace before a failing /health makes it unhealthy", () => {
    const failing = { state: "unreachable", error: "connection refused" } as const;
    expect(verdict(row("loading", "running", failing, 10_000))).toMatchObject({
      status: undefined,
      reason: "starting up",
    });
    expect(verdict(row("loading", "running", failing, LOAD_MS + 1))).toMatchObject({
      status: "unhealthy",
      reason: "/health unreachable: connection refused",
    });
    // A running entry has no grace at all.
    expect(verdict(row("running", "running", { state: "error" }, 10))).toMatchObject({
      status: "unhealthy",
      reason: "/health error",
    });
  });
});

describe("restartDelay", () => {
  it("doubles from the base and stops at the cap", () => {
    expect([0, 1, 2, 3].map((n) => restartDelay(n, 1000, 60_000))).toEqual([1000, 2000, 4000, 8000]);
    expect(restartDelay(10, 1000, 60_000)).toBe(60_000);
    expect(restartDelay(-1, 1000, 60_000)).toBe(1000);
  });
});
