import { afterAll, describe, expect, it } from "bun:test";
import { chownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { procfsProbe, userNames } from "./procfs.ts";

/** A stat line with the given comm, state, ppid, flags and start ticks (fields 1–22 and a few more). */
function statLine(
  pid: number,
  comm: string,
  opts: { state?: string; ppid?: number; flags?: number; ticks?: number } = {},
) {
  const f = ["S", 1, pid, pid, 0, -1, 4194304, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 1, 0, 500, 1000, 50];
  f[0] = opts.state ?? "S";
  f[1] = opts.ppid ?? 1;
  f[6] = opts.flags ?? 4194304;
  f[19] = opts.ticks ?? 500;
  return `${pid} (${comm}) ${f.join(" ")}\n`;
}

const root = mkdtempSync(join(tmpdir(), "corral-fakeproc-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fake /proc/<pid>; like the kernel's, the folder's owner is the process's uid. */
function fakeProcess(
  pid: number,
  files: { stat?: string; cmdline?: string[]; uid?: number; exe?: string; environ?: string[] },
) {
  const dir = join(root, String(pid));
  mkdirSync(dir, { recursive: true });
  if (files.uid !== undefined && process.getuid?.() === 0) chownSync(dir, files.uid, files.uid);
  if (files.stat !== undefined) writeFileSync(join(dir, "stat"), files.stat);
  if (files.cmdline) writeFileSync(join(dir, "cmdline"), files.cmdline.map((a) => `${a}\0`).join(""));
  if (files.exe) symlinkSync(files.exe, join(dir, "exe"));
  if (files.environ) writeFileSync(join(dir, "environ"), files.environ.map((a) => `${a}\0`).join(""));
}

writeFileSync(join(root, "stat"), "cpu  1 2 3 4\nintr 0\nbtime 1700000000\nprocesses 9\n");
writeFileSync(join(root, "passwd"), "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n");
const users = new Map([
  [0, "root"],
  [1000, "alice"],
]);
fakeProcess(4242, {
  stat: statLine(4242, "llama) (server", { ppid: 77, ticks: 12345 }),
  cmdline: ["/opt/llama/llama-server", "-m", "/models/a b.gguf", "--port", "8081"],
  uid: 1000,
  exe: "/opt/llama/llama-server (deleted)",
  environ: ["PATH=/usr/bin", "CORRAL_HOME_ID=home-1", "EQUALS=a=b"],
});
fakeProcess(2, { stat: statLine(2, "kthreadd", { ppid: 0, flags: 0x00208040, ticks: 0 }) });
fakeProcess(4300, { stat: statLine(4300, "defunct", { state: "Z", ppid: 4242 }), cmdline: [] });
fakeProcess(4500, { stat: statLine(4500, "big", { ppid: 1 }), cmdline: ["big", "x".repeat(70_000), "tail"] });
// Its executable link says another path than its command name: tells a read link from a trusted record.
fakeProcess(4600, {
  stat: statLine(4600, "llama-server", { ppid: 1, ticks: 600 }),
  cmdline: ["llama-server"],
  exe: "/opt/other/llama-server",
});
// A folder whose files are gone: the process exited while we scanned.
fakeProcess(4400, {});
mkdirSync(join(root, "self"));

const probe = procfsProbe({ procRoot: root, passwdFile: join(root, "passwd"), clockTicks: 100 });

describe("procfsProbe on a fake /proc", () => {
  it("reads pid, ppid, executable without ' (deleted)', argv, uid, user and start time", async () => {
    const info = await probe.get(4242);
    const uid = statSync(join(root, "4242")).uid; // 1000 where the test may chown, else ours
    expect(info).toEqual({
      pid: 4242,
      ppid: 77,
      name: "llama-server",
      exe: "/opt/llama/llama-server",
      cmdline: ["/opt/llama/llama-server", "-m", "/models/a b.gguf", "--port", "8081"],
      startTimeMs: 1700000000_000 + 123450,
      startTimePrecisionMs: 10,
      uid,
      user: users.get(uid),
      state: "S",
      accessDenied: false,
    });
  });

  it("lists every readable process and skips folders whose process has exited", async () => {
    const pids = (await probe.list()).map((p) => p.pid).sort((a, b) => a - b);
    expect(pids).toEqual([2, 4242, 4300, 4500, 4600]);
  });

  it("describes kernel threads without reading their files", async () => {
    const kthread = await probe.get(2);
    expect(kthread).toMatchObject({ name: "kthreadd", exe: undefined, cmdline: [], uid: 0, user: "root" });
  });

  it("reports a zombie with state Z and its comm as name", async () => {
    expect(await probe.get(4300)).toMatchObject({ state: "Z", name: "defunct", exe: undefined, cmdline: [] });
  });

  it("reads files larger than its buffer whole", async () => {
    const info = await probe.get(4500);
    expect(info?.cmdline.map((a) => a.length)).toEqual([3, 70_000, 4]);
  });

  it("returns undefined for a PID with no process and for nonsense PIDs", async () => {
    expect(await probe.get(999999)).toBeUndefined();
    expect(await probe.get(4400)).toBeUndefined();
    expect(await probe.get(-1)).toBeUndefined();
    expect(await probe.get(1.5)).toBeUndefined();
  });

  it("reads only the stat line of processes `inspect` turns away, and everything of the rest", async () => {
    const seen: string[] = [];
    const all = await probe.list({
      inspect: (brief) => {
        seen.push(brief.name);
        return brief.pid === 4242;
      },
    });
    expect(seen.sort()).toEqual(["big", "defunct", "llama) (server", "llama-server"]);
    expect(all.find((p) => p.pid === 4600)).toMatchObject({
      name: "llama-server",
      exe: undefined,
      cmdline: [],
      uid: undefined,
      startTimeMs: 1700000000_000 + 6000,
    });
    expect(all.find((p) => p.pid === 4242)).toMatchObject({
      exe: "/opt/llama/llama-server",
      cmdline: ["/opt/llama/llama-server", "-m", "/models/a b.gguf", "--port", "8081"],
    });
    expect(all.find((p) => p.pid === 2)).toMatchObject({ name: "kthreadd", user: "root" });
  });

  it("takes a known identity from the stat line only at the same clock tick and command name", async () => {
    const at = 1700000000_000 + 6000;
    const known = (startTimeMs: number, exe = "/opt/llama/llama-server") =>
      new Map([[4600, { startTimeMs, exe, uid: 1000 }]]);
    // Same tick, same name: the record stands and the link is not read.
    expect((await probe.identities!([4600], known(at))).get(4600)).toMatchObject({
      exe: "/opt/llama/llama-server",
      uid: 1000,
      user: "alice",
      name: "llama-server",
    });
    // One tick later (a reused PID) or another name (an exec): the executable is read.
    expect((await probe.identities!([4600], known(at + 10))).get(4600)?.exe).toBe("/opt/other/llama-server");
    expect((await probe.identities!([4600], known(at, "/opt/llama/llama-cli"))).get(4600)?.exe).toBe(
      "/opt/other/llama-server",
    );
    expect((await probe.identities!([4600])).get(4600)?.exe).toBe("/opt/other/llama-server");
  });

  it("parses the environment, keeping '=' inside values", async () => {
    expect(await probe.environ(4242)).toEqual({ PATH: "/usr/bin", CORRAL_HOME_ID: "home-1", EQUALS: "a=b" });
    expect(await probe.environ(999999)).toBeUndefined();
  });
});

describe("procfsProbe on the real /proc", () => {
  const real = procfsProbe();

  it("finds this test process with its executable, parent and a recent start time", async () => {
    const me = await real.get(process.pid);
    expect(me?.pid).toBe(process.pid);
    expect(me?.ppid).toBe(process.ppid);
    expect(me?.exe).toBe(process.execPath);
    expect(me?.uid).toBe(process.getuid!());
    expect(me?.startTimeMs).toBeLessThanOrEqual(Date.now());
    expect(me?.startTimeMs).toBeGreaterThan(Date.now() - 24 * 3600_000 * 365);
  });

  it("lists this process among many", async () => {
    const all = await real.list();
    expect(all.some((p) => p.pid === process.pid)).toBe(true);
    expect(all.length).toBeGreaterThan(1);
  });

  it("reads this process's environment", async () => {
    const env = await real.environ(process.pid);
    expect(env?.PATH).toBe(process.env.PATH);
  });
});

describe("userNames", () => {
  it("maps uids to names and tolerates a missing file", () => {
    expect(userNames(join(root, "passwd")).get(1000)).toBe("alice");
    expect(userNames(join(root, "no-such-passwd")).size).toBe(0);
  });
});

describe("procfsProbe.identities", () => {
  it("reads the identity of just the PIDs asked for, without their command lines", async () => {
    const probe = procfsProbe();
    const child = Bun.spawn(["sleep", "30"]);
    try {
      const full = await probe.get(child.pid);
      const ids = await probe.identities!([child.pid, process.pid, 999_999_999]);
      expect([...ids.keys()].sort()).toEqual([child.pid, process.pid].sort());
      const light = ids.get(child.pid)!;
      expect(light).toMatchObject({
        pid: child.pid,
        exe: full!.exe,
        startTimeMs: full!.startTimeMs,
        uid: full!.uid,
        ppid: process.pid,
      });
      expect(light.cmdline).toEqual([]);
    } finally {
      child.kill();
    }
  });

  it("trusts a known identity of a real process only while its start time is the recorded one", async () => {
    const probe = procfsProbe();
    const child = Bun.spawn(["sleep", "30"]);
    try {
      let full = await probe.get(child.pid);
      for (let i = 0; i < 500 && full?.exe !== Bun.which("sleep"); i++) {
        await Bun.sleep(2);
        full = await probe.get(child.pid);
      }
      const exe = full!.exe!;
      const same = new Map([[child.pid, { startTimeMs: full!.startTimeMs!, exe: "/recorded/sleep" }]]);
      expect((await probe.identities!([child.pid], same)).get(child.pid)?.exe).toBe("/recorded/sleep");
      const later = new Map([[child.pid, { startTimeMs: full!.startTimeMs! + 10, exe: "/recorded/sleep" }]]);
      expect((await probe.identities!([child.pid], later)).get(child.pid)?.exe).toBe(exe);
    } finally {
      child.kill();
    }
  });
});
