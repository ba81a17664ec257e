import { isServerProcess, mayBeServerComm, startTimeMatches } from "./identity.ts";
import { defaultProbe } from "./probe.ts";
import { DEFAULT_SERVER_NAMES, MARKER_ENV, type ProcessInfo, type ProcessProbe } from "./types.ts";
import type { Orphan, OrphanVerdict } from "./views.ts";

export type { Orphan, OrphanVerdict };

/** Options of {@link findOrphans}. */
export interface FindOrphansOptions {
  /** this corral home's id, compared with each process's `CORRAL_HOME_ID` */
  readonly homeId: string;
  /** PIDs the registry tracks: neither they nor their descendants are orphans */
  readonly tracked: ReadonlySet<number>;
  /**
   * The recorded start times (`proc_start_ms`) of tracked PIDs. A tracked PID whose process
   * started then is passed over at its stat line; one whose process started at another time
   * is a reused PID, so it does not count as tracked.
   * @default none: every tracked PID counts as tracked
   */
  readonly trackedStarts?: ReadonlyMap<number, number>;
  /**
   * Executable names that count as llama-server.
   * @default DEFAULT_SERVER_NAMES
   */
  readonly names?: readonly string[];
  /**
   * Reads the process table and environments.
   * @default defaultProbe()
   */
  readonly probe?: ProcessProbe;
  /**
   * A scan already made, to reuse instead of scanning again (environments still come from `probe`).
   * @default a fresh probe.list()
   */
  readonly processes?: readonly ProcessInfo[];
  /**
   * Our user id, for telling "likely ours" from another user's server.
   * @default process.getuid?.()
   */
  readonly uid?: number;
}

/**
 * Finds llama-servers that no registry entry tracks, and says whose each one is. Zombies,
 * tracked PIDs and their descendants are left out.
 * @default names = DEFAULT_SERVER_NAMES, probe = defaultProbe(), uid = process.getuid?.()
 * @example
 * const orphans = await findOrphans({ homeId: "h-1", tracked: new Set(entries.map((e) => e.pid)) });
 * for (const o of orphans) console.log(o.pid, o.verdict, o.model_path, o.reasons.join("; "));
 */
export async function findOrphans(options: FindOrphansOptions): Promise<Orphan[]> {
  const probe = options.probe ?? defaultProbe();
  const names = options.names ?? DEFAULT_SERVER_NAMES;
  const uid = options.uid ?? process.getuid?.();
  const starts = options.trackedStarts;
  const reused = new Set<number>();
  /** Whether a process is the tracked one: its start time decides, where one was recorded. */
  const isTracked = (p: ProcessInfo): boolean => {
    if (!options.tracked.has(p.pid)) return false;
    const recorded = starts?.get(p.pid);
    if (recorded === undefined || startTimeMatches(recorded, p)) return true;
    reused.add(p.pid);
    return false;
  };
  // Every process costs one stat line. Only untracked ones whose command name could be a
  // llama-server's get their executable read, and only llama-servers their command line and
  // owner. (A llama-server exec'd through a link of another name shows that name and is not
  // found, as `ps -C llama-server` would not find it.)
  const processes =
    options.processes ??
    (await probe.list({
      inspect: (brief) => brief.state !== "Z" && !isTracked(brief) && mayBeServerComm(brief.name, names),
      detail: (light) => isServerProcess(light, names),
    }));
  if (options.processes) for (const p of processes) isTracked(p);
  const tracked = reused.size === 0 ? options.tracked : new Set([...options.tracked].filter((p) => !reused.has(p)));
  let byPid: Map<number, ProcessInfo> | undefined;
  const orphans: Orphan[] = [];
  for (const info of processes) {
    if (info.state === "Z" || !isServerProcess(info, names) || tracked.has(info.pid)) continue;
    // The table is built only for a server that is not tracked itself (its parent might be).
    byPid ??= new Map(processes.map((p) => [p.pid, p]));
    if (underTracked(info, byPid, tracked)) continue;
    orphans.push(describeOrphan(info, await probe.environ(info.pid), options.homeId, uid));
  }
  return orphans.sort((a, b) => a.pid - b.pid);
}

/** Whether the process or one of its ancestors is tracked. */
function underTracked(
  info: ProcessInfo,
  byPid: ReadonlyMap<number, ProcessInfo>,
  tracked: ReadonlySet<number>,
): boolean {
  if (tracked.has(info.pid)) return true;
  const seen = new Set<number>();
  for (let at: ProcessInfo | undefined = info; at && !seen.has(at.pid); at = byPid.get(at.ppid)) {
    if (tracked.has(at.pid)) return true;
    seen.add(at.pid);
  }
  return false;
}

/**
 * The evidence and verdict for one untracked llama-server: the judgement {@link findOrphans}
 * makes for each process it reports, for callers that look at one PID.
 * @example
 * describeOrphan(info, await probe.environ(info.pid), registry.homeId, process.getuid?.()).verdict // "ours"
 */
