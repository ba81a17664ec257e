/**
 * What the OS tells about one process. Fields the OS would not tell (another user's
 * executable, say) are undefined and `accessDenied` is set.
 */
export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  /** short name: basename of the executable, else the kernel's comm */
  readonly name: string;
  /** absolute executable path, " (deleted)" stripped */
  readonly exe: string | undefined;
  readonly cmdline: readonly string[];
  /** start time, epoch ms; whole seconds where the OS only gives seconds */
  readonly startTimeMs: number | undefined;
  /** how precise `startTimeMs` is, in ms (10 on Linux /proc, 1000 from ps) */
  readonly startTimePrecisionMs: number;
  readonly uid: number | undefined;
  readonly user: string | undefined;
  /** Linux state letter (R, S, D, Z, T …) where known */
  readonly state: string | undefined;
  /** something was unreadable for lack of permission */
  readonly accessDenied: boolean;
}

/** Options of {@link ProcessProbe.list}. */
export interface ListOptions {
  /**
   * Which processes need more than what the kernel's stat line tells: asked with a brief read
   * (pid, ppid, state, start time, and `name` = the kernel's command name, its executable's
   * basename cut to 15 characters; `exe` undefined). Those it says no to come back just so, which
   * keeps a scan for a few processes near one stat read per process.
   * @default all
   */
  readonly inspect?: (brief: ProcessInfo) => boolean;
  /** which processes need their command line and user; asked with what a light read gives (pid, ppid, name, exe, state, start time) @default all */
  readonly detail?: (light: ProcessInfo) => boolean;
}

/**
 * What a caller already knows of a process it recorded: {@link ProcessProbe.identities} takes a PID
 * whose start time and command name still say so for that process, without reading more.
 */
export interface KnownIdentity {
  /** the start time recorded from this probe (`proc_start_ms`) */
  readonly startTimeMs: number;
  /** the executable recorded for it */
  readonly exe: string;
  readonly uid?: number;
}

/**
 * Reads the process table. The default is `/proc` on Linux and `ps-list` elsewhere.
 * Tests pass plain objects.
 */
export interface ProcessProbe {
  /**
   * One scan of the whole process table. With `detail`, a probe may skip the command line and
   * user of processes for which `detail` says no (they come with `cmdline: []`): a scan for
   * llama-servers then reads little more than each process's stat and executable.
   */
  list(options?: ListOptions): Promise<ProcessInfo[]>;
  /** One process, or undefined when no process has that PID (a zombie is returned with state "Z"). */
  get(pid: number): Promise<ProcessInfo | undefined>;
  /**
   * Just what identity needs (state, start time, executable, uid; no command line) for a few
   * PIDs, without scanning the whole table. Optional: callers fall back to {@link list}.
   * With `known`, a PID whose start time is exactly the recorded one (the same clock tick of the
   * same boot) and whose command name is the recorded executable's is that process: its
   * executable and uid come from `known` instead of being read. A reused PID has another start
   * time, so it is read in full and judged as before.
   */
  identities?(pids: readonly number[], known?: ReadonlyMap<number, KnownIdentity>): Promise<Map<number, ProcessInfo>>;
  /** The environment of a process where the OS lets us read it, else undefined. */
  environ(pid: number): Promise<Record<string, string> | undefined>;
}

/** The environment variables corral sets on every process it starts. */
export const MARKER_ENV = {
  /** identifies the corral home that started the process */
  home: "CORRAL_HOME_ID",
  /** unique id of this one spawn, recorded as the entry's `instance_id` */
  instance: "CORRAL_INSTANCE_ID",
} as const;

/** Executable names that count as llama-server. */
export const DEFAULT_SERVER_NAMES: readonly string[] = ["llama-server", "llama-server.exe"];
