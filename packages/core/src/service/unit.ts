import { homedir } from "node:os";
import { join } from "node:path";

/**
 * The service that runs `corral serve` at boot: a systemd unit on Linux, a launchd plist on macOS.
 * Pure rendering here (tested on its content); the CLI writes the file and prints the commands.
 */

/** What the service runs and where. */
export interface ServiceSpec {
  /** the command that runs corral, e.g. [bun, /opt/corral/packages/cli/src/main.ts] or [/usr/local/bin/corral] */
  readonly command: readonly string[];
  /** the corral home the service uses (CORRAL_HOME) */
  readonly home: string;
  /** an explicit configuration file (`--config`) @default none: <home>/corral.yaml */
  readonly configFile?: string;
  /** a user service (systemd --user, a LaunchAgent) rather than a system one @default false */
  readonly user?: boolean;
  /** the user a system unit runs as @default none (root) */
  readonly runAs?: string;
  /** PATH for the service, so a bare `llama_server` is found as in the shell that installed it @default none */
  readonly path?: string;
}

/** Where the service file goes and how to turn it on and off. */
export interface ServicePlan {
  readonly kind: "systemd" | "launchd";
  readonly file: string;
  readonly content: string;
  /** the commands that enable and start it (printed, not run) */
  readonly enable: readonly string[];
  /** the commands that stop and disable it */
  readonly disable: readonly string[];
  /** the commands that tell its state */
  readonly status: readonly string[];
}

/** The unit's name (`corral.service`) and the launchd label. */
export const SERVICE_NAME = "corral";
export const LAUNCHD_LABEL = "dev.corral.serve";

/** One argument for systemd's ExecStart: quoted where it holds spaces or quotes; `%` and `$` escaped. */
function systemdArg(arg: string): string {
  const escaped = arg.replaceAll("%", "%%").replaceAll("$", "$$$$");
  return /[\s"'\\]/.test(escaped) ? `"${escaped.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"` : escaped;
}

function systemdEnv(name: string, value: string): string {
  return `Environment=${systemdArg(`${name}=${value}`)}`;
}

function serveArgs(spec: ServiceSpec): string[] {
  return [...spec.command, "serve", ...(spec.configFile ? ["--config", spec.configFile] : [])];
}

/**
 * The systemd unit that runs `corral serve` with this home and configuration.
 * @example
 * renderSystemdUnit({ command: ["/usr/local/bin/corral"], home: "/var/lib/corral", runAs: "llm" })
 */
export function renderSystemdUnit(spec: ServiceSpec): string {
  const user = spec.user ?? false;
  return [
    "# Written by `corral service install`; `corral service uninstall` removes it.",
    "[Unit]",
    `Description=corral: keeps track of llama.cpp llama-server processes (home ${spec.home})`,
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    `ExecStart=${serveArgs(spec).map(systemdArg).join(" ")}`,
    // SIGHUP makes corral serve re-read corral.yaml without stopping any model (`systemctl reload corral`).
    "ExecReload=/bin/kill -HUP $MAINPID",
    systemdEnv("CORRAL_HOME", spec.home),
    ...(spec.path ? [systemdEnv("PATH", spec.path)] : []),
    `WorkingDirectory=${systemdArg(spec.home)}`,
    ...(!user && spec.runAs ? [`User=${spec.runAs}`] : []),
    "Restart=on-failure",
    "RestartSec=2",
    "# KillMode=process: on stop or restart systemd signals corral serve alone. Its default",
    "# (control-group) kills every process in the unit's cgroup, and the llama-servers corral started",
    "# are in it: every model would be lost and loaded again from disk, defeating the reattach corral",
    "# does at each start. The servers keep running; the next corral serve recovers them.",
    "KillMode=process",
    "",
    "[Install]",
    `WantedBy=${user ? "default.target" : "multi-user.target"}`,
    "",
  ].join("\n");
}

function xml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}

/**
 * The launchd plist with the same semantics: started at load, restarted when it exits with a
 * failure (KeepAlive SuccessfulExit false), and launchd leaves the llama-servers alone when it stops
 * corral (AbandonProcessGroup, as KillMode=process does for systemd).
 * @example
 * renderLaunchdPlist({ command: ["/usr/local/bin/corral"], home: "/Users/me/Library/Application Support/corral", user: true })
 */
export function renderLaunchdPlist(spec: ServiceSpec): string {
  const string = (s: string) => `    <string>${xml(s)}</string>`;
  const env = [["CORRAL_HOME", spec.home], ...(spec.path ? [["PATH", spec.path]] : [])] as const;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    "<dict>",
    "  <key>Label</key>",
    `  <string>${LAUNCHD_LABEL}</string>`,
    "  <key>ProgramArguments</key>",
    "  <array>",
    ...serveArgs(spec).map(string),
    "  </array>",
    "  <key>EnvironmentVariables</key>",
    "  <dict>",
    ...env.flatMap(([k, v]) => [`    <key>${k}</key>`, `    <string>${xml(v)}</string>`]),
    "  </dict>",
    "  <key>WorkingDirectory</key>",
    `  <string>${xml(spec.home)}</string>`,
    "  <key>RunAtLoad</key>",
    "  <true/>",
    "  <key>KeepAlive</key>",
    "  <dict>",
    "    <key>SuccessfulExit</key>",
    "    <false/>",
    "  </dict>",
    "  <key>AbandonProcessGroup</key>",
    "  <true/>",
    "  <key>StandardOutPath</key>",
    `  <string>${xml(join(spec.home, "logs", "corral-serve.log"))}</string>`,
    "  <key>StandardErrorPath</key>",
    `  <string>${xml(join(spec.home, "logs", "corral-serve.log"))}</string>`,
    ...(!spec.user && spec.runAs ? ["  <key>UserName</key>", `  <string>${xml(spec.runAs)}</string>`] : []),
    "</dict>",
    "</plist>",
    "",
  ].join("\n");
}

