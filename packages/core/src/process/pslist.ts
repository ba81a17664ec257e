import type { ProcessDescriptor } from "ps-list";
import { userNames } from "./procfs.ts";
import type { ProcessInfo, ProcessProbe } from "./types.ts";

/** Options of {@link psListProbe}. */
export interface PsListProbeOptions {
  /**
   * The process lister. Tests pass a function returning fixed descriptors.
   * @default psList from the `ps-list` package
   */
  readonly list?: () => Promise<readonly ProcessDescriptor[]>;
  /**
   * The platform, which decides whether user names are looked up in /etc/passwd.
   * @default process.platform
   */
  readonly platform?: NodeJS.Platform;
}

/**
 * Reads the process table through the `ps-list` package: `ps` on macOS and Linux, a
 * bundled lister on Windows. The fallback where `/proc` is missing. Start times have
 * whole-second precision, the command line is `ps`'s space-joined text split on spaces
 * (an argument holding a space comes back in pieces), and `environ` is never available.
 * `get` costs a whole scan.
 * @default list = psList, platform = process.platform
 * @example
 * const probe = psListProbe();
 * const servers = (await probe.list()).filter((p) => p.name === "llama-server");
 */
export function psListProbe(options: PsListProbeOptions = {}): ProcessProbe {
  // Imported when first needed (about 12 ms of every start otherwise): /proc machines never load it.
  const list = options.list ?? (async () => (await import("ps-list")).default());
  const platform = options.platform ?? process.platform;
  const scan = async (): Promise<ProcessInfo[]> => {
    const users = platform === "win32" ? new Map<number, string>() : userNames();
    return (await list()).map((d) => fromDescriptor(d, users));
  };
  return {
    list: scan,
    async get(pid) {
      if (!Number.isInteger(pid) || pid <= 0) return undefined;
      return (await scan()).find((p) => p.pid === pid);
    },
    async environ() {
      return undefined;
    },
  };
}

/** `ps` shows a zombie's arguments as `[name] <defunct>` (Linux) or `<defunct>` (macOS). */
const DEFUNCT = /<defunct>$/;

/**
 * Converts one `ps-list` descriptor to a {@link ProcessInfo}.
 * @example
 * fromDescriptor({ pid: 7, ppid: 1, name: "sleep", cmd: "sleep 9" }, new Map()).cmdline // ["sleep", "9"]
 */
export function fromDescriptor(d: ProcessDescriptor, users: ReadonlyMap<number, string>): ProcessInfo {
  const cmd = d.cmd ?? "";
  const zombie = DEFUNCT.test(cmd);
  return {
    pid: d.pid,
    ppid: d.ppid,
    name: d.name,
    exe: d.path || undefined,
    cmdline: zombie ? [] : cmd.split(" ").filter((s) => s !== ""),
    startTimeMs: d.startTime?.getTime(),
    startTimePrecisionMs: 1000,
    uid: d.uid,
    user: d.uid === undefined ? undefined : users.get(d.uid),
    state: zombie ? "Z" : undefined,
    accessDenied: false,
  };
}
