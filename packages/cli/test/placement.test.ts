// Placement through the CLI, as real `corral` subprocesses: `load` refused with the numbers by the
// fake nvidia-smi's foreign-held GPU 0, `--force` loading anyway, `ls --models` showing each
// model's parameter count and quantization from its GGUF header.
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { llamaBuildPaths } from "../../../scripts/llama-paths.ts";
import { freePort, standInServer } from "../../core/test/fixtures/index.ts";
import { OwnProcesses } from "../../core/test/integration/own-processes.ts";
import { corral } from "./helpers.ts";

const llama = llamaBuildPaths();
if (!llama.chatReady) console.log("CLI placement tests skipped: no tiny-chat.gguf: run `bun run llama:build`");
const FAKE_DIR = join(import.meta.dir, "..", "..", "core", "test", "fixtures", "nvidia-smi");
const gpuEnv = {
  PATH: `${FAKE_DIR}:${process.env.PATH ?? "/usr/bin:/bin"}`,
  FAKE_NVIDIA_SMI_DIR: join(FAKE_DIR, "recorded", "foreign-gpu0"),
};
const dir = mkdtempSync(join(tmpdir(), "corral-cli-placement-"));
const own = new OwnProcesses();
afterAll(() => {
  own.killAll();
  rmSync(dir, { recursive: true, force: true });
});

async function writeConfig(): Promise<void> {
  const models = [
    { id: "tiny", path: llama.chatModel, gpu: 0, port: await freePort() },
    { id: "big", path: llama.chatModel, gpu: 0, port: await freePort(), args: ["-c", "8388608"] },
  ];
  const config = {
    llama_server: await standInServer(),
    timeouts: { load_ms: 20000, stop_ms: 3000, health_ms: 1000 },
    gpu_release_wait_ms: 0,
    ports: { gpu: {} },
    models,
  };
  writeFileSync(join(dir, "corral.json"), JSON.stringify(config));
}

describe.skipIf(!llama.chatReady)("corral load and ls with placement", () => {
  it("refuses a load that does not fit, naming the numbers, and loads it with --force", async () => {
    await writeConfig();
    const refused = await corral({ dir }, ["load", "big"], gpuEnv);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(
      /big needs about \d+\.\d GiB on GPU 0 \(weights 0\.0, KV 4\.0 at ctx 8388608, compute 8\.0\); 9\.2 GiB free: 14\.3 GiB held by pid 4242/,
    );
    expect(refused.stderr).toContain("force loads anyway");
    const forced = await corral({ dir }, ["load", "big", "--force", "--json"], gpuEnv);
    expect(forced.code).toBe(0);
    const result = JSON.parse(forced.stdout) as { entry: { pid: number }; placement: { forced: boolean } };
    own.add(result.entry.pid);
    expect(result.placement.forced).toBe(true);
    const unloaded = await corral({ dir }, ["unload", "0", "--yes"], gpuEnv);
    expect(unloaded.code).toBe(0);
  }, 60_000);

  it("shows each model's parameter count and quantization in ls --models", async () => {
    await writeConfig();
    const { code, stdout } = await corral({ dir }, ["ls", "--models"]);
    expect(code).toBe(0);
    const row = stdout.split("\n").find((line) => line.includes("tiny"));
    expect(row).toMatch(/tiny\s+\S+\s+0\s+4\.2M\s+F32\s/);
  });
});