/**
 * The whole plan for this platform: the file, its content and the commands around it.
 * @default platform = process.platform, home folder = os.homedir()
 * @example
 * const plan = servicePlan({ command, home, user: true }); console.log(plan.file, plan.enable.join("\n"))
 */
export function servicePlan(
  spec: ServiceSpec,
  platform: NodeJS.Platform = process.platform,
  userHome: string = homedir(),
): ServicePlan {
  if (platform === "darwin") {
    const file = spec.user
      ? join(userHome, "Library", "LaunchAgents", `${LAUNCHD_LABEL}.plist`)
      : join("/Library", "LaunchDaemons", `${LAUNCHD_LABEL}.plist`);
    const domain = spec.user ? "gui/$(id -u)" : "system";
    return {
      kind: "launchd",
      file,
      content: renderLaunchdPlist(spec),
      enable: [`launchctl bootstrap ${domain} ${file}`, `launchctl enable ${domain}/${LAUNCHD_LABEL}`],
      disable: [`launchctl bootout ${domain}/${LAUNCHD_LABEL}`],
      status: [`launchctl print ${domain}/${LAUNCHD_LABEL}`],
    };
  }
  const ctl = spec.user ? "systemctl --user" : "systemctl";
  const file = spec.user
    ? join(userHome, ".config", "systemd", "user", `${SERVICE_NAME}.service`)
    : join("/etc", "systemd", "system", `${SERVICE_NAME}.service`);
  return {
    kind: "systemd",
    file,
    content: renderSystemdUnit(spec),
    enable: [
      `${ctl} daemon-reload`,
      `${ctl} enable --now ${SERVICE_NAME}.service`,
      // A user's units start at boot only when the user lingers.
      ...(spec.user ? ["loginctl enable-linger $USER"] : []),
    ],
    disable: [`${ctl} disable --now ${SERVICE_NAME}.service`, `${ctl} daemon-reload`],
    status: [`${ctl} status ${SERVICE_NAME}.service`],
  };
}
