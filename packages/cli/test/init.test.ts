/**
 * `corral init` as a new user runs it: a fake HOME holding GGUF files in every place init looks
 * (packages/core/test/fixtures/first-run-home.ts), scripted with --yes and driven in tmux.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "@corral/core";
import { makeFirstRunHome } from "../../core/test/fixtures/first-run-home.ts";
import { corral } from "./helpers.ts";
import { Terminal } from "./tmux.ts";

const FAKE_NVIDIA_SMI = join(import.meta.dir, "..", "..", "core", "test", "fixtures", "nvidia-smi");

const fake = makeFirstRunHome();
const scratch = mkdtempSync(join(tmpdir(), "corral-init-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
/** The fake HOME, and no cache or Ollama folder of the real machine. */
const env = {
  HOME: fake.home,
  XDG_CACHE_HOME: undefined,
  HF_HOME: undefined,
  HF_HUB_CACHE: undefined,
  OLLAMA_MODELS: undefined,
};

interface InitJson {
  file: string;
  backup?: string;
  llama_server: string | null;
  models: {
    id: string;
    source: string;
    parts: number;
    mmproj?: string;
    architecture: string;
    quantization: string;
    context_length: number;
    parameters: string;
    size_bytes: number;
  }[];
}

describe("corral init --yes", () => {
  const home = { dir: join(scratch, "scripted") };

  it("is what `corral ls` points at while no model is configured", async () => {
    for (const args of [["ls"], ["ls", "--models"]]) {
      const run = await corral(home, args, env);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain(`no models are configured: ${join(home.dir, "corral.yaml")} does not exist yet`);
      expect(run.stdout).toContain("run corral init");
    }
  });

  it("finds each model of the fake home exactly once, with its facts and source, and writes a file that loads", async () => {
    const run = await corral(
      home,
      ["init", "--models", fake.extra, "--yes", "--llama-server", "/opt/llama/llama-server", "--json"],
      env,
    );
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as InitJson;
    expect(out.file).toBe(join(home.dir, "corral.yaml"));
    expect(out.models.map((m) => m.id).sort()).toEqual(fake.expected.map((e) => e.id).sort());
    for (const e of fake.expected) {
      const m = out.models.find((x) => x.id === e.id)!;
      expect([m.source, m.parts, m.mmproj !== undefined]).toEqual([e.source, e.parts, e.mmproj]);
      expect([m.architecture, m.quantization, m.context_length]).toEqual(["llama", "F32", 512]);
      expect(m.parameters).not.toBe("");
      expect(m.size_bytes).toBeGreaterThan(0);
    }
    expect(statSync(out.file).mode & 0o777).toBe(0o600);
    const config = await loadConfig({ home: home.dir });
    expect(config.llama_server).toBe("/opt/llama/llama-server");
    expect(config.models.map((m) => m.id).sort()).toEqual(fake.expected.map((e) => e.id).sort());
    expect(config.models.find((m) => m.id === "vis-model")?.args[0]).toBe("--mmproj");
  });

  it("refuses a second run without --force and changes nothing; --force keeps a copy", async () => {
    const file = join(home.dir, "corral.yaml");
    const before = readFileSync(file, "utf8");
    const mtime = statSync(file).mtimeMs;
    const again = await corral(home, ["init", "--yes"], env);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain("already exists");
    expect(again.stderr).toContain("--force");
    expect(readFileSync(file, "utf8")).toBe(before);
    expect(statSync(file).mtimeMs).toBe(mtime);
    const forced = await corral(home, ["init", "--yes", "--force", "--json"], env);
    expect(forced.code).toBe(0);
    const out = JSON.parse(forced.stdout) as InitJson;
    expect(readFileSync(out.backup!, "utf8")).toBe(before);
    expect(readdirSync(home.dir).filter((n) => n.endsWith(".bak"))).toHaveLength(1);
  });

  it("places the models on the GPUs nvidia-smi shows (auto among several), or on the ones --gpu names", async () => {
    const gpuEnv = { ...env, PATH: `${FAKE_NVIDIA_SMI}:${process.env.PATH}` };
    const all = { dir: join(scratch, "gpus-all") };
    const found = JSON.parse((await corral(all, ["init", "--yes", "--json"], gpuEnv)).stdout) as { gpus: number[] };
    expect(found.gpus.length).toBeGreaterThan(1);
    expect(new Set((await loadConfig({ home: all.dir })).models.map((m) => m.gpu))).toEqual(new Set(["auto"]));
    const one = { dir: join(scratch, "gpus-one") };
    expect((await corral(one, ["init", "--yes", "--gpu", "1"], gpuEnv)).code).toBe(0);
    expect(new Set((await loadConfig({ home: one.dir })).models.map((m) => m.gpu))).toEqual(new Set(["1"]));
    const bad = await corral({ dir: join(scratch, "gpus-bad") }, ["init", "--yes", "--gpu", "x"], gpuEnv);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--gpu");
  });

  it("outside a terminal, asks for --yes instead of prompting", async () => {
    const run = await corral({ dir: join(scratch, "no-yes") }, ["init"], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--yes");
  });
});

const haveTmux = Bun.which("tmux") !== null;
if (!haveTmux) console.log("interactive init test skipped: no tmux (apt-get install tmux; .ci/run does)");

describe.skipIf(!haveTmux)("corral init in a terminal", () => {
  it("lists the models found with their facts, and writes the ones left picked", async () => {
    const term = new Terminal();
    try {
      const dir = join(scratch, "interactive");
      const s = term.start(["--home", dir, "init", "--models", fake.extra], { HOME: fake.home });
      const screen = await term.waitFor(s, "Which models should corral know?");
      expect(screen).toContain("tinyllama:latest");
      // the first entry (extra-model, from the folder given) is toggled off, the rest kept
      await term.waitFor(s, "extra-model");
      term.keys(s, "Space");
      await term.waitFor(s, /◻ extra-model|\[ \] extra-model/);
      term.keys(s, "Enter");
      await term.waitFor(s, "wrote");
      expect(await term.exitCode(s)).toBe(0);
      const ids = (await loadConfig({ home: dir })).models.map((m) => m.id);
      expect(ids).not.toContain("extra-model");
      expect(ids.sort()).toEqual(
        fake.expected
          .map((e) => e.id)
          .filter((id) => id !== "extra-model")
          .sort(),
      );
    } finally {
      term.close();
    }
  }, 60_000);
});
