import { afterAll, describe, expect, it } from "bun:test";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { llamaCacheDir } from "../../../../scripts/llama-paths.ts";
import { makeFirstRunHome } from "../../test/fixtures/first-run-home.ts";
import { addModelsToConfig } from "../config/add-models.ts";
import { checkRunnable, loadConfig, parseConfig } from "../config/load.ts";
import { findLlamaServer, llamaServerCandidates } from "../discovery/llama-server.ts";
import { ConfigError } from "../errors.ts";
import { addFoundModels, writeFirstConfig } from "./first-run.ts";
import { scanForModels } from "./scan.ts";

const fake = makeFirstRunHome();
const scratch = mkdtempSync(join(tmpdir(), "corral-setup-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const scan = { folders: [fake.extra], userHome: fake.home, env: {} };

describe("scanForModels", () => {
  it("finds every model of the fake home exactly once, with its source and facts", async () => {
    const { models } = await scanForModels(scan);
    expect(models.map((m) => m.id).sort()).toEqual(fake.expected.map((e) => e.id).sort());
    for (const e of fake.expected) {
      const m = models.find((x) => x.id === e.id)!;
      expect({ source: m.source, parts: m.parts, mmproj: m.mmproj !== undefined }).toEqual({
        source: e.source,
        parts: e.parts,
        mmproj: e.mmproj,
      });
      expect({ architecture: m.architecture, quantization: m.quantization, context: m.context_length }).toEqual({
        architecture: "llama",
        quantization: "F32",
        context: 512,
      });
      expect(m.size_bytes).toBeGreaterThan(0);
      expect(m.parameter_count).toBeGreaterThan(0);
    }
    // mmproj files and later split parts are not models of their own
    expect(models.some((m) => /mmproj|00002/.test(m.path))).toBe(false);
  });

  it("sums a split model's parameters over its parts", async () => {
    const { models } = await scanForModels(scan);
    const big = models.find((m) => m.id === "big")!;
    const one = models.find((m) => m.id === "extra-model")!; // the same one-layer shape
    expect(big.parameter_count).toBe(3 * one.parameter_count!);
  });

  it("counts a file reached twice (a symlink in ~/models to the Hugging Face blob) once", async () => {
    const dir = mkdtempSync(join(scratch, "twice-"));
    const { models } = await scanForModels(scan);
    symlinkSync(models.find((m) => m.id === "repo-q4")!.path, join(dir, "again.gguf"));
    const again = await scanForModels({ ...scan, folders: [fake.extra, dir] });
    expect(again.models.length).toBe(models.length);
  });

  it("does not follow symlinks inside corral's home", async () => {
    const corralHome = mkdtempSync(join(scratch, "home-"));
    symlinkSync(fake.extra, join(corralHome, "linked"));
    const { models } = await scanForModels({ folders: [corralHome], wellKnown: false, corralHome });
    expect(models).toEqual([]);
    const outside = await scanForModels({ folders: [corralHome], wellKnown: false });
    expect(outside.models.map((m) => m.id)).toEqual(["extra-model"]);
  });

  it("says why a file that is not a GGUF cannot be read", async () => {
    const dir = mkdtempSync(join(scratch, "bad-"));
    writeFileSync(join(dir, "broken.gguf"), "not a gguf");
    const { models } = await scanForModels({ folders: [dir], wellKnown: false });
    expect(models[0]?.error).toContain("not a readable GGUF file");
  });
});

describe("writeFirstConfig", () => {
  it("writes a commented file (0600) that loads and validates, and refuses a second time", async () => {
    const home = mkdtempSync(join(scratch, "init-"));
    const file = join(home, "corral.yaml");
    const { models } = await scanForModels(scan);
    writeFirstConfig({ file, found: models, gpus: [0], llamaServer: "/opt/llama-server" });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, "utf8");
    expect(text).toContain("# llama 2.2K F32, context 512");
    expect(text).toContain("from the Hugging Face cache");
    const config = await loadConfig({ home });
    expect(config.models.map((m) => m.id).sort()).toEqual(fake.expected.map((e) => e.id).sort());
    expect(config.models.find((m) => m.id === "vis-model")?.args).toEqual([
      "--mmproj",
      join(fake.home, "models", "vision", "mmproj-vis-f16.gguf"),
    ]);
    expect(config.models.every((m) => m.gpu === "0")).toBe(true);
    expect(config.llama_server).toBe("/opt/llama-server");
    expect(() => writeFirstConfig({ file, found: [] })).toThrow(ConfigError);
    expect(readFileSync(file, "utf8")).toBe(text);
    const forced = writeFirstConfig({ file, found: [], force: true });
    expect(readFileSync(forced.backup!, "utf8")).toBe(text);
    expect(readdirSync(home).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });
});

describe("models_dir", () => {
  it("makes every GGUF of the folder a model beside the listed ones, a listed model winning", async () => {
    const home = mkdtempSync(join(scratch, "dir-"));
    const listed = join(fake.home, "models", "alpha-q8.gguf");
    writeFileSync(
      join(home, "corral.yaml"),
      `models_dir: ${join(fake.home, "models")}\nmodels:\n  - id: big\n    path: ${listed}\n    gpu: 1\n`,
    );
    const config = await loadConfig({ home });
    expect(config.models.map((m) => m.id)).toEqual(["big", "vis-model"]);
    expect(config.models[0]?.gpu).toBe("1");
    expect(config.models[1]?.args[0]).toBe("--mmproj");
    // a reload (loading again) sees a file added since
    writeFileSync(join(fake.home, "models", "later.gguf"), readFileSync(join(fake.extra, "extra-model.gguf")));
    expect((await loadConfig({ home })).models.map((m) => m.id)).toContain("later");
    rmSync(join(fake.home, "models", "later.gguf"));
  });

  it("takes one folder or a list, and names the key when it is neither", () => {
    expect(parseConfig({ models_dir: ["/a", "/b"] }).models_dir).toEqual(["/a", "/b"]);
    expect(() => parseConfig({ models_dir: 3 })).toThrow("models_dir");
  });
});

describe("addModelsToConfig", () => {
  it("inserts entries at the end of a block list, keeping the comments, and validates", async () => {
    const home = mkdtempSync(join(scratch, "add-"));
    const file = join(home, "corral.yaml");
    writeFileSync(file, "# mine\nmodels:\n  # first\n  - id: a\n    path: /m/a.gguf\n\nserver:\n  port: 7071\n");
    const added = await addModelsToConfig({ home, models: [{ id: "a", path: "/m/b.gguf" }] });
    expect(added.ids).toEqual(["a-2"]);
    const text = readFileSync(file, "utf8");
    expect(text).toContain("# mine");
    expect(text).toContain("# first");
    const config = parseConfig(Bun.YAML.parse(text), file);
    expect(config.models.map((m) => m.id)).toEqual(["a", "a-2"]);
    expect(config.server.port).toBe(7071);
  });

  it("fills an empty list and writes a new file where there is none", async () => {
    const home = mkdtempSync(join(scratch, "empty-"));
    writeFileSync(join(home, "corral.yaml"), "models: []\n");
    await addModelsToConfig({ home, models: [{ id: "x", path: "/m/x.gguf" }] });
    expect((await loadConfig({ home })).models.map((m) => m.id)).toEqual(["x"]);
    const fresh = mkdtempSync(join(scratch, "fresh-"));
    expect((await addModelsToConfig({ home: fresh, models: [{ id: "y", path: "/m/y.gguf" }] })).created).toBe(true);
    expect((await loadConfig({ home: fresh })).models.map((m) => m.id)).toEqual(["y"]);
  });

  it("adds only files the scan finds", async () => {
    const home = mkdtempSync(join(scratch, "only-"));
    await expect(addFoundModels({ home, paths: ["/etc/passwd"], scan })).rejects.toThrow("not found by the scan");
    const { models } = await scanForModels(scan);
    const path = models.find((m) => m.id === "tinyllama:latest")!.path;
    expect((await addFoundModels({ home, paths: [path], scan })).ids).toEqual(["tinyllama:latest"]);
  });
});

describe("findLlamaServer", () => {
  it("looks on PATH, in ~/llama.cpp/build/bin, /usr/local/bin and the llama:build cache, in that order", () => {
    const home = mkdtempSync(join(scratch, "user-"));
    const env = { PATH: "/nowhere", XDG_CACHE_HOME: join(home, "cache") };
    const cached = join(home, "cache", "corral", "llama.cpp-3.21.1", "bin", "llama-server");
    expect(llamaServerCandidates({ env, userHome: home })).toEqual([
      "/nowhere/llama-server",
      join(home, "llama.cpp", "build", "bin", "llama-server"),
      "/usr/local/bin/llama-server",
    ]);
    Bun.spawnSync(["mkdir", "-p", dirname(cached)]);
    writeFileSync(cached, "#!/bin/sh\n");
    chmodSync(cached, 0o755);
    const found = findLlamaServer({ env, userHome: home });
    expect(found.looked.at(-1)).toBe(cached);
    expect(found.path).toBe(existsSync("/usr/local/bin/llama-server") ? "/usr/local/bin/llama-server" : cached);
    // the same folder scripts/llama-paths.ts builds into
    expect(dirname(dirname(cached))).toBe(llamaCacheDir({ env, home }));
  });

  it("a load that finds no llama-server says where it looked and how to get one", async () => {
    const config = parseConfig({ models: [{ id: "m", path: join(fake.extra, "extra-model.gguf") }] });
    const env = { ...process.env };
    process.env.PATH = "/nowhere";
    process.env.XDG_CACHE_HOME = join(scratch, "no-cache");
    try {
      const error = await checkRunnable(config, config.models[0]!).catch((e) => e);
      if (existsSync("/usr/local/bin/llama-server")) return expect(error).not.toBeInstanceOf(Error);
      expect(error).toBeInstanceOf(ConfigError);
      expect(error.message).toContain("looked in /nowhere/llama-server");
      expect(error.message).toContain("bun run llama:build");
    } finally {
      process.env.PATH = env.PATH;
      process.env.XDG_CACHE_HOME = env.XDG_CACHE_HOME;
      if (env.XDG_CACHE_HOME === undefined) delete process.env.XDG_CACHE_HOME;
    }
  });
});