export function describeOrphan(
  info: ProcessInfo,
  env: Record<string, string> | undefined,
  homeId: string,
  uid: number | undefined,
): Orphan {
  const homeMark = env?.[MARKER_ENV.home];
  const instanceMark = env?.[MARKER_ENV.instance];
  const marker =
    homeMark === undefined && instanceMark === undefined
      ? undefined
      : {
          ...(homeMark !== undefined && { home_id: homeMark }),
          ...(instanceMark !== undefined && { instance_id: instanceMark }),
        };
  const { verdict, reasons } = judgeOrphan(info, env, homeMark, homeId, uid);
  const args = parseServerArgs(info.cmdline);
  return {
    pid: info.pid,
    ppid: info.ppid,
    uid: info.uid,
    user: info.user,
    executable: info.exe,
    command_line: [...info.cmdline],
    model_path: args.model_path,
    port: args.port,
    host: args.host,
    started_at: info.startTimeMs === undefined ? undefined : new Date(info.startTimeMs).toISOString(),
    marker,
    marker_readable: env !== undefined,
    verdict,
    reasons: ["no registry entry tracks it", ...reasons],
  };
}

function judgeOrphan(
  info: ProcessInfo,
  env: Record<string, string> | undefined,
  homeMark: string | undefined,
  homeId: string,
  uid: number | undefined,
): { verdict: OrphanVerdict; reasons: string[] } {
  const owner = info.user ? `${info.user} (uid ${info.uid})` : `uid ${info.uid}`;
  const otherUser = info.uid !== undefined && uid !== undefined && info.uid !== uid;
  if (homeMark === homeId && otherUser) {
    // Anyone can copy an environment variable; corral only ever starts servers as its own user.
    return { verdict: "foreign", reasons: [`it carries this home's marker, but runs as another user, ${owner}`] };
  }
  if (homeMark === homeId)
    return { verdict: "ours", reasons: [`its environment carries this home's marker (${MARKER_ENV.home}=${homeId})`] };
  if (homeMark !== undefined) {
    return { verdict: "foreign", reasons: [`another corral home started it (${MARKER_ENV.home}=${homeMark})`] };
  }
  const noMarker = env === undefined ? "its environment could not be read" : "it carries no corral marker";
  if (info.uid !== undefined && uid !== undefined) {
    return info.uid === uid
      ? {
          verdict: "likely-ours",
          reasons: [noMarker, `it runs as our user, ${owner}: started by hand or by the original controller`],
        }
      : { verdict: "foreign", reasons: [noMarker, `it runs as another user, ${owner}`] };
  }
  if (info.uid === undefined && uid === undefined) {
    return { verdict: "likely-ours", reasons: [noMarker, "this OS does not tell process owners"] };
  }
  return { verdict: "foreign", reasons: [noMarker, "its owner could not be read"] };
}

/** What a llama-server command line says about the server. */
export interface ServerArgs {
  model_path?: string;
  port?: number;
  host?: string;
  gpu_layers?: number;
  alias?: string;
}

const VALUE_FLAGS: Readonly<Record<string, keyof ServerArgs>> = {
  "-m": "model_path",
  "--model": "model_path",
  "--port": "port",
  "--host": "host",
  "-ngl": "gpu_layers",
  "--gpu-layers": "gpu_layers",
  "--n-gpu-layers": "gpu_layers",
  "-a": "alias",
  "--alias": "alias",
};

/**
 * Reads model, port, host, GPU layers and alias from a llama-server command line, in the
 * forms llama.cpp accepts: `--model x`, `--model=x`, `-m x` and `-mx`. The glued `-mx`
 * form is taken only when x looks like a path, since `-mg`, `-mu`, `-md` are other flags.
 * The first argument (the executable) is skipped; a later flag wins, as in llama.cpp.
 * @example
 * parseServerArgs(["llama-server", "-m", "/m/q.gguf", "--port=8081", "-ngl", "99"])
 * // { model_path: "/m/q.gguf", port: 8081, gpu_layers: 99 }
 */
export function parseServerArgs(cmdline: readonly string[]): ServerArgs {
  const out: ServerArgs = {};
  for (let i = 1; i < cmdline.length; i++) {
    const arg = cmdline[i] ?? "";
    const eq = arg.indexOf("=");
    const flag = eq > 0 && arg.startsWith("--") ? arg.slice(0, eq) : arg;
    let key = VALUE_FLAGS[flag];
    let value: string | undefined;
    if (key) {
      value = flag === arg ? cmdline[++i] : arg.slice(eq + 1);
    } else if (/^-m[^-]/.test(arg) && /[/\\]|\.gguf$/i.test(arg.slice(2))) {
      key = "model_path";
      value = arg.slice(2);
    }
    if (key && value !== undefined) setArg(out, key, value);
  }
  return out;
}

function setArg(out: ServerArgs, key: keyof ServerArgs, value: string): void {
  if (key === "port" || key === "gpu_layers") {
    const n = Number(value);
    const ok = key === "port" ? Number.isInteger(n) && n >= 1 && n <= 65535 : Number.isInteger(n) && n >= 0;
    if (ok && value.trim() !== "") out[key] = n;
    return;
  }
  out[key] = value;
}
