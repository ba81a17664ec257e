import { readlinkSync, statSync } from "node:fs";
import { basename, isAbsolute } from "node:path";
import { InvalidInputError, NotOurProcessError, ProcessNotFoundError } from "../errors.ts";
import { checkHealth } from "../server/health.ts";
import { identityOf, isServerProcess } from "../process/identity.ts";
import type { Controller } from "./controller.ts";
import { parseServerArgs } from "../process/orphans.ts";
import { MARKER_ENV } from "../process/types.ts";
import type { ProcessEntry } from "../store/schema.ts";
import { slotKey } from "../slots.ts";

/** Options of {@link adoptOrphan}. */
export interface AdoptOptions {
  /** slot to track it in @default its CUDA_VISIBLE_DEVICES (or corral's own slot marker) */
  readonly slot?: string;
  /** @default the configured model with the same path, else the file name without `.gguf` */
  readonly modelId?: string;
  /** @default "adopted" */
  readonly reason?: string;
}

/**
 * Takes a running llama-server that the registry does not track into the registry: model path
 * and port from its command line, GPU from its environment where readable, start time and
 * executable for identity. From then on it is tracked like any other.
 * @example
 * const entry = await adoptOrphan(controller, 4242, { slot: "1" })
 */
export async function adoptOrphan(
  controller: Controller,
  pid: number,
  options: AdoptOptions = {},
): Promise<ProcessEntry> {
  const { registry, config } = controller;
  const info = await registry.probe.get(pid);
  if (!info || info.state === "Z") throw new ProcessNotFoundError(pid);
  if (!isServerProcess(info, registry.names)) {
    throw new NotOurProcessError(pid, `it is ${info.exe ?? info.name}, not a llama-server`);
  }
  if ((await registry.list()).some(({ entry }) => entry.pid === pid)) {
    throw new InvalidInputError("pid", `pid ${pid} is already tracked`);
  }
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
  const health = await checkHealth({ host, port, timeoutMs: config.timeouts.health_ms });
  const status = health.state === "ok" ? "running" : health.state === "loading" ? "loading" : "unhealthy";
  return registry.register(
    slot,
    {
      pid,
      model_id: modelId,
      model_name: configured?.name ?? modelId,
      model_path: modelPath,
      gpu_id: slot,
      port,
      started_at: new Date(info.startTimeMs ?? controller.now()).toISOString(),
      command_line: [...info.cmdline],
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
