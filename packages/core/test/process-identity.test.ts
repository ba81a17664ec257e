import { afterAll, describe, expect, it } from "bun:test";
import { identityOf, judgeEntry } from "../src/process/identity.ts";
import { defaultProbe } from "../src/process/probe.ts";
import type { ProcessInfo } from "../src/process/types.ts";
import type { ProcessEntry } from "../src/store/schema.ts";
import { namedCopy, type StandIn, spawnStandIn, waitFor } from "./fixtures/index.ts";

const probe = defaultProbe();
const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const c of cleanups) c();
});

async function standIn(): Promise<StandIn> {
  const s = await spawnStandIn({ model: "/models/tiny.gguf" });
  cleanups.push(s.stop);
  return s;
}

function entryFor(pid: number, over: Partial<ProcessEntry> = {}): ProcessEntry {
  return {
    pid,
    model_id: "tiny",
    model_name: "Tiny",
    model_path: "/models/tiny.gguf",
    gpu_id: 0,
    port: 8080,
    started_at: new Date().toISOString(),
    command_line: ["llama-server"],
    status: "running",
    ...over,
  };
}

async function live(pid: number): Promise<ProcessInfo> {
  const info = await probe.get(pid);
  if (!info) throw new Error(`pid ${pid} is not running`);
  return info;
}

/** A naive local timestamp like the original controller's `datetime.now().isoformat()`. */
function naiveLocal(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}123`;
}

describe("judgeEntry against real processes", () => {
  it("says running for a stand-in llama-server registered with its identity", async () => {
    const s = await standIn();
    const info = await live(s.pid);
    expect(info.name).toBe("llama-server");
    const result = judgeEntry(entryFor(s.pid, identityOf(info)), await live(s.pid));
    expect(result.state).toBe("running");
    expect(result.reason).toContain("llama-server");
  });

  it("says exited once the process is gone and reaped", async () => {
    const child = Bun.spawn(["sleep", "30"]);
    const identity = identityOf(await live(child.pid));
    child.kill("SIGKILL");
    await child.exited;
    const result = judgeEntry(entryFor(child.pid, identity), await probe.get(child.pid));
    expect(result.state).toBe("exited");
  });

  it("never takes a live redis-server on the PID for ours", async () => {
    const redis = Bun.spawn([namedCopy("/bin/sleep", "redis-server"), "30"]);
    cleanups.push(() => redis.kill("SIGKILL"));
    // Wait for the exec: until then the child still shows as bun.
    const info = await waitFor(
      async () => {
        const seen = await live(redis.pid);
        return seen.name === "redis-server" ? seen : undefined;
      },
      5000,
      "redis-server to start",
    );
    // A legacy entry recorded just now: only the name can tell this is not our server.
    const legacy = entryFor(redis.pid, { started_at: new Date().toISOString() });
    const result = judgeEntry(legacy, info);
    expect(result.state).toBe("pid-reused");
    expect(result.reason).toContain("redis-server");
    expect(result.reason).toContain("not a llama-server");
  });

  it("says pid-reused for a live llama-server that started at another time", async () => {
    const s = await standIn();
    const info = await live(s.pid);
    const recorded = entryFor(s.pid, { ...identityOf(info), proc_start_ms: (info.startTimeMs ?? 0) - 60_000 });
    const result = judgeEntry(recorded, info);
    expect(result.state).toBe("pid-reused");
    expect(result.reason).toContain(new Date(recorded.proc_start_ms!).toISOString());
  });

  it("judges a legacy entry by its naive started_at", async () => {
    const s = await standIn();
    const info = await live(s.pid);
    const start = info.startTimeMs ?? 0;
    // The original controller wrote started_at just after spawning: a little after the start.
    const fresh = entryFor(s.pid, { started_at: naiveLocal(start + 300) });
    expect(judgeEntry(fresh, info).state).toBe("running");
    // An entry written an hour before this process started cannot be about it.
    const stale = entryFor(s.pid, { started_at: naiveLocal(start - 3600_000) });
    const result = judgeEntry(stale, info);
    expect(result.state).toBe("pid-reused");
    expect(result.reason).toContain(stale.started_at);
  });
});
