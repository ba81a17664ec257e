import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  HistoryEventSchema,
  isPortFree,
  LoadResponseSchema,
  ProcessListSchema,
  UnloadResponseSchema,
} from "@corral/core";
import type { Subprocess } from "bun";
import { expectShape, freePort, killPids, sseData, standInServer, waitFor } from "./helpers.ts";

const MAIN = join(import.meta.dir, "..", "src", "main.ts");
const home = mkdtempSync(join(tmpdir(), "corral-e2e-"));
const configFile = join(home, "corral.json");
const servers: Subprocess[] = [];
const llamaPids = new Set<number>();

afterAll(() => {
  for (const s of servers) s.kill("SIGKILL");
  killPids(llamaPids);
  rmSync(home, { recursive: true, force: true });
});

/** Starts `main.ts` on a fresh port and waits for its "listening" line. */
async function startServer(): Promise<{
  proc: Subprocess<"ignore", "pipe", "pipe">;
  url: string;
  output: () => string;
}> {
  const port = await freePort();
  const proc = Bun.spawn(["bun", MAIN, "--home", home, "--config", configFile, "--port", String(port)], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, CORRAL_TOKEN: "" },
  });
  servers.push(proc);
  let out = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const reader = stream.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) out += new TextDecoder().decode(r.value);
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  await waitFor(() => out.includes("listening on") || proc.exitCode !== null, 20_000, "the server to listen");
  if (!out.includes("listening on")) throw new Error(`server did not start:\n${out}`);
  return { proc, url: `http://127.0.0.1:${port}`, output: () => out };
}

/** The token the first start made in the home, as a user's page link carries it. */
const bearer = () => ({ authorization: `Bearer ${readFileSync(join(home, "token"), "utf8").trim()}` });

async function json(url: string, init?: RequestInit): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    ...init,
    headers: { "content-type": "application/json", ...bearer(), ...init?.headers },
  });
  return { status: res.status, body: await res.json() };
}

describe("the server through a real port", () => {
  it("reattaches a model after being SIGKILLed, streams events, and unloads it freeing the port", async () => {
    const model = join(home, "tiny.gguf");
    writeFileSync(model, "GGUF stand-in model\n");
    const base = await freePort();
    writeFileSync(
      configFile,
      JSON.stringify({
        llama_server: await standInServer(),
        ports: { range: [base, Math.min(base + 50, 65_535)], gpu: {} },
        timeouts: { load_ms: 15_000, stop_ms: 3_000, health_ms: 1_000 },
        watch: { interval_ms: 500 },
        gpu_release_wait_ms: 0,
        models: [{ id: "tiny", path: model, args: ["--fake-load-ms", "200"] }],
      }),
    );

    const first = await startServer();
    const loaded = await json(`${first.url}/api/v1/models/load`, {
      method: "POST",
      body: JSON.stringify({ model_id: "tiny", gpu_id: 0 }),
    });
    expect(loaded.status).toBe(200);
    const { pid, port } = expectShape(LoadResponseSchema, loaded.body).status;
    llamaPids.add(pid);
    await waitFor(() => first.output().includes("POST /api/v1/models/load 200"), 5_000, "the request log line");

    first.proc.kill("SIGKILL");
    await first.proc.exited;
    // The llama-server is detached: it outlives the controller.
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);

    const second = await startServer();
    expect(second.output()).toContain("1 process recovered");
    const listed = await json(`${second.url}/api/v1/processes`);
    expect(expectShape(ProcessListSchema, listed.body).processes).toHaveLength(1);
    expect(listed.body.processes[0]).toMatchObject({
      slot: "0",
      state: "running",
      entry: { pid, port, status: "running" },
    });

    const events = await fetch(`${second.url}/api/v1/events`, { headers: bearer() });
    expect(events.headers.get("content-type")).toContain("text/event-stream");
    const reader = events.body!.getReader();
    let stream = "";
    const unloaded = await json(`${second.url}/api/v1/models/unload`, {
      method: "POST",
      body: JSON.stringify({ gpu_id: 0 }),
    });
    expect(unloaded.status).toBe(200);
    expect(expectShape(UnloadResponseSchema, unloaded.body)).toMatchObject({ pid, signalled: true, port_freed: true });
    expect(await isPortFree(port)).toBe(true);
    while (!stream.includes('"event":"killed"')) {
      const { value, done } = await reader.read();
      if (done) break;
      stream += new TextDecoder().decode(value);
    }
    await reader.cancel();
    expect(sseData(stream, HistoryEventSchema)).toContainEqual(expect.objectContaining({ event: "killed", pid }));

    second.proc.kill("SIGTERM");
    expect(await second.proc.exited).toBe(0);
    expect(second.output()).toContain("SIGTERM: stopping");
  }, 60_000);
});
