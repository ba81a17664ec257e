/**
 * Moving from llamacontroller with its servers running: stand-in llama-servers started the way the
 * original starts them (`exe -m PATH --host H --port P`, no corral marker), its data/processes.json
 * naming them, one dead PID, one PID held by another program and one held by another llama-server.
 * After the migration the live ones are corral's with the same PIDs, the rest reported, and no
 * process got a signal (each still runs with the same start time, and a SIGTERM would be in its log).
 */
import { afterAll, describe, expect, it } from "bun:test";
import { createHash } from "node:crypto";
import {
  closeSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTokenStore } from "../src/auth/tokens.ts";
import { readProcStat } from "../src/process/proc-stat.ts";
import { createRegistry } from "../src/registry/registry.ts";
import { migrateFromLlamacontroller } from "../src/setup/llamacontroller-import.ts";
import { freePort, namedCopy, standInServer, waitFor } from "./fixtures/index.ts";

const FIXTURE = join(import.meta.dir, "fixtures", "llamacontroller", "full");
const started: { kill(signal?: number): void; pid: number }[] = [];
afterAll(() => {
  for (const p of started) p.kill(9);
});

/** Python's `datetime.now().isoformat()`: local time, no zone. */
function naive(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}000`;
}

/** Starts a llama-server the way the original does, and waits until it answers. */
async function startAsOriginal(model: string, dir: string, extra: readonly string[] = []) {
  const exe = await standInServer();
  const port = await freePort();
  const argv = [exe, "-m", model, "--host", "127.0.0.1", "--port", String(port), ...extra, "--fake-ignore-sigterm"];
  const log = join(dir, `${port}.log`);
  const fd = openSync(log, "a");
  const proc = Bun.spawn(argv, { stdio: ["ignore", fd, fd], detached: true });
  closeSync(fd);
  started.push(proc);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok, 15_000, `stand-in on ${port}`);
  return { pid: proc.pid, port, argv, log, startedAt: naive(Date.now()) };
}

/** Field 22 of /proc/<pid>/stat (start time in ticks) and the state. */
function stat(pid: number): { start: number; state: string } {
  const s = readProcStat(`/proc/${pid}/stat`);
  if (!s) throw new Error(`pid ${pid} is gone`);
  return { start: s.startTicks, state: s.state };
}

function treeHash(dir: string): string {
  const h = createHash("sha256");
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      h.update(`${p}:${st.mode}:${st.mtimeMs}\n`);
      if (st.isDirectory()) walk(p);
      else h.update(readFileSync(p));
    }
  };
  walk(dir);
  return h.digest("hex");
}

describe("corral init --from-llamacontroller with servers running", () => {
  it("takes the live servers with the same PIDs, reports the others, and signals nothing", async () => {
    const root = mkdtempSync(join(tmpdir(), "corral-lc-"));
    const dir = join(root, "llamacontroller");
    cpSync(FIXTURE, dir, { recursive: true });
    mkdirSync(join(dir, "data"));
    const home = join(root, "home");
    const phi = await startAsOriginal("/models/phi-4-reasoning-plus-Q4_K_M.gguf", root, [
      "--api-key",
      "key-on-cmdline",
    ]);
    const tiny = await startAsOriginal("/models/tiny.gguf", root);
    // A llama-server that took a PID the original recorded for another model (its started_at is later).
    const other = await startAsOriginal("/models/something-else.gguf", root);
    const redis = Bun.spawn([namedCopy("/usr/bin/sleep", "redis-server"), "60"], {
      stdio: ["ignore", "ignore", "ignore"],
    });
    started.push(redis);
    const dead = Bun.spawn(["true"]);
    await dead.exited;
    const entry = (pid: number, id: string, path: string, gpu: string, port: number, at: string) => ({
      pid,
      model_id: id,
      model_name: id,
      model_path: path,
      gpu_id: gpu,
      port,
      started_at: at,
      command_line: ["llama-server", "-m", path],
      status: "running",
    });
    const original = {
      version: "1.0",
      last_updated: naive(Date.now()),
      processes: {
        "0": entry(phi.pid, "phi-4-reasoning", phi.argv[2]!, "0", phi.port, phi.startedAt),
        "1": entry(tiny.pid, "tiny", tiny.argv[2]!, "1", tiny.port, tiny.startedAt),
        "2": entry(dead.pid, "gone", "/models/gone.gguf", "2", 9002, naive(Date.now() - 60_000)),
        "3": entry(redis.pid, "was-here", "/models/was.gguf", "3", 9003, naive(Date.now())),
        "4": entry(
          other.pid,
          "qwen-coder",
          "/models/qwen3-coder-30b-a3b-Q5_K_M.gguf",
          "4",
          other.port,
          naive(Date.now()),
        ),
      },
    };
    writeFileSync(join(dir, "data", "processes.json"), JSON.stringify(original, null, 2));
    const before = treeHash(dir);
    const stats = [phi, tiny, other, redis].map((p) => stat(p.pid));

    const registry = createRegistry({ home });
    const m = await migrateFromLlamacontroller({ dir, home, registry });

    const bySlot = Object.fromEntries(m.servers.map((s) => [s.slot, s]));
    expect(bySlot["0"]).toMatchObject({ pid: phi.pid, outcome: "imported", model_id: "phi-4-reasoning" });
    expect(bySlot["1"]).toMatchObject({ pid: tiny.pid, outcome: "imported", model_id: "tiny" });
    expect(bySlot["2"]).toMatchObject({ pid: dead.pid, outcome: "exited" });
    expect(bySlot["3"]).toMatchObject({ pid: redis.pid, outcome: "pid-reused" });
    expect(bySlot["3"]!.reason).toContain("not a llama-server");
    expect(bySlot["4"]).toMatchObject({ pid: other.pid, outcome: "pid-reused" });
    expect(bySlot["4"]!.reason).toContain("something-else.gguf");

    const tracked = await registry.list();
    expect(tracked.map((t) => [t.slot, t.entry.pid, t.entry.status])).toEqual([
      ["0", phi.pid, "running"],
      ["1", tiny.pid, "running"],
    ]);
    expect(tracked[0]!.entry.proc_start_ms).toBeGreaterThan(0);
    expect(tracked[0]!.entry.executable).toBe(phi.argv[0]);
    // The original's servers answer only with its key: kept in api_key (from the command line, else
    // the original's llama_cpp.api_key), and hidden in the command line the API shows.
    expect(tracked[0]!.entry.api_key).toBe("key-on-cmdline");
    expect(tracked[0]!.entry.command_line).toContain("***");
    expect(tracked[0]!.entry.command_line).not.toContain("key-on-cmdline");
    expect(tracked[1]!.entry.api_key).toBe("sk-original-secret");
    // corral judges them its own from now on, by the identity it recorded.
    expect((await registry.verify("0")).probe.state).toBe("running");

    // Nothing was signalled: same processes, same start times, no SIGTERM in their logs.
    expect([phi, tiny, other, redis].map((p) => stat(p.pid))).toEqual(stats);
    for (const s of [phi, tiny, other]) expect(readFileSync(s.log, "utf8")).not.toContain("SIGTERM");
    expect(stats.every((s) => s.state !== "Z")).toBe(true);
    // Nothing in the original's folder changed.
    expect(treeHash(dir)).toBe(before);

    // corral.yaml 0600; each user a token of its role's scope, the secret given once.
    expect(statSync(m.file).mode & 0o777).toBe(0o600);
    const tokens = createTokenStore({ file: join(home, "tokens.json") });
    expect(m.tokens.map((t) => [t.name, t.scope])).toEqual([
      ["admin", "admin"],
      ["alice", "control"],
      ["bob", "read"],
      ["carol-smith", "control"],
    ]);
    for (const t of m.tokens) expect(tokens.verify(t.secret!)).toEqual({ ok: true, name: t.name, scope: t.scope });
  }, 60_000);
});
