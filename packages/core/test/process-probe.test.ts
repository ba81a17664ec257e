import { afterAll, describe, expect, it } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { judgeEntry } from "../src/process/identity.ts";
import { procfsProbe } from "../src/process/procfs.ts";
import { psListProbe } from "../src/process/pslist.ts";
import type { ProcessInfo } from "../src/process/types.ts";
import type { ProcessEntry } from "../src/store/schema.ts";
import { waitFor } from "./fixtures/index.ts";

const linux = process.platform === "linux";
const started: { kill(signal?: number | NodeJS.Signals): void }[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const p of started) p.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * A zombie we own: dash's `read` blocks without reaping, so the background sleep stays a
 * zombie until we close stdin and the shell's `wait` reaps it (nothing is left behind).
 */
async function zombie(): Promise<{ pid: number; release(): Promise<void> }> {
  const shell = Bun.spawn(["sh", "-c", "sleep 0.05 & echo $!; read line; wait"], { stdin: "pipe", stdout: "pipe" });
  started.push(shell);
  const { value } = await shell.stdout.getReader().read();
  const pid = Number(new TextDecoder().decode(value).trim());
  return {
    pid,
    release: async () => {
      shell.stdin.end();
      await shell.exited;
    },
  };
}

describe.if(linux)("procfs and ps-list probes", () => {
  it("agree on pid, ppid, executable name and start time of a live child", async () => {
    const child = Bun.spawn(["sleep", "30"]);
    started.push(child);
    // Wait until the child has exec'd `sleep`, so both probes look at the same program.
    const deadline = Date.now() + 5000;
    while (basename((await procfsProbe().get(child.pid))?.exe ?? "") !== "sleep" && Date.now() < deadline)
      await Bun.sleep(5);
    const [fast, slow] = await Promise.all([procfsProbe().get(child.pid), psListProbe().get(child.pid)]);
    expect(fast).toBeDefined();
    expect(slow).toBeDefined();
    const a = fast as ProcessInfo;
    const b = slow as ProcessInfo;
    expect(b.pid).toBe(a.pid);
    expect(b.ppid).toBe(process.pid);
    expect(a.ppid).toBe(process.pid);
    expect(basename(a.exe ?? "")).toBe("sleep");
    expect(basename(b.exe ?? "")).toBe("sleep");
    expect(a.cmdline).toEqual(["sleep", "30"]);
    expect(b.cmdline).toEqual(["sleep", "30"]);
    expect(Math.abs((a.startTimeMs ?? 0) - (b.startTimeMs ?? 0))).toBeLessThan(1000 + 50);
    expect(a.uid).toBe(b.uid as number);
    child.kill("SIGKILL");
  });

  it("both read a zombie as exited", async () => {
    const z = await zombie();
    try {
      const seen = await waitFor(
        async () => {
          const info = await procfsProbe().get(z.pid);
          return info?.state === "Z" ? info : undefined;
        },
        5000,
        "the background sleep to become a zombie",
      );
      const viaPs = await psListProbe().get(z.pid);
      expect(viaPs?.state).toBe("Z");
      const entry: ProcessEntry = {
        pid: z.pid,
        model_id: "m",
        model_name: "m",
        model_path: "/m",
        gpu_id: 0,
        port: 1,
        started_at: new Date().toISOString(),
        command_line: [],
        status: "running",
      };
      expect(judgeEntry(entry, seen)).toMatchObject({ state: "exited", reason: "zombie: exited, not yet reaped" });
      expect(judgeEntry(entry, viaPs).state).toBe("exited");
    } finally {
      await z.release();
    }
    expect(await procfsProbe().get(z.pid)).toBeUndefined();
  });
});

describe.if(linux && process.getuid?.() === 0)("procfsProbe as an unprivileged user", () => {
  it("reads a root process as access denied, keeping what it could read", async () => {
    const target = Bun.spawn(["sleep", "30"]);
    started.push(target);
    // nobody may not be able to read this checkout (a clone under a 0700 folder): the probe goes
    // to a folder anyone can read, as one bundled file, whatever it imports.
    const readable = mkdtempSync(join(tmpdir(), "corral-probe-nobody-"));
    dirs.push(readable);
    chmodSync(readable, 0o755);
    const built = await Bun.build({
      entrypoints: [join(import.meta.dir, "../src/process/procfs.ts")],
      outdir: readable,
      target: "bun",
    });
    if (!built.success) throw new AggregateError(built.logs, "bundling the probe failed");
    const bundle = join(readable, "procfs.js");
    chmodSync(bundle, 0o644);
    const script = `
      const { procfsProbe } = await import(${JSON.stringify(bundle)});
      const probe = procfsProbe();
      console.log(JSON.stringify({ info: await probe.get(${target.pid}), env: (await probe.environ(${target.pid})) ?? null }));
    `;
    const reader = Bun.spawn([process.execPath, "-e", script], {
      uid: 65534,
      gid: 65534,
      cwd: "/tmp",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/tmp", BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, err, code] = await Promise.all([
      new Response(reader.stdout).text(),
      new Response(reader.stderr).text(),
      reader.exited,
    ]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    const { info, env } = JSON.parse(out) as { info: ProcessInfo; env: unknown };
    expect(info).toMatchObject({
      pid: target.pid,
      name: "sleep",
      cmdline: ["sleep", "30"],
      uid: 0,
      accessDenied: true,
    });
    expect(info.exe).toBeUndefined();
    expect(info.startTimeMs).toBeGreaterThan(0);
    expect(env).toBeNull();
    target.kill("SIGKILL");
  }, 30_000);
});
