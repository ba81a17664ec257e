import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { identityOf } from "../src/process/identity.ts";
import { procfsProbe } from "../src/process/procfs.ts";
import { createRegistry } from "../src/registry/registry.ts";
import type { ProcessEntry } from "../src/store/schema.ts";
import { namedCopy, waitFor } from "./fixtures/index.ts";

// verifyAll confirms most entries from the stat line alone (the recorded start tick and command
// name); these are the cases that must still be read in full and caught.
const linux = process.platform === "linux";
const dirs: string[] = [];
const children: ReturnType<typeof Bun.spawn>[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function sleeper(name: string) {
  const exe = namedCopy(Bun.which("sleep") ?? "/bin/sleep", name);
  const child = Bun.spawn([exe, "60"], { stdio: ["ignore", "ignore", "ignore"] });
  children.push(child);
  await waitFor(() => readlinkSync(`/proc/${child.pid}/exe`) === exe, 10_000, `${name} exec`);
  const info = await procfsProbe().get(child.pid);
  if (!info) throw new Error(`${name} is not running`);
  return info;
}

function entry(pid: number, recorded: Partial<ProcessEntry>): ProcessEntry {
  return {
    pid,
    model_id: "m",
    model_name: "M",
    model_path: "/m.gguf",
    gpu_id: "0",
    port: 8081,
    started_at: new Date().toISOString(),
    command_line: [],
    status: "running",
    ...recorded,
  };
}

async function verifyOne(recorded: ProcessEntry) {
  const home = mkdtempSync(join(tmpdir(), "corral-verify-scan-"));
  dirs.push(home);
  const registry = createRegistry({ home, probe: procfsProbe() });
  await registry.store.update((entries) => {
    entries["0"] = recorded;
  });
  const [verified] = await registry.verifyAll();
  return verified!;
}

describe.if(linux)("verifyAll from the stat line", () => {
  it("confirms an entry whose process started at the recorded tick, with the recorded executable", async () => {
    const info = await sleeper("llama-server");
    const v = await verifyOne(entry(info.pid, identityOf(info)));
    expect(v.probe.state).toBe("running");
    expect(v.probe.process).toMatchObject({ exe: info.exe, startTimeMs: info.startTimeMs });
  });

  it("calls a PID whose process started at another time reused", async () => {
    const info = await sleeper("llama-server");
    const v = await verifyOne(entry(info.pid, { ...identityOf(info), proc_start_ms: info.startTimeMs! - 5000 }));
    expect(v.probe.state).toBe("pid-reused");
  });

  it("reads the executable when the command name is not the recorded one, and calls another program reused", async () => {
    const info = await sleeper("redis-server");
    const v = await verifyOne(entry(info.pid, { ...identityOf(info), executable: "/opt/llama/llama-server" }));
    expect(v.probe.state).toBe("pid-reused");
    expect(v.probe.process?.exe).toBe(info.exe);
  });

  it("reads a legacy entry (no recorded start time) in full and upgrades it", async () => {
    const info = await sleeper("llama-server");
    const v = await verifyOne(entry(info.pid, {}));
    expect(v.probe.state).toBe("running");
    expect(v.entry).toMatchObject({ executable: info.exe, proc_start_ms: info.startTimeMs });
  });
});
