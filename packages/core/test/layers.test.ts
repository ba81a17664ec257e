/**
 * The layers of core, checked from the source: no import circles, and each folder imports only
 * from folders below it (ARCHITECTURE.md). Type-only imports count too: a circle of types is
 * still two files that cannot be understood apart.
 */
import { describe, expect, it } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = join(import.meta.dir, "..", "src");

/** Lowest first. Files at the top of src/ other than the public surfaces are the base layer. */
const LAYERS: readonly (readonly string[])[] = [
  ["(base)"],
  ["store"],
  ["process"],
  ["registry"],
  // Finding llama-server and GGUF files on disk (no headers read): config's models_dir uses it.
  ["discovery"],
  ["config"],
  ["server"],
  ["auth"],
  // Placement (will a model fit, which GPU) reads config, processes and GPU figures; the controller asks it.
  ["placement"],
  // The first run: scans with the headers' facts, the configuration written from them.
  ["setup"],
  ["lifecycle"],
  ["gateway"],
  // The supervisor's samples: rows from its statuses and the gateway's figures, in metrics.db.
  ["metrics"],
  ["supervision"],
  // The unit and plist that run `corral serve` at boot: rendering only, above everything it may name.
  ["service"],
];
/** Surfaces that re-export every layer. */
const SURFACES = new Set(["index.ts", "views.ts"]);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const path = join(dir, d.name);
    if (d.isDirectory()) return sources(path);
    return d.name.endsWith(".ts") && !d.name.endsWith(".test.ts") ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found = new Set<string>();
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\sfrom\s+"(\.{1,2}\/[^"]+)"/g)) {
    found.add(resolve(dirname(file), m[1]!));
  }
  return [...found];
}

function folderOf(file: string): string {
  const rel = relative(SRC, file);
  return rel.includes("/") ? rel.split("/")[0]! : "(base)";
}

function rankOf(folder: string): number {
  const rank = LAYERS.findIndex((layer) => layer.includes(folder));
  if (rank < 0) throw new Error(`folder ${folder} has no place in LAYERS: add it (and to ARCHITECTURE.md)`);
  return rank;
}

const files = sources(SRC).filter((f) => !SURFACES.has(relative(SRC, f)));
/** Imports inside src/ only: a surface, or a file outside (the repository's scripts/), has no layer. */
const inside = (to: string) => !relative(SRC, to).startsWith("..") && !SURFACES.has(relative(SRC, to));
const graph = new Map(files.map((f) => [f, importsOf(f).filter(inside)]));

describe("core's layers", () => {
  it("has no import circle", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (file: string) => {
      state.set(file, "open");
      stack.push(file);
      for (const to of graph.get(file) ?? []) {
        if (state.get(to) === "open") {
          cycles.push([...stack.slice(stack.indexOf(to)), to].map((f) => relative(SRC, f)).join(" → "));
        } else if (!state.has(to) && graph.has(to)) visit(to);
      }
      stack.pop();
      state.set(file, "done");
    };
    for (const file of graph.keys()) if (!state.has(file)) visit(file);
    expect(cycles).toEqual([]);
  });

  it("imports only down the layers", () => {
    const upward: string[] = [];
    for (const [file, targets] of graph) {
      const from = folderOf(file);
      for (const to of targets) {
        const into = folderOf(to);
        if (into !== from && rankOf(into) > rankOf(from)) upward.push(`${relative(SRC, file)} → ${relative(SRC, to)}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("finds the imports it checks (the check itself works)", () => {
    const controller = [...graph.keys()].find((f) => f.endsWith("lifecycle/controller.ts"));
    expect(controller).toBeDefined();
    expect(graph.get(controller!)!.some((to) => to.endsWith("registry/registry.ts"))).toBe(true);
  });
});
