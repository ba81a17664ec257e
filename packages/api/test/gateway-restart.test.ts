// Across a SIGKILL of `corral serve` (a real subprocess), the loaded models keep running and the
// restarted gateway routes to the same PIDs with no load, its idle clock rebuilt from the registry.
import { afterEach, describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { type GatewayHome, gatewayHome } from "../../core/test/helpers/gateway-home.ts";

const MAIN = join(import.meta.dir, "..", "..", "cli", "src", "main.ts");
const TOKEN = "gateway-restart-token-0123456789abcdef";
const homes: GatewayHome[] = [];
const serves: Subprocess[] = [];

afterEach(async () => {
  for (const p of serves.splice(0)) p.kill("SIGKILL");
  for (const h of homes.splice(0)) await h.cleanup();
});

/** Starts `corral serve --port 0` on the home and resolves with its URL once it listens. */
async function startServe(h: GatewayHome): Promise<{ url: string; proc: Subprocess }> {
  const proc = Bun.spawn([process.execPath, MAIN, "serve", "--port", "0"], {
    env: { ...process.env, CORRAL_HOME: h.home, CORRAL_TOKEN: TOKEN },
    stdout: "pipe",
    stderr: "pipe",
  });
  serves.push(proc);
  const reader = proc.stdout.getReader();
  let out = "";
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const { done, value } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
    const match = /corral listening on (http:\/\/\S+?)\/? /.exec(out);
    if (match?.[1]) {
      reader.releaseLock();
      return { url: match[1], proc };
    }
  }
  throw new Error(`corral serve did not start:\n${out}\n${await new Response(proc.stderr).text()}`);
}

async function complete(url: string, model: string): Promise<Response> {
  return fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ model, prompt: "x" }),
  });
}

function history(home: string): { event: string; time: string }[] {
  return readFileSync(join(home, "history.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { event: string; time: string });
}

describe("a restarted corral serve", () => {
  it("routes to the same llama-servers after a SIGKILL, with no load and the idle clock kept", async () => {
    const h = await gatewayHome([
      { id: "a", gpu: "0", ttl: 3600 },
      { id: "b", gpu: "1", ttl: 3600 },
    ]);
    homes.push(h);
    const first = await startServe(h);
    const pids: Record<string, string | null> = {};
    for (const id of ["a", "b"]) {
      const res = await complete(first.url, id);
      expect(res.status).toBe(200);
      pids[id] = res.headers.get("x-stand-in-pid");
      h.pids.add(Number(pids[id]));
    }
    // The last request times reach the registry a moment after the requests (writes coalesce).
    const deadline = Date.now() + 5000;
    let entries = await h.controller.registry.list();
    while (entries.some((l) => !l.entry.last_request_at) && Date.now() < deadline) {
      await Bun.sleep(50);
      entries = await h.controller.registry.list();
    }
    const recorded = Object.fromEntries(entries.map((l) => [l.entry.model_id, l.entry.last_request_at]));
    expect(Object.keys(recorded).sort()).toEqual(["a", "b"]);
    first.proc.kill("SIGKILL");
    await first.proc.exited;
    const restartedAt = new Date().toISOString();

    const second = await startServe(h);
    const before = (await (
      await fetch(`${second.url}/v1/models`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as { data: { id: string; corral: { last_request_at: string; unload_at: string } }[] };
    for (const m of before.data) {
      expect(m.corral.last_request_at).toBe(recorded[m.id] ?? "missing");
      expect(Date.parse(m.corral.unload_at)).toBe(Date.parse(m.corral.last_request_at) + 3600_000);
    }
    for (const id of ["a", "b"]) {
      const res = await complete(second.url, id);
      expect(res.status).toBe(200);
      expect(res.headers.get("x-stand-in-pid")).toBe(pids[id] ?? "missing");
    }
    const since = history(h.home).filter((e) => e.time >= restartedAt);
    expect(since.filter((e) => e.event === "registered" || e.event === "load-failed")).toEqual([]);
    const models = (await (
      await fetch(`${second.url}/v1/models`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as { data: { id: string; corral: { pid: number; served: number } }[] };
    expect(models.data.map((m) => `${m.id} ${m.corral.pid} ${m.corral.served}`)).toEqual([
      `a ${pids.a} 1`,
      `b ${pids.b} 1`,
    ]);
  }, 60_000);
});
