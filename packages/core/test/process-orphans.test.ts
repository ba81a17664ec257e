import { afterAll, describe, expect, it } from "bun:test";
import { findOrphans, type Orphan } from "../src/process/orphans.ts";
import { defaultProbe } from "../src/process/probe.ts";
import { MARKER_ENV } from "../src/process/types.ts";
import { type StandIn, type StandInOptions, spawnStandIn, waitFor } from "./fixtures/index.ts";

const HOME = `home-${process.pid}-${Date.now()}`;
const started: StandIn[] = [];
afterAll(() => {
  for (const s of started) s.stop();
});

async function standIn(options: StandInOptions): Promise<StandIn> {
  const s = await spawnStandIn(options);
  started.push(s);
  return s;
}

/** findOrphans over the whole machine, narrowed to the servers this test started. */
async function orphansAmong(
  pids: readonly number[],
  tracked: ReadonlySet<number> = new Set(),
): Promise<Map<number, Orphan>> {
  const all = await findOrphans({ homeId: HOME, tracked });
  return new Map(all.filter((o) => pids.includes(o.pid)).map((o) => [o.pid, o]));
}

describe("findOrphans on real processes", () => {
  it("calls a stand-in with this home's marker ours, with its instance id", async () => {
    const s = await standIn({
      model: "/models/ours.gguf",
      env: { [MARKER_ENV.home]: HOME, [MARKER_ENV.instance]: "inst-1" },
    });
    const orphan = (await orphansAmong([s.pid])).get(s.pid);
    expect(orphan).toMatchObject({
      verdict: "ours",
      marker: { home_id: HOME, instance_id: "inst-1" },
      marker_readable: true,
      model_path: "/models/ours.gguf",
      port: s.port,
      host: "127.0.0.1",
      executable: s.exe,
    });
    expect(orphan?.reasons.join(" ")).toContain(HOME);
  }, 30_000);

  it("calls an unmarked stand-in of our user likely ours, with model and port from its command line", async () => {
    const s = await standIn({ model: "/models/by-hand.gguf", args: ["-ngl", "99"] });
    const orphan = (await orphansAmong([s.pid])).get(s.pid);
    expect(orphan).toMatchObject({
      verdict: "likely-ours",
      model_path: "/models/by-hand.gguf",
      port: s.port,
      uid: process.getuid!(),
    });
    expect(orphan?.marker).toBeUndefined();
    expect(orphan?.command_line).toEqual(s.argv);
    expect(orphan?.started_at).toBeDefined();
  }, 30_000);

  it("calls a stand-in marked by another corral home foreign", async () => {
    const s = await standIn({ env: { [MARKER_ENV.home]: `${HOME}-other` } });
    const orphan = (await orphansAmong([s.pid])).get(s.pid);
    expect(orphan?.verdict).toBe("foreign");
    expect(orphan?.reasons.join(" ")).toContain(`${HOME}-other`);
  }, 30_000);

  it("leaves out tracked servers and their own llama-server children", async () => {
    const tracked = await standIn({ args: ["--fake-child", "--fake-grandchild"] });
    const loose = await standIn({});
    const probe = defaultProbe();
    const kids = await waitFor(
      async () => {
        const all = await probe.list();
        const child = all.find((p) => p.ppid === tracked.pid);
        const grandchild = child && all.find((p) => p.ppid === child.pid);
        return grandchild ? [child.pid, grandchild.pid] : undefined;
      },
      10_000,
      "the tracked server's children",
    );
    const mine = [tracked.pid, ...kids, loose.pid];
    const untracked = await orphansAmong(mine);
    expect([...untracked.keys()].sort()).toEqual([...mine].sort());
    const found = await orphansAmong(mine, new Set([tracked.pid]));
    expect([...found.keys()]).toEqual([loose.pid]);
  }, 30_000);

  it.if(process.getuid?.() === 0)(
    "calls another user's unmarked server foreign",
    async () => {
      const s = await standIn({ uid: 65534 });
      const orphan = (await orphansAmong([s.pid])).get(s.pid);
      expect(orphan).toMatchObject({ verdict: "foreign", uid: 65534 });
      expect(orphan?.reasons.join(" ")).toContain("another user");
    },
    30_000,
  );
});
