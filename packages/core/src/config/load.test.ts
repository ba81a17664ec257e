import { afterEach, beforeEach, describe, expect, it } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, UnknownModelError } from "../errors.ts";
import {
  type CorralConfig,
  checkRunnable,
  defaultConfig,
  findModel,
  loadConfig,
  parseConfig,
  resolveExecutable,
} from "./load.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "corral-config-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function configError(raw: unknown): ConfigError {
  try {
    parseConfig(raw, "/etc/corral.yaml");
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("parseConfig accepted an invalid config");
}

function executable(name: string): string {
  const file = join(dir, name);
  writeFileSync(file, "#!/bin/sh\nexit 0\n");
  chmodSync(file, 0o755);
  return file;
}

describe("loadConfig", () => {
  it("reads corral.yaml from the home folder", async () => {
    writeFileSync(
      join(dir, "corral.yaml"),
      [
        "host: 0.0.0.0",
        "timeouts:",
        "  load_ms: 1000",
        "models:",
        "  - id: qwen",
        "    path: /models/qwen.gguf",
        "    gpu: 1",
        "    args: [--ctx-size, 4096]",
      ].join("\n"),
    );
    const config = await loadConfig({ home: dir });
    expect(config.file).toBe(join(dir, "corral.yaml"));
    expect(config.host).toBe("0.0.0.0");
    expect(config.timeouts).toEqual({ load_ms: 1000, stop_ms: 10000, health_ms: 2000 });
    expect(config.models).toEqual([
      {
        id: "qwen",
        name: "qwen",
        path: "/models/qwen.gguf",
        args: ["--ctx-size", "4096"],
        gpu: "1",
        restart: "never",
        max_restart_attempts: 5,
        env: {},
      },
    ]);
  });

  it("falls back to corral.json when there is no corral.yaml", async () => {
    writeFileSync(join(dir, "corral.json"), JSON.stringify({ server: { port: 9000 }, models: [] }));
    const config = await loadConfig({ home: dir });
    expect(config.file).toBe(join(dir, "corral.json"));
    expect(config.server.port).toBe(9000);
  });

  it("prefers corral.yaml over corral.json", async () => {
    writeFileSync(join(dir, "corral.yaml"), "server:\n  port: 7001\n");
    writeFileSync(join(dir, "corral.json"), JSON.stringify({ server: { port: 7002 } }));
    expect((await loadConfig({ home: dir })).server.port).toBe(7001);
  });

  it("returns the defaults when the home has no config file", async () => {
    expect(await loadConfig({ home: join(dir, "nowhere") })).toEqual(defaultConfig());
  });

  it("reads an explicit file and refuses one that does not exist", async () => {
    const file = join(dir, "elsewhere.yml");
    writeFileSync(file, "llama_server: /opt/llama/llama-server\n");
    expect((await loadConfig({ home: dir, file })).llama_server).toBe("/opt/llama/llama-server");
    const missing = loadConfig({ file: join(dir, "missing.yaml") });
    await expect(missing).rejects.toBeInstanceOf(ConfigError);
    await expect(missing).rejects.toMatchObject({ file: join(dir, "missing.yaml"), key: "file" });
  });

  it("reports unparsable YAML and JSON with the parser's message", async () => {
    writeFileSync(join(dir, "corral.yaml"), "models: [\n  - id: x\n");
    await expect(loadConfig({ home: dir })).rejects.toMatchObject({
      key: "syntax",
      message: expect.stringContaining("YAML"),
    });
    const json = join(dir, "broken.json");
    writeFileSync(json, '{ "host": "x", }');
    await expect(loadConfig({ file: json })).rejects.toMatchObject({
      key: "syntax",
      file: json,
      message: expect.stringContaining("JSON"),
    });
  });

  it("resolves a relative model path against the config file's folder", async () => {
    mkdirSync(join(dir, "conf"));
    writeFileSync(join(dir, "conf", "corral.yaml"), "models:\n  tiny:\n    path: models/tiny.gguf\n");
    const config = await loadConfig({ home: join(dir, "conf") });
    expect(config.models[0]?.path).toBe(join(dir, "conf", "models", "tiny.gguf"));
  });
});

describe("parseConfig", () => {
  it("fills in the documented defaults", () => {
    const config = parseConfig({});
    expect(config.llama_server).toBe("llama-server");
    expect(config.ports).toEqual({ range: [8081, 8099], gpu: { "0": 8081, "1": 8088 } });
    expect(config.restart).toEqual({ backoff_ms: 1000, backoff_max_ms: 60000, stable_ms: 300000, max_attempts: 5 });
    expect(config.server).toEqual({
      host: "127.0.0.1",
      port: 7070,
      cors: [],
      auth: "token",
      hosts: [],
      max_streams: 64,
    });
    expect(config.history).toEqual({ max_bytes: 16 * 1024 * 1024 });
    expect(config.metrics).toEqual({ retention_days: 30 });
    expect(config.gpu_release_wait_ms).toBe(10000);
    expect(parseConfig(null)).toEqual(defaultConfig());
  });

  it("reads metrics.retention_days and names the key when it is not a positive integer", () => {
    expect(parseConfig({ metrics: { retention_days: 7 } }).metrics).toEqual({ retention_days: 7 });
    expect(() => parseConfig({ metrics: { retention_days: 0 } })).toThrow(/metrics\.retention_days/);
    expect(() => parseConfig({ metrics: { keep: 3 } })).toThrow(/metrics/);
  });

  it("accepts the original controller's names: models as a map, restart_on_crash and args as a map", () => {
    const config = parseConfig({
      models: {
        qwen: {
          name: "Qwen 7B",
          path: "/m/qwen.gguf",
          gpu: [1, 0],
          restart_on_crash: true,
          max_restart_attempts: 2,
          args: { "ctx-size": 4096, "flash-attn": true, mlock: false, lora: ["a.gguf", "b.gguf"], "-ngl": 99 },
        },
        llama: { path: "/m/llama.gguf", restart_on_crash: false },
      },
    });
    expect(config.models[0]).toMatchObject({
      id: "qwen",
      name: "Qwen 7B",
      gpu: "0,1",
      restart: "on-failure",
      max_restart_attempts: 2,
      args: ["--ctx-size", "4096", "--flash-attn", "--lora", "a.gguf", "--lora", "b.gguf", "-ngl", "99"],
    });
    expect(config.models[1]).toMatchObject({ id: "llama", name: "llama", restart: "never", args: [] });
  });

  it("normalises GPU keys, CPU lists and environment values", () => {
    const config = parseConfig({
      ports: { gpu: { "1, 0": 8090, 2: 8091 } },
      models: [
        { id: "a", path: "/m/a.gguf", gpu: "1,0", cpu_affinity: "0-3, 8", env: { GGML_CUDA_NO_PINNED: 1, X: true } },
      ],
    });
    expect(config.ports.gpu).toEqual({ "0,1": 8090, "2": 8091 });
    expect(config.models[0]).toMatchObject({
      gpu: "0,1",
      cpu_affinity: "0-3,8",
      env: { GGML_CUDA_NO_PINNED: "1", X: "true" },
    });
  });

  const invalid: [what: string, raw: unknown, key: string][] = [
    ["an unknown top-level key", { hots: "x" }, "hots"],
    ["an unknown key inside a section", { timeouts: { load: 5 } }, "timeouts.load"],
    ["an unknown model key", { models: [{ id: "a", path: "/a", prot: 1 }] }, "models[0].prot"],
    [
      "a model port out of range",
      {
        models: [
          { id: "a", path: "/a" },
          { id: "b", path: "/b" },
          { id: "c", path: "/c", port: 70000 },
        ],
      },
      "models[2].port",
    ],
    ["a port that is not a number", { server: { port: "http" } }, "server.port"],
    ["a backwards port range", { ports: { range: [9000, 8000] } }, "ports.range"],
    ["a port range of one number", { ports: { range: [9000] } }, "ports.range"],
    [
      "a duplicate model id",
      {
        models: [
          { id: "a", path: "/a" },
          { id: "a", path: "/b" },
        ],
      },
      "models[1].id",
    ],
    ["a model id with a slash", { models: [{ id: "../etc", path: "/a" }] }, "models[0].id"],
    ["a model id in a map with a space", { models: { "my model": { path: "/a" } } }, "models.my model.id"],
    ["a model without a path", { models: [{ id: "a" }] }, "models[0].path"],
    ["a model without an id", { models: [{ path: "/a" }] }, "models[0].id"],
    ["an unknown restart policy", { models: [{ id: "a", path: "/a", restart: "always" }] }, "models[0].restart"],
    [
      "restart_on_crash contradicting restart",
      { models: [{ id: "a", path: "/a", restart: "never", restart_on_crash: true }] },
      "models[0].restart_on_crash",
    ],
    ["a bad GPU index", { models: [{ id: "a", path: "/a", gpu: "zero" }] }, "models[0].gpu"],
    ["an unknown gateway key", { gateway: { max_queu: 3 } }, "gateway.max_queu"],
    ["a gateway auth that is neither token nor none", { gateway: { auth: "open" } }, "gateway.auth"],
    ["a negative ttl", { models: [{ id: "a", path: "/a", ttl: -1 }] }, "models[0].ttl"],
    ["a pinned that is not a boolean", { models: [{ id: "a", path: "/a", pinned: "yes" }] }, "models[0].pinned"],
    [
      "an alias that is another model's id",
      {
        models: [
          { id: "a", path: "/a" },
          { id: "b", path: "/b", aliases: ["a"] },
        ],
      },
      "models[1].aliases[0]",
    ],
    [
      "an alias two models share",
      {
        models: [
          { id: "a", path: "/a", aliases: ["x"] },
          { id: "b", path: "/b", aliases: ["x"] },
        ],
      },
      "models[1].aliases[0]",
    ],
    ["a bad CPU list", { models: [{ id: "a", path: "/a", cpu_affinity: "0-" }] }, "models[0].cpu_affinity"],
    ["a backwards CPU range", { models: [{ id: "a", path: "/a", cpu_affinity: "7-0" }] }, "models[0].cpu_affinity"],
    [
      "an args entry that is an object",
      { models: [{ id: "a", path: "/a", args: ["--x", { y: 1 }] }] },
      "models[0].args[1]",
    ],
    ["args that set --port", { models: [{ id: "a", path: "/a", args: ["--port=9000"] }] }, "models[0].args"],
    ["an env value that is a list", { models: [{ id: "a", path: "/a", env: { A: [1] } }] }, "models[0].env.A"],
    [
      "an env entry overriding corral's marker",
      { models: [{ id: "a", path: "/a", env: { CORRAL_INSTANCE_ID: "x" } }] },
      "models[0].env.CORRAL_INSTANCE_ID",
    ],
    ["a webhook that is not an http URL", { webhooks: ["https://ok.example/hook", "ftp://x"] }, "webhooks[1]"],
    ["a zero load timeout", { timeouts: { load_ms: 0 } }, "timeouts.load_ms"],
    [
      "a backoff ceiling below the backoff",
      { restart: { backoff_ms: 5000, backoff_max_ms: 100 } },
      "restart.backoff_max_ms",
    ],
    ["a non-mapping document", ["a", "b"], "(root)"],
    ["an empty host", { host: "" }, "host"],
    ["a bad slot key in ports.gpu", { ports: { gpu: { x: 8081 } } }, "ports.gpu.x"],
  ];
  for (const [what, raw, key] of invalid) {
    it(`refuses ${what}, naming ${key}`, () => {
      const error = configError(raw);
      expect(error.key).toBe(key);
      expect(error.file).toBe("/etc/corral.yaml");
      expect(error.message).toStartWith(`/etc/corral.yaml: ${key}: `);
    });
  }

  it("suggests the setting a typo was meant to be", () => {
    expect(configError({ llama_sever: "x" }).reason).toContain('did you mean "llama_server"');
  });

  it("expands ~ in paths to the home folder", () => {
    const config = parseConfig({ llama_server: "~/llama/llama-server", models: [{ id: "a", path: "~/m/a.gguf" }] });
    expect(config.llama_server).toBe(join(homedir(), "llama", "llama-server"));
    expect(config.models[0]?.path).toBe(join(homedir(), "m", "a.gguf"));
  });
});

describe("findModel", () => {
  it("finds a model by id and names the known ones otherwise", () => {
    const config = parseConfig({
      models: [
        { id: "a", path: "/a" },
        { id: "b", path: "/b" },
      ],
    });
    expect(findModel(config, "b").path).toBe("/b");
    expect(() => findModel(config, "c")).toThrow(UnknownModelError);
    expect(() => findModel(config, "c")).toThrow("known: a, b");
  });
});

describe("resolveExecutable", () => {
  it("finds a command on the given PATH and accepts an executable path", () => {
    const server = executable("llama-server");
    expect(resolveExecutable("llama-server", { PATH: `/nonexistent:${dir}` })).toBe(server);
    expect(resolveExecutable("llama-server", { PATH: "/nonexistent" })).toBeUndefined();
    expect(resolveExecutable(server)).toBe(server);
  });

  it("refuses a path that is not executable or is a folder", () => {
    const plain = join(dir, "plain");
    writeFileSync(plain, "not a program");
    chmodSync(plain, 0o644);
    expect(resolveExecutable(plain)).toBeUndefined();
    expect(resolveExecutable(dir)).toBeUndefined();
    expect(resolveExecutable(join(dir, "missing"))).toBeUndefined();
  });
});

describe("checkRunnable", () => {
  function withServer(server: string, modelPath: string): CorralConfig {
    return parseConfig(
      {
        llama_server: server,
        models: [
          { id: "x", path: "/x" },
          { id: "tiny", path: modelPath },
        ],
      },
      join(dir, "corral.yaml"),
    );
  }

  it("returns the executable when the server and the model file exist", async () => {
    const server = executable("llama-server");
    const model = join(dir, "tiny.gguf");
    writeFileSync(model, "GGUF");
    const config = withServer(server, model);
    expect(await checkRunnable(config, findModel(config, "tiny"))).toEqual({ executable: server });
  });

  it("reports a llama-server that is not on PATH", async () => {
    const config = withServer(`no-such-llama-server-${process.pid}`, join(dir, "tiny.gguf"));
    const run = checkRunnable(config, findModel(config, "tiny"));
    await expect(run).rejects.toBeInstanceOf(ConfigError);
    await expect(run).rejects.toMatchObject({
      key: "llama_server",
      reason: expect.stringContaining("not found on PATH"),
    });
  });

  it("reports a llama-server path that does not exist", async () => {
    const config = withServer(join(dir, "bin", "llama-server"), join(dir, "tiny.gguf"));
    await expect(checkRunnable(config, findModel(config, "tiny"))).rejects.toMatchObject({
      key: "llama_server",
      reason: expect.stringContaining("does not exist"),
    });
  });

  it("reports a missing model file under the model's key", async () => {
    const config = withServer(executable("llama-server"), join(dir, "gone.gguf"));
    await expect(checkRunnable(config, findModel(config, "tiny"))).rejects.toMatchObject({
      key: "models[1].path",
      reason: `model file ${join(dir, "gone.gguf")} does not exist`,
      file: join(dir, "corral.yaml"),
    });
  });

  it("reports a model path that is a folder", async () => {
    const config = withServer(executable("llama-server"), dir);
    await expect(checkRunnable(config, findModel(config, "tiny"))).rejects.toMatchObject({ key: "models[1].path" });
  });
});

describe("the placement settings", () => {
  it("default gpu.occupied_mb to 1024 and read it from the file", () => {
    expect(parseConfig({}).gpu).toEqual({ occupied_mb: 1024 });
    expect(parseConfig({ gpu: { occupied_mb: 2048 } }).gpu).toEqual({ occupied_mb: 2048 });
    expect(() => parseConfig({ gpu: { occupied: 1 } })).toThrow(/gpu/);
  });

  it("accept gpu: auto on a model, leaving the choice to placement", () => {
    expect(parseConfig({ models: [{ id: "a", path: "/a", gpu: "auto" }] }).models[0]?.gpu).toBe("auto");
  });
});

describe("the gateway settings", () => {
  it("default to no ttl, a queue of 64, the load timeout, swapping, no cap and token auth", () => {
    const config = parseConfig({ timeouts: { load_ms: 1234 } });
    expect(config.gateway).toEqual({
      ttl: 0,
      max_queue: 64,
      queue_timeout_ms: 1234,
      swap: true,
      max_loaded: 0,
      auth: "token",
    });
  });

  it("reads the gateway section and each model's aliases, ttl and pinned", () => {
    const config = parseConfig({
      gateway: { ttl: 300, max_queue: 2, queue_timeout_ms: 500, swap: false, max_loaded: 1, auth: "none" },
      models: [{ id: "a", path: "/a", aliases: ["gpt-4o", "llama3"], ttl: 5, pinned: true }],
    });
    expect(config.gateway).toEqual({
      ttl: 300,
      max_queue: 2,
      queue_timeout_ms: 500,
      swap: false,
      max_loaded: 1,
      auth: "none",
    });
    expect(config.models[0]).toMatchObject({ aliases: ["gpt-4o", "llama3"], ttl: 5, pinned: true });
  });
});
