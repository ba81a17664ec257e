import { afterAll, describe, expect, it } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { spawnStandIn } from "./fixtures/index.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("another Bun app importing @corral/core", () => {
  it("registers, verifies and kills a llama-server through the package's public entry point", async () => {
    const app = mkdtempSync(join(tmpdir(), "corral-consumer-"));
    dirs.push(app);
    // Linked the way a workspace or `bun link` would: node_modules/@corral/core → packages/core.
    mkdirSync(join(app, "node_modules", "@corral"), { recursive: true });
    symlinkSync(resolve(import.meta.dir, ".."), join(app, "node_modules", "@corral", "core"), "dir");
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "consumer", type: "module" }));
    writeFileSync(
      join(app, "app.ts"),
      `import { createRegistry, NotOurProcessError } from "@corral/core";
const [home, pid, port] = process.argv.slice(2);
const registry = createRegistry({ home });
await registry.register("0", { pid: Number(pid), model_id: "tiny", model_name: "Tiny", model_path: "/m/tiny.gguf",
  gpu_id: "0", port: Number(port), started_at: new Date().toISOString(), command_line: ["llama-server"], status: "running" });
const [verified] = await registry.verifyAll();
const refused = await registry.killOrphan(1).catch((e) => e instanceof NotOurProcessError);
const killed = await registry.kill("0", { timeoutMs: 2000 });
console.log(JSON.stringify({ state: verified?.probe.state, refused, signalled: killed.signalled, left: (await registry.list()).length }));
`,
    );
    const server = await spawnStandIn({});
    const home = join(app, "home");
    const run = Bun.spawnSync(["bun", "app.ts", home, String(server.pid), String(server.port)], { cwd: app });
    expect(run.stderr.toString()).toBe("");
    expect(JSON.parse(run.stdout.toString())).toEqual({ state: "running", refused: true, signalled: true, left: 0 });
    await server.proc.exited;
  });
});
