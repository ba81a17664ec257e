/** The orphan panel's actions: kill one, adopt one, clean up all of ours. */
import type { CleanupView, Orphan } from "@corral/core/views";
import type { ActionContext, Attempt } from "./actions.ts";
import { confirmDialog, field, formDialog } from "./dialogs.ts";
import { h } from "./dom.ts";
import { formatCommand } from "./format.ts";

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * The orphan actions, bound to a context.
 * @example
 * const { kill, adopt, cleanup } = orphanActions(ctx, attempt)
 */
export function orphanActions(ctx: Pick<ActionContext, "api" | "announce">, attempt: Attempt) {
  const { api } = ctx;
  // The API refuses a foreign orphan unless asked explicitly, and only a person's confirmation asks.
  const killOne = (o: Orphan) =>
    api.post(`/api/v1/orphans/${o.pid}/kill${o.verdict === "foreign" ? "?include_foreign=true" : ""}`);

  return {
    async kill(orphan: Orphan) {
      const reasons = orphan.reasons.join("; ") || "no reason given";
      const foreign =
        orphan.verdict === "foreign"
          ? h(
              "p",
              { class: "warning" },
              `corral judges this process foreign (${reasons}): it may belong to someone else.`,
            )
          : undefined;
      const body = [
        foreign,
        h("p", {}, "This process and its children are stopped:"),
        h("pre", { class: "command" }, formatCommand(orphan.command_line)),
      ];
      if (!(await confirmDialog(`Kill orphan PID ${orphan.pid}?`, body, foreign ? "Kill anyway" : "Kill"))) return;
      await attempt(`Killing orphan PID ${orphan.pid}`, async () => {
        await killOne(orphan);
        return `Killed orphan PID ${orphan.pid}`;
      });
    },

    async adopt(orphan: Orphan) {
      const slot = field(
        "Slot (optional)",
        "slot",
        // core's SLOT_PATTERN (the page bundles no core code; an HTML pattern is anchored already)
        { pattern: "(0|[1-9]\\d{0,2})(,(0|[1-9]\\d{0,2})){0,15}" },
        "Left empty: the GPU the process was started on.",
      );
      const data = await formDialog({
        title: `Adopt orphan PID ${orphan.pid}`,
        body: [h("p", {}, "corral tracks it from now on, like a process it started."), slot],
        submitLabel: "Adopt",
      });
      if (!data) return;
      const chosen = String(data.get("slot") ?? "").trim();
      await attempt(`Adopting PID ${orphan.pid}`, async () => {
        await api.post(`/api/v1/orphans/${orphan.pid}/adopt`, chosen ? { slot: chosen } : {});
        return `Adopted PID ${orphan.pid}${chosen ? ` into slot ${chosen}` : ""}`;
      });
    },

    /** Kills exactly the listed orphans that are not foreign (one request, an outcome per PID), after confirmation. */
    async cleanup(orphans: readonly Orphan[]) {
      // Foreign ones are not ours to mass-kill: they stay listed, each with its own Kill button.
      const targets = orphans.filter((o) => o.verdict !== "foreign");
      if (targets.length === 0) return ctx.announce("No orphans of ours to clean up");
      const skipped = orphans.length - targets.length;
      const list = h(
        "ul",
        { class: "targets" },
        ...targets.map((o) =>
          h("li", {}, h("strong", {}, `PID ${o.pid}`), ` ${o.model_path ?? formatCommand(o.command_line)}`),
        ),
      );
      const note =
        skipped > 0
          ? h("p", {}, `${skipped} foreign process${skipped === 1 ? " is" : "es are"} left alone.`)
          : undefined;
      const body = [h("p", {}, "Exactly these processes will be killed:"), list, note];
      if (!(await confirmDialog(`Kill ${plural(targets.length, "orphan")}?`, body, "Kill all listed"))) return;
      await attempt(`Cleaning up ${plural(targets.length, "orphan")}`, async () => {
        // Core applies the kill rule and says per PID what happened; the page only shows it.
        const view = await api.post<CleanupView>("/api/v1/orphans/cleanup", { pids: targets.map((o) => o.pid) });
        if (!view.ok) throw new Error(view.message);
        return view.message;
      });
    },
  };
}
