/**
 * Scenario 6: CLI cold start, `corral ls --json` over a home with 16 tracked stand-in servers
 * (a fresh `bun packages/cli/src/main.ts` each time, timed from spawn to exit). Target: under
 * 150 ms. Timed in the same run, interleaved, to say where the time goes: `bun -e ""` (Bun's
 * own start) and `corral --version` (the CLI's module loading, no work).
 */
import { join } from "node:path";
import { FLEET_SIZE, fleet } from "./fleet.ts";
import { figure, median, round, type Scenario, within } from "./harness.ts";

const REPO = join(import.meta.dir, "..", "..");
const CLI = join(REPO, "packages", "cli", "src", "main.ts");

export const cliScenario: Scenario = {
  scenario: 6,
  name: "CLI cold start",
  async run(ctx) {
    const f = await fleet(ctx.tracker);
    const commands = {
      ls: [process.execPath, CLI, "ls", "--json", "--home", f.home, "--config", f.configFile],
      version: [process.execPath, CLI, "--version"],
      bare: [process.execPath, "-e", ""],
    };
    const first = await run(ctx, commands.ls);
    const parsed = JSON.parse(first.stdout) as { slot: string; health?: { state: string } }[];
    const healthy = parsed.filter((r) => r.health?.state === "ok").length;
    if (parsed.length !== FLEET_SIZE || healthy !== FLEET_SIZE) {
      throw new Error(`corral ls --json listed ${parsed.length} rows, ${healthy} healthy; expected ${FLEET_SIZE}`);
    }
    const runs = ctx.runs(21, 7);
    const times = { ls: [] as number[], version: [] as number[], bare: [] as number[] };
    for (let i = -1; i < runs; i++) {
      for (const key of ["ls", "version", "bare"] as const) {
        const { ms } = await run(ctx, commands[key]);
        if (i >= 0) times[key].push(ms);
      }
    }
    ctx.log(
      `cli: ls --json ${median(times.ls).toFixed(0)} ms, --version ${median(times.version).toFixed(0)} ms, bun -e "" ${median(times.bare).toFixed(0)} ms`,
    );
    return [
      figure(
        6,
        "cli.ls",
        "corral ls --json, 16 entries, cold",
        round(median(times.ls)),
        "ms",
        { op: "<", value: 150 },
        `median of ${runs} fresh processes, spawn to exit, interleaved with the two below`,
      ),
      figure(6, "cli.version", "  corral --version (module loading only)", round(median(times.version)), "ms"),
      figure(6, "cli.bare", '  bun -e "" (Bun\'s own start)', round(median(times.bare)), "ms"),
    ];
  },
};

async function run(ctx: Parameters<Scenario["run"]>[0], argv: string[]): Promise<{ ms: number; stdout: string }> {
  const started = performance.now();
  const child = ctx.tracker.process(Bun.spawn(argv, { cwd: REPO, stdin: "ignore", stdout: "pipe", stderr: "pipe" }));
  const [code, stdout, stderr] = await within(
    Promise.all([child.exited, new Response(child.stdout).text(), new Response(child.stderr).text()]),
    30_000,
    argv.slice(1, 3).join(" "),
  );
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`${argv.slice(1).join(" ")} exited with ${code}: ${stderr.slice(0, 400)}`);
  return { ms, stdout };
}
