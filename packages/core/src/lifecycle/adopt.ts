import { readlinkSync, statSync } from "node:fs";
import { basename, isAbsolute } from "node:path";
import { ForeignProcessError, InvalidInputError } from "../errors.ts";
import { identityOf } from "../process/identity.ts";
import { type Orphan, parseServerArgs } from "../process/orphans.ts";
import { MARKER_ENV } from "../process/types.ts";
import { checkHealth, notProbed, probeHost, statusOfHealth } from "../server/health.ts";
import { apiKeyOf } from "../setup/llamacontroller-import.ts";
import { slotKey } from "../slots.ts";
import type { ProcessEntry } from "../store/schema.ts";
import type { LifecycleContext } from "./context.ts";

/** Options of {@link adoptOrphan}. */
export interface AdoptOptions {
  /** slot to track it in @default its CUDA_VISIBLE_DEVICES (or corral's own slot marker) */
  readonly slot?: string;
  /** @default the configured model with the same path, else the file name without `.gguf` */
  readonly modelId?: string;
  /** @default "adopted" */
  readonly reason?: string;
  /** adopt a foreign server (another user's, or another corral home's) @default false */
  readonly includeForeign?: boolean;
}

/**
 * Takes a running llama-server that the registry does not track into the registry: model path
 * and port from its command line, GPU from its environment where readable, start time and
 * executable for identity. The kill rule applies: it must be an orphan as `findOrphans` judges it
 * (not tracked, not under a tracked server), and a foreign one is refused unless `includeForeign`
 * (once adopted, an unload would kill it).
 * @throws ForeignProcessError, NotOrphanError, NotOurProcessError, ProcessNotFoundError
 * @example
 * const entry = await adoptOrphan(controller, 4242, { slot: "1" })
 */
export async function adoptOrphan(
  ctx: LifecycleContext,
  pid: number,
  options: AdoptOptions = {},
): Promise<ProcessEntry> {
  const orphan = await ctx.registry.orphan(pid);
  if (orphan.verdict === "foreign" && !options.includeForeign) throw new ForeignProcessError(pid, orphan.reasons);
  return adoptJudged(ctx, orphan, options);
}

/** Adopts an orphan already judged (recover has just scanned for them). */
export async function adoptJudged(
  ctx: LifecycleContext,
  orphan: Orphan,
  options: AdoptOptions = {},
): Promise<ProcessEntry> {
  const { registry, config } = ctx;
  const { pid } = orphan;
  const info = await registry.probe.get(pid);
  if (!info || info.state === "Z") throw new InvalidInputError("pid", `pid ${pid} exited before it could be adopted`);
  const env = (await registry.probe.environ(pid)) ?? {};
  const args = parseServerArgs(info.cmdline);
  const gpu = options.slot ?? env.CORRAL_SLOT ?? env.CUDA_VISIBLE_DEVICES ?? env.HIP_VISIBLE_DEVICES;
  if (gpu === undefined || gpu === "") {
    throw new InvalidInputError("slot", `cannot tell which GPU pid ${pid} uses; say which slot to track it in`);
  }
  const slot = slotKey(gpu);
  const modelPath = args.model_path ?? "";
  const configured = config.models.find((m) => m.path === modelPath);
  const modelId = options.modelId ?? configured?.id ?? (basename(modelPath).replace(/\.gguf$/i, "") || "unknown");
  const port = args.port ?? 8080;
  const host = args.host && args.host !== "0.0.0.0" ? args.host : config.host;
  const target = probeHost(host, config.host);
  const health = target
    ? await checkHealth({ host: target, port, timeoutMs: config.timeouts.health_ms })
    : notProbed(host);
  const status = statusOfHealth(health);
  // A server started with a key answers only with it (corral's own: LLAMA_API_KEY; by hand: --api-key).
  const { key: cmdlineKey, cmdline } = apiKeyOf(info.cmdline);
  const apiKey = env.LLAMA_API_KEY || cmdlineKey;
  return registry.register(
    slot,
    {
      pid,
      model_id: modelId,
      model_name: configured?.name ?? modelId,
      model_path: modelPath,
      gpu_id: slot,
      port,
      started_at: new Date(info.startTimeMs ?? ctx.now()).toISOString(),
      command_line: cmdline,
      ...(apiKey ? { api_key: apiKey } : {}),
      status,
      ...identityOf(info),
      host,
      adopted: true,
      restarts: 0,
      ...(env[MARKER_ENV.instance] ? { instance_id: env[MARKER_ENV.instance] } : {}),
      ...logFileOf(pid),
    },
    { reason: options.reason ?? "adopted" },
  );
}

/**
 * Where an adopted server writes its output, when that is a regular file (Linux: its stdout,
 * else its stderr, through /proc), so its log can be tailed like a log corral opened itself.
 */
function logFileOf(pid: number): { log_file?: string } {
  if (process.platform !== "linux") return {};
  for (const fd of [1, 2]) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (isAbsolute(target) && !target.endsWith(" (deleted)") && statSync(target).isFile())
        return { log_file: target };
    } catch {
      // Not readable, or not a file: no log to offer.
    }
  }
  return {};
}
