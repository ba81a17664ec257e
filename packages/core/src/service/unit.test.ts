import { describe, expect, it } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderLaunchdPlist, renderSystemdUnit, servicePlan } from "./unit.ts";

const spec = {
  command: ["/usr/bin/bun", "/opt/corral app/packages/cli/src/main.ts"],
  home: "/var/lib/corral",
  configFile: "/etc/corral/corral.yaml",
  path: "/usr/local/bin:/usr/bin",
  runAs: "llm",
};

/** systemd is PID 1 and systemctl is there: only then can a unit really run. */
const hasSystemd = (() => {
  try {
    return readFileSync("/proc/1/comm", "utf8").trim() === "systemd" && Bun.which("systemctl") !== null;
  } catch {
    return false;
  }
})();

describe("the systemd unit", () => {
  it("runs corral serve with the home and config, restarts on failure and kills only corral on stop", () => {
    const unit = renderSystemdUnit(spec);
    expect(unit).toContain(
      'ExecStart=/usr/bin/bun "/opt/corral app/packages/cli/src/main.ts" serve --config /etc/corral/corral.yaml',
    );
    expect(unit).toContain("Environment=CORRAL_HOME=/var/lib/corral");
    expect(unit).toContain("Environment=PATH=/usr/local/bin:/usr/bin");
    expect(unit).toContain("Restart=on-failure");
    expect(unit).toMatch(/^KillMode=process$/m);
    // The comment says why: the default kills every llama-server in the cgroup.
    expect(unit).toMatch(/# KillMode=process:[^\n]*\n#[^\n]*control-group/);
    expect(unit).toContain("ExecReload=/bin/kill -HUP $MAINPID");
    expect(unit).toContain("User=llm");
    expect(unit).toContain("WantedBy=multi-user.target");
  });

  it("is a user unit under ~/.config/systemd/user with --user, without User=, wanted by default.target", () => {
    const plan = servicePlan({ ...spec, user: true }, "linux", "/home/me");
    expect(plan.file).toBe("/home/me/.config/systemd/user/corral.service");
    expect(plan.content).not.toContain("User=");
    expect(plan.content).toContain("WantedBy=default.target");
    expect(plan.enable).toEqual([
      "systemctl --user daemon-reload",
      "systemctl --user enable --now corral.service",
      "loginctl enable-linger $USER",
    ]);
    expect(servicePlan(spec, "linux", "/home/me").file).toBe("/etc/systemd/system/corral.service");
  });

  it("escapes what systemd would expand: % and $", () => {
    const unit = renderSystemdUnit({ command: ["/opt/100%/corral"], home: "/h/$HOME" });
    expect(unit).toContain("ExecStart=/opt/100%%/corral serve");
    expect(unit).toContain("Environment=CORRAL_HOME=/h/$$HOME");
  });

  it.skipIf(!hasSystemd)(
    "runs under the machine's systemd as a user unit and stops without killing its children",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "corral-unit-"));
      const name = `corral-test-${process.pid}`;
      const file = join(process.env.HOME ?? "/root", ".config", "systemd", "user", `${name}.service`);
      const script = join(dir, "serve.sh");
      // A stand-in for corral serve that starts a child and records its PID, as serve starts llama-servers.
      writeFileSync(script, `#!/bin/sh\nsleep 300 & echo $! > ${dir}/child\nexec sleep 300\n`, { mode: 0o755 });
      writeFileSync(file, renderSystemdUnit({ command: [script], home: dir, user: true }).replace(" serve", ""));
      const ctl = (...args: string[]) => Bun.spawnSync(["systemctl", "--user", ...args]);
      try {
        ctl("daemon-reload");
        expect(ctl("start", `${name}.service`).exitCode).toBe(0);
        const deadline = Date.now() + 10_000;
        while (!existsSync(join(dir, "child")) && Date.now() < deadline) await Bun.sleep(50);
        const child = Number(readFileSync(join(dir, "child"), "utf8"));
        ctl("stop", `${name}.service`);
        expect(() => process.kill(child, 0)).not.toThrow();
        process.kill(child, "SIGKILL");
      } finally {
        rmSync(file, { force: true });
        ctl("daemon-reload");
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
  if (!hasSystemd) console.log("service unit: not run under a real systemd (PID 1 here is not systemd)");
});

describe("the launchd plist", () => {
  it("has the same semantics: runs at load, restarts on failure, leaves the servers when stopped", () => {
    const plist = renderLaunchdPlist({ ...spec, user: true });
    expect(plist).toContain("<string>dev.corral.serve</string>");
    expect(plist).toContain("<string>/opt/corral app/packages/cli/src/main.ts</string>");
    expect(plist).toContain("<string>serve</string>\n    <string>--config</string>");
    expect(plist).toMatch(/<key>CORRAL_HOME<\/key>\s*<string>\/var\/lib\/corral<\/string>/);
    expect(plist).toMatch(/<key>RunAtLoad<\/key>\s*<true\/>/);
    expect(plist).toMatch(/<key>KeepAlive<\/key>\s*<dict>\s*<key>SuccessfulExit<\/key>\s*<false\/>/);
    expect(plist).toMatch(/<key>AbandonProcessGroup<\/key>\s*<true\/>/);
    expect(plist).not.toContain("UserName");
    const plan = servicePlan(spec, "darwin", "/Users/me");
    expect(plan.file).toBe("/Library/LaunchDaemons/dev.corral.serve.plist");
    expect(plan.content).toContain("<key>UserName</key>");
    expect(servicePlan({ ...spec, user: true }, "darwin", "/Users/me").file).toBe(
      "/Users/me/Library/LaunchAgents/dev.corral.serve.plist",
    );
  });

  it("escapes XML in paths", () => {
    expect(renderLaunchdPlist({ command: ["/a&b/<corral>"], home: "/h" })).toContain("/a&amp;b/&lt;corral&gt;");
  });
});
