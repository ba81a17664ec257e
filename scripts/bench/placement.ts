/**
 * Scenario 10: what a load spends on placement before the spawn. The GGUF header read uncached
 * (a fresh cache each run), cached (stat + lookup) and kept in `<home>/facts.json` (what a new CLI
 * process pays), one GPU query through the fake nvidia-smi
 * (two bash runs: the real one's cost is the driver's, not corral's), and the whole check with the
 * facts cached and the GPU snapshot in hand (learned figures, history, classification, estimate,
 * fit): the part corral adds to every load. Target: the cached check under 5 ms.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  checkPlacement,
  createRegistry,
  FactsCache,
  type GpuSnapshot,
  LearnedFigures,
  parseConfig,
  queryGpus,
  readModelFacts,
} from "@corral/core";
import { llamaBuildPaths } from "../llama-paths.ts";
import { figure, median, round, type Scenario } from "./harness.ts";

const FAKE_DIR = join(import.meta.dir, "..", "..", "packages", "core", "test", "fixtures", "nvidia-smi");

export const placementScenario: Scenario = {
  scenario: 10,
  name: "placement before a load",
  async run(ctx) {
    const llama = llamaBuildPaths();
    if (!llama.chatReady) {
      const why = "no tiny-chat.gguf: run `bun run llama:build`";
      return [figure(10, "placement.check", "checkPlacement, facts cached", null, "ms", { op: "<", value: 5 }, why)];
    }
    const model = llama.chatModel;
    const runs = ctx.runs(31, 9);
    const uncached: number[] = [];
    const cached: number[] = [];
    const cache = new FactsCache();
    await readModelFacts(model, { cache });
    for (let i = -2; i < runs; i++) {
      let t = performance.now();
      await readModelFacts(model, { cache: new FactsCache() });
      const tUncached = performance.now() - t;
      t = performance.now();
      await readModelFacts(model, { cache });
      const tCached = performance.now() - t;
      if (i < 0) continue;
      uncached.push(tUncached);
      cached.push(tCached);
    }
    const env = {
      PATH: `${FAKE_DIR}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      FAKE_NVIDIA_SMI_DIR: join(FAKE_DIR, "recorded", "three-gpus"),
    };
    const smi: number[] = [];
    let snapshot: GpuSnapshot | undefined;
    for (let i = -1; i < ctx.runs(11, 5); i++) {
      const t = performance.now();
      snapshot = await queryGpus({ env });
      if (i >= 0) smi.push(performance.now() - t);
    }
    const home = mkdtempSync(join(tmpdir(), "corral-bench-placement-"));
    try {
      // What a new process (every CLI run) pays with the facts kept in <home>/facts.json.
      const kept = join(home, "facts.json");
      await readModelFacts(model, { cache: new FactsCache({ file: kept }) });
      const fromFile: number[] = [];
      for (let i = -2; i < runs; i++) {
        const t = performance.now();
        await readModelFacts(model, { cache: new FactsCache({ file: kept }) });
        if (i >= 0) fromFile.push(performance.now() - t);
      }
      const registry = createRegistry({ home });
      const config = parseConfig({ models: [{ id: "tiny", path: model, gpu: 2, args: ["-c", "4096"] }] });
      const place = {
        config,
        homeId: registry.homeId,
        probe: registry.probe,
        entries: () => registry.list(),
        history: (limit: number) => registry.history.read({ limit }),
        gpuQuery: async () => snapshot,
        learned: new LearnedFigures({ file: join(home, "learned.json") }),
        facts: cache,
      };
      const [m] = config.models;
      if (!m) throw new Error("no model");
      const check: number[] = [];
      for (let i = -2; i < runs; i++) {
        const t = performance.now();
        await checkPlacement(place, m, "2");
        if (i >= 0) check.push(performance.now() - t);
      }
      ctx.log(
        `placement: GGUF ${median(uncached).toFixed(2)} ms uncached, ${median(cached).toFixed(3)} ms cached, ` +
          `${median(fromFile).toFixed(2)} ms from facts.json; ` +
          `nvidia-smi (fake) ${median(smi).toFixed(1)} ms; check ${median(check).toFixed(2)} ms`,
      );
      const note = `median of ${runs}; tiny-chat.gguf (32000-token vocabulary, 17 MB)`;
      return [
        figure(
          10,
          "placement.gguf_uncached",
          "GGUF header read, uncached",
          round(median(uncached)),
          "ms",
          undefined,
          note,
        ),
        figure(10, "placement.gguf_cached", "GGUF header read, cached (stat + lookup)", round(median(cached)), "ms"),
        figure(
          10,
          "placement.gguf_file",
          "GGUF header, kept in facts.json (a new process)",
          round(median(fromFile)),
          "ms",
        ),
        figure(10, "placement.nvidia_smi", "queryGpus (the fake nvidia-smi: two bash runs)", round(median(smi)), "ms"),
        figure(10, "placement.check", "checkPlacement, facts cached, snapshot in hand", round(median(check)), "ms", {
          op: "<",
          value: 5,
        }),
      ];
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  },
};
