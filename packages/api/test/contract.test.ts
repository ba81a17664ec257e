/**
 * The response contract: every JSON route declares a schema from core, and the tests check bodies
 * against it, including GET /processes, whose pre-serialized body Elysia does not check.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { ProcessListSchema, ProcessStatusSchema } from "@corral/core";
import { authed, call, declaredResponse, expectShape, type TestHome, testHome } from "./helpers.ts";

const t: TestHome = await testHome([{ id: "tiny" }]);
afterAll(() => t.cleanup());

/** corral's own routes that answer something other than one JSON document. */
const NOT_JSON = new Set(["GET /api/v1/events"]);

describe("the response contract", () => {
  it("has every JSON route of the REST API declare its response schema", () => {
    const app = t.app();
    // Under /api/v1 only: the gateway's OpenAI and Ollama routes speak those APIs' shapes, mostly
    // passed on from llama-server as they arrive; /metrics is Prometheus text.
    const undeclared = app.routes
      .filter((r) => r.path.startsWith("/api/v1/") && !NOT_JSON.has(`${r.method} ${r.path}`))
      .filter((r) => declaredResponse(app, r.method, r.path.replace(/:[^/]+/g, "0"), 200) === undefined)
      .map((r) => `${r.method} ${r.path}`);
    expect(undeclared).toEqual([]);
  });

  it("names each field that does not match, and returns a matching body typed", () => {
    const row = {
      slot: "0",
      entry: {
        pid: 4242,
        model_id: "tiny",
        model_name: "tiny",
        model_path: "/m/t.gguf",
        gpu_id: "0",
        port: 8081,
        started_at: "2026-11-26T12:00:00.000Z",
        command_line: ["llama-server"],
        status: "running",
      },
      state: "running",
      state_reason: "same process",
      checked_at: "2026-11-26T12:00:01.000Z",
    };
    expect(expectShape(ProcessStatusSchema, row).entry.pid).toBe(4242);
    expect(() => expectShape(ProcessStatusSchema, { ...row, state: "gone", uptime_ms: "1s" })).toThrow(
      /\/state: .*\n.*\/uptime_ms: Expected number/,
    );
    expect(() => expectShape(ProcessListSchema, { processes: [{ ...row, entry: { pid: 1 } }] })).toThrow(
      "/processes/0/entry/model_id",
    );
  });

  it("checks the pre-serialized GET /processes body, which Elysia passes on unchecked", async () => {
    const load = await call(t.app(), "POST", "/api/v1/models/load", { model_id: "tiny", gpu_id: 0 });
    expect(load.status).toBe(200);
    // With a supervisor the route answers its tick's rows as a ready Response, which Elysia does not check.
    const supervisor = { subscribe: () => () => undefined, statuses: () => t.controller.status() };
    const res = await t.app({ supervisor }).handle(authed("/api/v1/processes"));
    const { processes } = expectShape(ProcessListSchema, await res.json());
    expect(processes.map((p) => [p.slot, p.state, p.health?.state])).toEqual([["0", "running", "ok"]]);
    // A drifted row (what a changed core type would send) fails the same check the tests run.
    const drifted = { processes: processes.map((p) => ({ ...p, state_reason: undefined, usage: { cpu: 1 } })) };
    expect(() => expectShape(ProcessListSchema, JSON.parse(JSON.stringify(drifted)))).toThrow("/processes/0/usage");
  });
});
