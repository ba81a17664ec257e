import { describe, expect, it } from "bun:test";
import { listOf, toGpus, toHistory, toLogLines, toModels, toOrphans, toProcessRows } from "./normalize.ts";

const status = {
  slot: "0",
  entry: {
    pid: 4242,
    model_id: "qwen",
    model_name: "Qwen 7B",
    gpu_id: 0,
    port: 8081,
    status: "running",
    started_at: "x",
    command_line: [],
  },
  state: "running",
  state_reason: "identity matches",
  health: { ok: true, state: "ok", ms: 2 },
  uptime_ms: 5000,
  usage: { cpu_percent: 3.5, rss_bytes: 1024, gpu_memory_mib: 512 },
  checked_at: "2026-11-26T12:00:00.000Z",
};

describe("listOf", () => {
  it("accepts a bare array, a wrapped array and a keyed record", () => {
    expect(listOf([{ a: 1 }], "x")).toEqual([{ a: 1 }]);
    expect(listOf({ x: [{ a: 1 }] }, "x")).toEqual([{ a: 1 }]);
    expect(listOf({ x: { k: { a: 1 } } }, "x")).toEqual([{ a: 1, _key: "k" }]);
  });

  it("gives nothing for a body it does not understand", () => {
    expect(listOf(null, "x")).toEqual([]);
    expect(listOf({ x: 3 }, "x")).toEqual([]);
    expect(listOf([1, "a", { a: 1 }], "x")).toEqual([{ a: 1 }]);
  });
});

describe("toProcessRows", () => {
  it("reads core's ProcessStatus rows", () => {
    expect(toProcessRows({ processes: [status] })).toEqual([
      {
        slot: "0",
        model: "qwen",
        gpus: "0",
        port: 8081,
        pid: 4242,
        status: "running",
        reason: "identity matches",
        health: "ok",
        uptimeMs: 5000,
        cpuPercent: 3.5,
        rssBytes: 1024,
        gpuMib: 512,
      },
    ]);
  });

  it("reads the original controller's slot-keyed registry entries", () => {
    const [row] = toProcessRows({
      processes: { "1,2": { pid: 7, model_id: "m", gpu_id: "1,2", port: 9000, status: "loading" } },
    });
    expect(row).toMatchObject({
      slot: "1,2",
      gpus: "1,2",
      pid: 7,
      status: "loading",
      health: undefined,
      cpuPercent: undefined,
    });
  });

  it("shows the OS verdict when the process is gone though the registry says running", () => {
    const [row] = toProcessRows([{ ...status, state: "exited", state_reason: "no process has PID 4242" }]);
    expect(row?.status).toBe("exited");
    expect(row?.reason).toBe("no process has PID 4242");
  });

  it("sorts slots numerically", () => {
    const rows = toProcessRows([
      { ...status, slot: "10" },
      { ...status, slot: "2" },
      { ...status, slot: "0,1" },
    ]);
    expect(rows.map((r) => r.slot)).toEqual(["0,1", "2", "10"]);
  });
});

describe("toOrphans", () => {
  it("keeps the evidence and drops items without a PID", () => {
    const orphans = toOrphans({
      orphans: [
        {
          pid: 99,
          user: "root",
          command_line: ["llama-server", "-m", "a.gguf"],
          model_id: "a",
          port: 8090,
          verdict: "ours",
          reasons: ["marker"],
        },
        { user: "nobody" },
      ],
    });
    expect(orphans).toEqual([
      {
        pid: 99,
        user: "root",
        command: ["llama-server", "-m", "a.gguf"],
        model: "a",
        port: 8090,
        verdict: "ours",
        reasons: ["marker"],
      },
    ]);
  });

  it("reads the PID and command of a nested process and a single reason", () => {
    const [orphan] = toOrphans([{ process: { pid: 5, cmdline: ["x"], uid: 1000 }, reason: "foreign home" }]);
    expect(orphan).toMatchObject({
      pid: 5,
      command: ["x"],
      user: "1000",
      verdict: "unknown",
      reasons: ["foreign home"],
    });
  });
});

describe("toGpus", () => {
  it("reads the API's GPUs with the slots on each", () => {
    const gpus = toGpus({
      available: true,
      gpus: [{ index: 0, name: "H100", memory_used_mib: 10, memory_total_mib: 80, slots: ["0"] }],
    });
    expect(gpus).toEqual([{ index: 0, name: "H100", usedMib: 10, totalMib: 80, slots: ["0"] }]);
  });

  it("says there are no figures for an empty list or { available: false }", () => {
    expect(toGpus([])).toBeUndefined();
    expect(toGpus({ available: false })).toBeUndefined();
    expect(toGpus({ available: true, gpus: [] })).toBeUndefined();
    expect(toGpus(null)).toBeUndefined();
  });
});

describe("toModels", () => {
  it("reads model views and bare ids", () => {
    expect(toModels({ models: [{ id: "q", name: "Q", gpu: "0", port: 8081, loaded_in: ["0"] }, "tiny"] })).toEqual([
      { id: "q", name: "Q", gpu: "0", port: 8081, loadedIn: ["0"] },
      { id: "tiny", name: "tiny", gpu: undefined, port: undefined, loadedIn: [] },
    ]);
  });

  it("reads an id-keyed record of models", () => {
    expect(toModels({ models: { q: { name: "Q" } } }).map((m) => m.id)).toEqual(["q"]);
  });
});

describe("toHistory", () => {
  it("puts the newest event first", () => {
    const items = toHistory({
      events: [
        { time: "2026-11-26T12:00:00.000Z", event: "registered", slot: "0", pid: 1 },
        { time: "2026-11-26T12:05:00.000Z", event: "status", slot: "0", from: "loading", to: "running" },
      ],
    });
    expect(items.map((i) => i.event)).toEqual(["status", "registered"]);
    expect(items[0]).toMatchObject({ from: "loading", to: "running" });
  });

  it("reads a bare array and a { history } wrapper alike", () => {
    expect(toHistory([{ event: "x" }])).toHaveLength(1);
    expect(toHistory({ history: [{ event: "x" }] })).toHaveLength(1);
  });
});

describe("toLogLines", () => {
  it("reads the original's { logs }, follow frames and plain text", () => {
    expect(toLogLines({ logs: ["a", "b"], total_lines: 2 })).toEqual(["a", "b"]);
    expect(toLogLines({ lines: ["c"] })).toEqual(["c"]);
    expect(toLogLines("a\nb")).toEqual(["a", "b"]);
    expect(toLogLines({})).toEqual([]);
  });
});
