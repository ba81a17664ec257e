/**
 * A server started with a key (server_api_key: auto puts it in LLAMA_API_KEY; by hand it is
 * --api-key) keeps it when adopted, so corral's /props, /slots and gateway requests still reach it;
 * the key is hidden in the recorded command line.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { createController } from "../src/lifecycle/controller.ts";
import { freePort, waitFor } from "./fixtures/index.ts";
import { killAll, makeHome, type TestHome } from "./helpers/home.ts";

const homes: TestHome[] = [];
const started = new Set<number>();
afterAll(() => {
  killAll(started);
  for (const t of homes) t.cleanup();
});

async function startByHand(t: TestHome, args: readonly string[], env: Record<string, string>, gpu: string) {
  const port = await freePort();
  const fd = openSync(`${t.home}/by-hand-${port}.log`, "a");
  const hand = Bun.spawn([t.server, "-m", t.modelPath("tiny"), "--port", String(port), ...args], {
    env: { ...process.env, CUDA_VISIBLE_DEVICES: gpu, ...env },
    stdout: fd,
    stderr: fd,
  });
  closeSync(fd);
  started.add(hand.pid);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok, 15_000, "stand-in listening");
  return hand.pid;
}

describe("adopt keeps a server's API key", () => {
  it("from LLAMA_API_KEY in its environment, and from --api-key on its command line (hidden there)", async () => {
    const t = await makeHome([{ id: "tiny" }]);
    homes.push(t);
    const controller = await createController({
      home: t.home,
      configFile: t.configFile,
      gpuQuery: async () => undefined,
    });
    const fromEnv = await startByHand(t, [], { LLAMA_API_KEY: "key-in-env" }, "0");
    const fromFlag = await startByHand(t, ["--api-key", "key-on-flag"], {}, "1");
    const a = await controller.adopt(fromEnv);
    const b = await controller.adopt(fromFlag);
    expect(a.api_key).toBe("key-in-env");
    expect(b.api_key).toBe("key-on-flag");
    expect(b.command_line).not.toContain("key-on-flag");
    expect(b.command_line).toContain("***");
    expect((await controller.registry.get("1"))?.api_key).toBe("key-on-flag");
  }, 30_000);
});
