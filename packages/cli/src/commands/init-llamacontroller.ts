import type { Migration } from "@corral/core";
import type { Outcome } from "../context.ts";
import { style } from "../render.ts";

/**
 * What `corral init --from-llamacontroller` prints: the file written, the models, what was not
 * carried over and why, each user's token (its secret shown this once), and what became of each
 * server the original was running.
 * @example
 * return migrationOutcome(await migrateFromLlamacontroller({ dir, home, registry }))
 */
export function migrationOutcome(m: Migration): Outcome {
  const imported = m.servers.filter((s) => s.outcome === "imported");
  const lines = [
    `wrote ${m.file}${m.backup ? ` (the old one is kept as ${m.backup})` : ""}`,
    ...(m.missing.length ? [style.dim(`not in the folder: ${m.missing.join(", ")}`)] : []),
    ...m.translation.models.map((x) => `  ${style.bold(x.id)}  gpu ${x.gpu}  ${x.args.join(" ")}`),
    ...(m.translation.notCarried.length ? ["", "not carried over:"] : []),
    ...m.translation.notCarried.map((n) => `  ${n.key}: ${n.why}`),
    ...(m.tokens.length ? ["", "tokens for the original's users (shown once; pass as Authorization: Bearer …):"] : []),
    ...m.tokens.map((t) =>
      t.secret
        ? `  ${style.bold(t.name)} (${t.role} → ${t.scope})  ${t.secret}`
        : style.yellow(`  ${t.name} (${t.role} → ${t.scope}): not made: ${t.error}`),
    ),
    ...(m.servers.length ? ["", "servers the original was running:"] : []),
    ...m.servers.map((s) =>
      s.outcome === "imported"
        ? `  slot ${s.slot}  pid ${s.pid}  ${s.model_id}: now tracked by corral (not restarted)`
        : style.yellow(`  slot ${s.slot}  pid ${s.pid}  ${s.model_id}: ${s.outcome}, left alone: ${s.reason}`),
    ),
    "",
    "next: stop llamacontroller (its servers keep running), then corral serve",
  ];
  return {
    data: {
      file: m.file,
      ...(m.backup ? { backup: m.backup } : {}),
      missing: m.missing,
      models: m.translation.models,
      not_carried: m.translation.notCarried,
      tokens: m.tokens,
      servers: m.servers,
    },
    lines,
    summary: `${m.translation.models.length} models, ${imported.length} of ${m.servers.length} servers taken over`,
  };
}
