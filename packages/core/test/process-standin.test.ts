import { afterAll, describe, expect, it } from "bun:test";
import { basename } from "node:path";
import { defaultProbe } from "../src/process/probe.ts";
import { freePort, type StandIn, type StandInOptions, spawnStandIn, standInServer, waitFor } from "./fixtures/index.ts";

const started: StandIn[] = [];
afterAll(() => {
  for (const s of started) s.stop();
});

async function standIn(options: StandInOptions = {}): Promise<StandIn> {
  const s = await spawnStandIn(options);
  started.push(s);
  return s;
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

describe("the stand-in llama-server", () => {
  it("is one cached executable named llama-server, and the OS sees that name", async () => {
    const exe = await standInServer();
    expect(basename(exe)).toBe(process.platform === "win32" ? "llama-server.exe" : "llama-server");
    expect(await standInServer()).toBe(exe);
    const s = await standIn();
    const info = await defaultProbe().get(s.pid);
    expect(info?.name).toBe(basename(exe));
    expect(info?.exe).toBe(exe);
  }, 60_000);

  it("answers 503 Loading model during the fake load, then 200 with the llama.cpp routes", async () => {
    const s = await standIn({ model: "/models/tiny.gguf", args: ["--fake-load-ms", "400"] });
    expect(await getJson(`${s.url}/health`)).toEqual({
      status: 503,
      body: { error: { code: 503, message: "Loading model", type: "unavailable_error" } },
    });
    await waitFor(async () => (await fetch(`${s.url}/health`)).ok, 10_000, "health 200");
    expect(await getJson(`${s.url}/health`)).toEqual({ status: 200, body: { status: "ok" } });
    expect((await getJson(`${s.url}/props`)).body).toMatchObject({ model_path: "/models/tiny.gguf", total_slots: 1 });
    const slots = (await getJson(`${s.url}/slots`)).body as unknown[];
    expect(slots).toHaveLength(1);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toContain("llamacpp:prompt_tokens_total 0");
    await waitFor(() => s.log().includes("all slots are idle"), 5000, "the idle log line");
    expect(s.log()).toContain(`main: server is listening on http://127.0.0.1:${s.port}`);
  }, 30_000);

  it("answers completions, and aborts with 134 when told to crash on one", async () => {
    const fine = await standIn();
    const res = await fetch(`${fine.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ messages: [] }),
    });
    expect(((await res.json()) as { choices: unknown[] }).choices).toHaveLength(1);
    const crashy = await standIn({ args: ["--fake-crash-on-completion"] });
    await fetch(`${crashy.url}/completion`, { method: "POST", body: "{}" }).catch(() => undefined);
    expect(await crashy.proc.exited).toBe(134);
    expect(crashy.log()).toContain("GGML_ASSERT");
  }, 30_000);

  it("fails to load at once with the given code and an error line", async () => {
    const s = await standIn({ args: ["--fake-exit-on-start", "3"], wait: "none" });
    expect(await s.proc.exited).toBe(3);
    expect(s.log()).toContain("error loading model");
  }, 30_000);

  it("exits by itself after --fake-exit-after-ms with --fake-exit-code", async () => {
    const s = await standIn({ args: ["--fake-exit-after-ms", "200", "--fake-exit-code", "7"] });
    expect(await s.proc.exited).toBe(7);
  }, 30_000);

  it("exits cleanly on SIGTERM, or ignores it when told to", async () => {
    const polite = await standIn();
    polite.proc.kill("SIGTERM");
    expect(await polite.proc.exited).toBe(0);
    const stubborn = await standIn({ args: ["--fake-ignore-sigterm"] });
    stubborn.proc.kill("SIGTERM");
    await waitFor(() => stubborn.log().includes("ignoring SIGTERM"), 5000, "the ignore log line");
    expect((await fetch(`${stubborn.url}/health`)).ok).toBe(true);
    stubborn.proc.kill("SIGINT");
    expect(await stubborn.proc.exited).toBe(0);
  }, 30_000);

  it("exits with 1 when its port is taken, and spawnStandIn reports that with the log", async () => {
    const holder = await standIn();
    const error = await spawnStandIn({ port: holder.port }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain("exited with 1");
    expect((error as Error).message).toContain("couldn't bind");
  }, 30_000);

  it("is healthy only once its fake child and grandchild are running", async () => {
    const s = await standIn({ args: ["--fake-child", "--fake-grandchild"], wait: "healthy" });
    const all = await defaultProbe().list();
    const child = all.find((p) => p.ppid === s.pid);
    const grandchild = child && all.find((p) => p.ppid === child.pid);
    expect(child?.name).toBe("llama-server");
    expect(grandchild?.cmdline).toContain("--fake-sleeper");
  }, 30_000);

  it("gives free ports", async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    expect(port).toBeLessThan(65536);
  });
});
