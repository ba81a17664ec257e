/**
 * Corral homes for the scenarios: a config pointing at the stand-in llama-server, small model
 * files, and a port range of its own.
 */
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { freePort, standInServer } from "../../packages/core/test/fixtures/index.ts";
import type { Scope } from "./scope.ts";

/**
 * A model of a torture home.
 * @example
 * const m: HomeModel = { id: "slow", args: ["--fake-load-ms", "900"], restart: "on-failure" }
 */
export interface HomeModel {
  readonly id: string;
  readonly args?: readonly string[];
  /** @default "never" */
  readonly restart?: "never" | "on-failure";
}

/**
 * A corral home a scenario made.
 * @example
 * const { home, configFile } = await makeHome(scope, dir, [{ id: "tiny" }])
 */
export interface TortureHome {
  readonly home: string;
  readonly configFile: string;
  readonly server: string;
  readonly registry: string;
  modelPath(id: string): string;
}

/**
 * Writes `corral.json` into `home` (created if needed, registered with the scope).
 * @default extra = {} (merged over the generated config)
 * @example
 * const h = await makeHome(scope, scope.tempDir("crash"), [{ id: "a", args: ["--fake-load-ms", "300"] }])
 */
export async function makeHome(
  scope: Scope,
  home: string,
  models: readonly HomeModel[],
  extra: Record<string, unknown> = {},
): Promise<TortureHome> {
  mkdirSync(home, { recursive: true });
  scope.home(home);
  const server = await standInServer();
  const base = await freePort();
  const modelPath = (id: string) => join(home, `${id}.gguf`);
  for (const m of models) writeFileSync(modelPath(m.id), "GGUF stand-in model\n");
  const config = {
    llama_server: server,
    host: "127.0.0.1",
    ports: { range: [base, Math.min(base + 60, 65_535)], gpu: {} },
    timeouts: { load_ms: 20_000, stop_ms: 3_000, health_ms: 1_000 },
    watch: { interval_ms: 500 },
    gpu_release_wait_ms: 0,
    models: models.map((m) => ({
      id: m.id,
      path: modelPath(m.id),
      args: [...(m.args ?? [])],
      restart: m.restart ?? "never",
    })),
    ...extra,
  };
  const configFile = join(home, "corral.json");
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  return { home, configFile, server, registry: join(home, "processes.json"), modelPath };
}

/**
 * A fingerprint of every file under `dir`: relative path → sha256 of its bytes (or of a link's
 * target). Files under `skipContent` folders are listed by name only (logs grow by themselves).
 * @example
 * const before = fingerprint(home, ["logs"]); … expect(diffFingerprints(before, fingerprint(home, ["logs"]))).toEqual([])
 */
export function fingerprint(dir: string, skipContent: readonly string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (at: string) => {
    if (!existsSync(at)) return;
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      const rel = relative(dir, path);
      const info = lstatSync(path);
      if (info.isSymbolicLink()) out.set(rel, `link:${readlinkSync(path)}`);
      else if (info.isDirectory()) {
        out.set(`${rel}/`, "dir");
        walk(path);
      } else if (skipContent.some((s) => rel === s || rel.startsWith(`${s}/`))) out.set(rel, "file");
      else out.set(rel, createHash("sha256").update(readFileSync(path)).digest("hex"));
    }
  };
  walk(dir);
  return out;
}

/**
 * What changed between two fingerprints, one sentence per path.
 * @example
 * diffFingerprints(before, fingerprint(dir)) // ["home/processes.json changed"]
 */
export function diffFingerprints(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): string[] {
  const changes: string[] = [];
  for (const [path, hash] of before) {
    if (!after.has(path)) changes.push(`${path} disappeared`);
    else if (after.get(path) !== hash) changes.push(`${path} changed`);
  }
  for (const path of after.keys()) if (!before.has(path)) changes.push(`${path} appeared`);
  return changes;
}
