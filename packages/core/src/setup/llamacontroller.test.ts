import { describe, expect, it } from "bun:test";
import { join } from "node:path";
import { parseConfig } from "../config/load.ts";
import type { ModelFacts } from "../placement/facts.ts";
import { flagOf, originalArgv, parameterArgs, translateLlamacontroller } from "./llamacontroller.ts";
import { fillMetadata, readLlamacontrollerDir, renderMigratedConfig } from "./llamacontroller-config.ts";

const FIXTURES = join(import.meta.dir, "..", "..", "test", "fixtures", "llamacontroller");

function translate(name: string) {
  const read = readLlamacontrollerDir(join(FIXTURES, name));
  return { ...read, t: translateLlamacontroller(read.files) };
}

describe("the original's get_cli_arguments rules", () => {
  it("writes a short-list key as -key, any other as --key, and keeps a written dash", () => {
    expect(["c", "t", "ngl", "fa", "ctk", "ts", "ctv", "np", "x"].map(flagOf)).toEqual([
      "-c",
      "-t",
      "-ngl",
      "-fa",
      "-ctk",
      "-ts",
      "-ctv",
      "-np",
      "-x",
    ]);
    expect(["ctx-size", "jinja", "n-gpu-layers", "--no-webui", "-b"].map(flagOf)).toEqual([
      "--ctx-size",
      "--jinja",
      "--n-gpu-layers",
      "--no-webui",
      "-b",
    ]);
  });

  it("bare flags (null, [] or true), repeated flags (a list), false left out, deprecated fields last unless set", () => {
    expect(
      parameterArgs({
        cli_params: { jinja: null, "no-mmap": [], "cont-batching": true, mlock: false, lora: ["/a", "/b"], c: 512 },
        n_ctx: 4096,
        n_threads: 4,
      }),
    ).toEqual(["--jinja", "--no-mmap", "--cont-batching", "--lora", "/a", "--lora", "/b", "-c", "512", "-t", "4"]);
    // The long spelling of the same flag counts as set too.
    expect(parameterArgs({ cli_params: { "ctx-size": 1024 }, n_ctx: 4096, top_k: 40 })).toEqual([
      "--ctx-size",
      "1024",
      "--top-k",
      "40",
    ]);
    expect(parameterArgs(undefined)).toEqual([]);
  });
});

