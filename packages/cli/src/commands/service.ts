import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, resolve } from "node:path";
import { type ServicePlan, servicePlan } from "@corral/core";
import { booleanFlag, UsageError } from "../args.ts";
import type { Command, Outcome } from "../context.ts";
import { style } from "../render.ts";
import { callServer } from "../server-client.ts";

/**
 * `corral service install|uninstall|status [--user] [--dry-run]`: a systemd unit (a launchd plist
 * on macOS) that runs `corral serve` at boot with this home and configuration, restarted on
 * failure, stopped without its llama-servers (KillMode=process). Install writes the file and
 * prints the commands that enable it; it runs none of them.
 * @example
 * corral service install --user
 */
export const command: Command = {
  name: "service",
  args: [{ name: "action", description: "install, uninstall or status" }],
  options: {
    user: { type: "boolean", description: "a user service (systemctl --user, a LaunchAgent) instead of a system one" },
    "dry-run": { type: "boolean", description: "print what would be written and run, change nothing" },
  },
  json: true,
  examples: ["corral service install --user", "corral service install --dry-run", "corral service status --user"],
  async run(ctx, input) {
    const action = input.args.action;
    const controller = await ctx.controller();
    const user = booleanFlag(input, "user");
    const plan = servicePlan({
      command: corralCommand(),
      home: controller.paths.home,
      ...(ctx.configFile ? { configFile: resolve(ctx.configFile) } : {}),
      user,
      ...(!user && userInfo().uid !== 0 ? { runAs: userInfo().username } : {}),
      ...(process.env.PATH ? { path: process.env.PATH } : {}),
    });
    const dryRun = booleanFlag(input, "dry-run");
    if (action === "install") return install(plan, dryRun);
    if (action === "uninstall") return uninstall(plan, dryRun);
    if (action === "status") {
      const answers = (await callServer(controller, "/api/v1/health", { timeoutMs: 1000 }).catch(() => undefined))?.ok;
      return status(plan, answers === true);
    }
    throw new UsageError('give an action: "install", "uninstall" or "status"', "service");
  },
};

/** How this corral was started: a compiled binary alone, else bun with its entry script. */
function corralCommand(): string[] {
  return Bun.main.startsWith("/$bunfs/") ? [process.execPath] : [process.execPath, Bun.main];
}

/** systemd runs the machine (PID 1) and systemctl is there: only then are its commands run. */
function systemdHere(): boolean {
  try {
    return readFileSync("/proc/1/comm", "utf8").trim() === "systemd" && Bun.which("systemctl") !== null;
  } catch {
    return false;
  }
}

function install(plan: ServicePlan, dryRun: boolean): Outcome {
  const data = { file: plan.file, kind: plan.kind, enable: plan.enable, content: plan.content, written: !dryRun };
  const body = plan.content.trimEnd().split("\n");
  const enable = ["enable and start it with:", ...plan.enable.map((c) => `  ${c}`)];
  if (dryRun) {
    return { data, lines: [`would write ${plan.file}:`, ...body, "", ...enable], summary: "dry run: nothing written" };
  }
  mkdirSync(dirname(plan.file), { recursive: true });
  const unchanged = existsSync(plan.file) && readFileSync(plan.file, "utf8") === plan.content;
  if (!unchanged) {
    const temp = `${plan.file}.${process.pid}.tmp`;
    writeFileSync(temp, plan.content, { mode: 0o644 });
    renameSync(temp, plan.file);
  }
  return {
    data,
    lines: [`${unchanged ? "unchanged" : "wrote"} ${plan.file}:`, ...body, "", ...enable],
    summary: `${plan.kind} service written`,
  };
}

function run(command: string): { command: string; code: number; output: string } {
  const done = Bun.spawnSync(["sh", "-c", command], { stdout: "pipe", stderr: "pipe" });
  return { command, code: done.exitCode, output: `${done.stdout}${done.stderr}`.trim() };
}

function uninstall(plan: ServicePlan, dryRun: boolean): Outcome {
  const present = existsSync(plan.file);
  const systemd = plan.kind === "systemd" && systemdHere();
  if (dryRun) {
    const steps = [...(systemd ? plan.disable.map((c) => `would run: ${c}`) : []), `would remove ${plan.file}`];
    return { data: { file: plan.file, present, removed: false }, lines: steps, summary: "dry run: nothing removed" };
  }
  // Disabled before the file goes: systemd cannot disable a unit whose file is gone.
  const ran = systemd && present ? plan.disable.slice(0, 1).map(run) : [];
  rmSync(plan.file, { force: true });
  if (systemd) ran.push(...plan.disable.slice(1).map(run));
  const lines = [
    ...ran.map((r) => `ran ${r.command}: ${r.code === 0 ? "ok" : `exit ${r.code} ${r.output}`}`),
    present ? `removed ${plan.file}` : `${plan.file} was not there`,
    ...(systemd || plan.kind !== "systemd"
      ? []
      : ["no systemd runs this machine (PID 1): nothing to disable; the llama-servers were not touched"]),
    ...(plan.kind === "launchd" ? ["stop it first where it runs:", ...plan.disable.map((c) => `  ${c}`)] : []),
  ];
  return { data: { file: plan.file, present, removed: present, ran }, lines, summary: "service removed" };
}

function status(plan: ServicePlan, answering: boolean): Outcome {
  const present = existsSync(plan.file);
  const current = present && readFileSync(plan.file, "utf8") === plan.content;
  const checks = plan.kind === "systemd" && systemdHere() ? plan.status.map(run) : [];
  const lines = [
    present
      ? `${plan.file}: installed${current ? "" : style.yellow(" (differs from what install would write now: run it again)")}`
      : `${plan.file}: not installed (corral service install${plan.file.includes("/etc/") ? "" : " --user"})`,
    ...checks.map((c) => c.output),
    ...(plan.kind === "systemd" && checks.length === 0
      ? ["no systemd runs this machine: its state cannot be asked"]
      : []),
    `corral serve of this home: ${answering ? style.green("answering") : "not answering"}`,
  ];
  return {
    data: { file: plan.file, kind: plan.kind, installed: present, current, serving: answering },
    lines,
    summary: present ? "installed" : "not installed",
  };
}
