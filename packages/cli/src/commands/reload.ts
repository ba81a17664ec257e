import { loadConfig, type ReloadResult } from "@corral/core";
import { booleanFlag } from "../args.ts";
import type { Command, Outcome } from "../context.ts";
import { style } from "../render.ts";
import { callServer } from "../server-client.ts";

/**
 * `corral reload [--restart-changed]`: the running `corral serve` of this home re-reads corral.yaml
 * (`POST /api/v1/config/reload`, as SIGHUP does). A file that does not validate is refused with the
 * key that is wrong and nothing changes; running models are never stopped: a changed one is marked
 * stale until restarted (here with `--restart-changed`). With no server running, the file is
 * checked and the next start reads it.
 * @example
 * corral reload --restart-changed
 */
export const command: Command = {
  name: "reload",
  args: [],
  options: {
    "restart-changed": { type: "boolean", description: "restart the servers whose model's configuration changed" },
  },
  json: true,
  examples: ["corral reload", "corral reload --restart-changed"],
  async run(ctx, input) {
    const controller = await ctx.controller();
    const restartChanged = booleanFlag(input, "restart-changed");
    const res = await callServer(controller, "/api/v1/config/reload", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ restart_changed: restartChanged }),
      timeoutMs: restartChanged ? 30 * 60_000 : 30_000,
    });
    if (!res) {
      // The CLI read the file when it opened the controller: a bad one has failed already, naming its key.
      await loadConfig({ home: controller.paths.home, file: ctx.configFile });
      const { host, port } = controller.config.server;
      return {
        data: { running: false },
        lines: [`no corral serve answers on ${host}:${port}: the configuration is valid; the next start reads it`],
        summary: "nothing to reload",
      };
    }
    const body = (await res.json()) as ReloadResult | { error: { code: string; message: string } };
    if ("error" in body) {
      return { data: body, lines: [style.red(`refused: ${body.error.message}`)], exitCode: 1, summary: "refused" };
    }
    return reloadOutcome(body);
  },
};

function reloadOutcome(r: ReloadResult): Outcome {
  const lines = [
    `reloaded ${r.file ?? "the defaults"}`,
    `settings changed: ${r.changed.join(", ") || "none"}`,
    `models added: ${r.added.join(", ") || "none"}; removed: ${r.removed.join(", ") || "none"}; changed: ${r.changed_models.join(", ") || "none"}`,
  ];
  if (r.stale.length) {
    lines.push(style.yellow(`stale (running with the old settings until restarted): slot ${r.stale.join(", ")}`));
  }
  for (const x of r.restarted) {
    lines.push(`slot ${x.slot} (${x.model_id}): ${x.outcome}${x.error ? `: ${x.error}` : ` (pid ${x.pid})`}`);
  }
  if (r.restart_needed?.length)
    lines.push(`take effect at the next start of corral serve: ${r.restart_needed.join(", ")}`);
  const failed = r.restarted.some((x) => x.outcome === "failed");
  return { data: r, lines, exitCode: failed ? 1 : 0, summary: `reloaded, ${r.stale.length} stale` };
}