describe("translateLlamacontroller on the fixture folders", () => {
  it("full: cli_params and structured parameters, both mode, ports, restart, threshold, users", () => {
    const { t, missing } = translate("full");
    expect(missing).toEqual([]);
    expect(t.llamaServer).toBe("/opt/llama.cpp/build/bin/llama-server");
    expect(t.host).toBe("127.0.0.1");
    expect(t.gpuPorts).toEqual({ "0": 8081, "1": 8088, "0,1": 8081 });
    expect(t.loadTimeoutMs).toBe(300_000);
    expect(t.maxRestartAttempts).toBe(3);
    expect(t.restartOnCrash).toBe(true);
    expect(t.occupiedMb).toBe(30);
    expect(t.apiKey).toBe(true);
    const [phi, qwen, tiny] = t.models;
    // The argv the original builds for each model (its rules, written out by hand).
    expect(originalArgv({ executable: t.llamaServer!, host: "127.0.0.1", port: 8081, ...phi! })).toEqual([
      "/opt/llama.cpp/build/bin/llama-server",
      "-m",
      "/models/phi-4-reasoning-plus-Q4_K_M.gguf",
      "--host",
      "127.0.0.1",
      "--port",
      "8081",
      "-c",
      "16384",
      "-ngl",
      "99",
      "-fa",
      "on",
      "-ctk",
      "q8_0",
      "-ctv",
      "q8_0",
      "--jinja",
      "--no-mmap",
      "--reasoning-format",
      "deepseek",
      "-t",
      "8",
      "--temp",
      "0.6",
    ]);
    expect(phi!.gpu).toBe("0");
    expect(qwen!.gpu).toBe("0,1");
    expect(qwen!.args).toEqual([
      "-ts",
      "1,1",
      "--override-tensor",
      "blk\\.[0-9]\\.ffn_.*=CPU",
      "--override-tensor",
      "blk\\.1[0-9]\\.ffn_.*=CPU",
      "--lora",
      "/loras/a.gguf",
      "--lora",
      "/loras/b.gguf",
      "--ctx-size",
      "32768",
      "-t",
      "16",
      "--cont-batching",
      "--top-p",
      "0.8",
      "--top-k",
      "20",
      "--repeat-penalty",
      "1.05",
    ]);
    expect(tiny!.gpu).toBe("1");
    expect(tiny!.args).toEqual([
      "-c",
      "2048",
      "-ngl",
      "99",
      "-t",
      "4",
      "--temp",
      "0.7",
      "--top-p",
      "0.9",
      "--top-k",
      "40",
      "--repeat-penalty",
      "1.1",
    ]);
    expect(phi!.metadata).toMatchObject({ family: "phi", parameter_count: "14B", capabilities: ["chat", "reasoning"] });
    expect(t.tokens).toEqual([
      { name: "admin", scope: "admin", username: "admin", role: "admin" },
      { name: "alice", scope: "control", username: "alice", role: "operator" },
      { name: "bob", scope: "read", username: "bob", role: "viewer" },
      { name: "carol-smith", scope: "control", username: "carol smith", role: "user" },
    ]);
    const keys = t.notCarried.map((n) => n.key);
    for (const key of [
      "llama_cpp.default_port",
      "llama_cpp.log_level",
      "llama_cpp.api_key",
      "llama_cpp.gpu_detection.mock_mode",
      "authentication.session_timeout",
      "authentication.users[].password",
    ]) {
      expect(keys).toContain(key);
    }
    // No secret of the original's is repeated in what is printed.
    expect(JSON.stringify(t)).not.toContain("sk-original-secret");
    expect(JSON.stringify(t)).not.toContain("$2b$");
  });

  it("windows: paths kept as written, a missing auth-config.yaml, and a flag written with its dashes", () => {
    const { t, missing } = translate("windows");
    expect(missing).toEqual([join("config", "auth-config.yaml")]);
    expect(t.tokens).toEqual([]);
    expect(t.llamaServer).toBe("C:\\llama.cpp\\build\\bin\\Release\\llama-server.exe");
    expect(t.gpuPorts).toEqual({ "0": 9081, "1": 9088, "0,1": 9081 });
    expect(t.restartOnCrash).toBe(false);
    expect(t.maxRestartAttempts).toBe(0);
    expect(t.occupiedMb).toBe(512);
    if (process.platform !== "win32") {
      expect(t.notCarried.map((n) => n.key)).toEqual(
        expect.arrayContaining(["llama_cpp.executable_path", "models[0].path"]),
      );
    }
    const [gemma] = t.models;
    expect(originalArgv({ executable: t.llamaServer!, host: "0.0.0.0", port: 9088, ...gemma! })).toEqual([
      "C:\\llama.cpp\\build\\bin\\Release\\llama-server.exe",
      "-m",
      "C:\\models\\gemma-3-12b-it-Q4_K_M.gguf",
      "--host",
      "0.0.0.0",
      "--port",
      "9088",
      "--mmproj",
      "C:\\models\\mmproj-gemma-3-12b-f16.gguf",
      "-ngl",
      "999",
      "--no-webui",
      "-np",
      "2",
      "-c",
      "8192",
    ]);
  });

  it("structured: long spellings in cli_params win over the deprecated fields; --port is corral's own", () => {
    const { t, missing } = translate("structured");
    expect(missing).toEqual([join("config", "llamacpp-config.yaml"), join("config", "auth-config.yaml")]);
    expect(t.models[0]!.args).toEqual(["--threads", "12", "--gpu-layers", "33", "-c", "8192", "--temp", "0.8"]);
    expect(t.notCarried.find((n) => n.key === "models[0].parameters.cli_params")?.why).toContain("--port");
    expect(t.llamaServer).toBeUndefined();
  });

  it("refuses a folder with none of the files", () => {
    expect(() => readLlamacontrollerDir(FIXTURES)).toThrow(/not a llamacontroller folder/);
  });
});

describe("renderMigratedConfig", () => {
  it("writes a corral.yaml that corral reads back to the same meaning, for every fixture", () => {
    for (const name of ["full", "windows", "structured"]) {
      const { t, dir } = translate(name);
      const config = parseConfig(Bun.YAML.parse(renderMigratedConfig(t, { dir })), `/h/${name}.yaml`);
      expect(config.models.map((m) => [m.id, m.gpu, m.args, m.restart])).toEqual(
        t.models.map((m) => [m.id, m.gpu, m.args, t.restartOnCrash ? "on-failure" : "never"]),
      );
      if (t.llamaServer) expect(config.llama_server).toEndWith(t.llamaServer); // relative on Linux: the notes say so
      if (Object.keys(t.gpuPorts).length > 0) expect(config.ports.gpu).toEqual(t.gpuPorts);
      if (t.occupiedMb !== undefined) expect(config.gpu.occupied_mb).toBe(t.occupiedMb);
      if (t.loadTimeoutMs !== undefined) expect(config.timeouts.load_ms).toBe(t.loadTimeoutMs);
      if (t.maxRestartAttempts !== undefined) expect(config.restart.max_attempts).toBe(t.maxRestartAttempts);
    }
  });

  it("keeps the metadata as comments, filled from the GGUF header where the original left it empty", () => {
    const { t, dir } = translate("full");
    const facts = { parameter_count: 30_500_000_000, quantization: "Q5_K_M", architecture: "qwen3moe" } as ModelFacts;
    const qwen = t.models[1]!;
    const filled = fillMetadata(qwen.metadata, facts);
    expect(filled).toMatchObject({ parameter_count: "30.5B", quantization: "Q5_K_M", family: "qwen3moe" });
    const text = renderMigratedConfig({ ...t, models: [{ ...qwen, metadata: filled }] }, { dir });
    expect(text).toContain("#   parameter_count: 30.5B");
    expect(text).toContain("#   capabilities: chat, code");
    expect(text).not.toContain("sk-original-secret");
  });
});
