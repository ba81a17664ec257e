import type { VerifiedEntry } from "@corral/core";
import type { Command, Outcome } from "../context.ts";
import { stateWord, style, table } from "../render.ts";

/**
 * `corral verify [slot]`: checks each tracked entry's PID, start time and executable against
 * the process table (running, exited, pid-reused, access-denied). Changes nothing.
 * @example
 * corral verify --json
 */
export const command: Command = {
  name: "verify",
  args: [{ name: "slot", description: "check only this slot [default: every slot]" }],
  options: {},
  json: true,
  examples: ["corral verify", "corral verify 0 --json"],
  async run(ctx, input) {
    const controller = await ctx.controller();
    const slot = input.args.slot;
    const verified = slot === undefined ? await controller.verifyAll() : [await controller.verify(slot)];
    return verifyOutcome(verified);
  },
};

function verifyOutcome(verified: readonly VerifiedEntry[]): Outcome {
  if (verified.length === 0) return { data: [], lines: ["no llama-server is tracked"], summary: "nothing to verify" };
  const lines = table(verified, [
    { header: "SLOT", cell: (v) => style.bold(v.slot) },
    { header: "MODEL", cell: (v) => v.entry.model_id },
    { header: "PID", cell: (v) => String(v.entry.pid), align: "right" },
    { header: "STATE", cell: (v) => stateWord(v.probe.state) },
    { header: "WHY", cell: (v) => v.probe.reason },
  ]);
  const bad = verified.filter((v) => v.probe.state !== "running").length;
  return {
    data: verified,
    lines,
    summary: bad === 0 ? "every entry checks out" : `${bad} of ${verified.length} entries do not check out`,
  };
}
