import { readdir, readFile, readlink } from "node:fs/promises";
import { basename } from "node:path";
import { InvalidInputError, PortInUseError } from "../errors.ts";

/**
 * Port checks. A bind test alone misses a server listening on another address of the same
 * port (say `::1` while we test `127.0.0.1`), which llama-server would then collide with or,
 * worse, a client would reach instead; so on Linux the kernel's socket tables are read too.
 */

const LISTEN = "0A";
const PROC_NET_TABLES = ["/proc/net/tcp", "/proc/net/tcp6"];

/**
 * No port in a range was free.
 * @example
 * if (e instanceof NoFreePortError) console.error(`all of ${e.range.join("-")} are taken`)
 */
export class NoFreePortError extends PortInUseError {
  readonly range: readonly [number, number];
  constructor(range: readonly [number, number], excluded: number) {
    super(range[0]);
    this.range = range;
    this.message =
      `no free port in ${range[0]}-${range[1]}` +
      (excluded ? ` (${excluded} reserved for other slots)` : "") +
      "; widen ports.range or unload a model";
  }
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidInputError("port", `${port} is not a port (1..65535)`);
  }
}

/** Socket inodes listening on `port` at any address, from the kernel's tables. */
async function listeningInodes(port: number): Promise<Set<string>> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const table of PROC_NET_TABLES) {
    let text: string;
    try {
      text = await readFile(table, "utf8");
    } catch {
      continue; // no IPv6 on this kernel
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      if (fields[3] !== LISTEN || !fields[1]?.endsWith(`:${hexPort}`)) continue;
      if (fields[9] && fields[9] !== "0") inodes.add(fields[9]);
    }
  }
  return inodes;
}

async function pidHolding(inodes: Set<string>): Promise<number | undefined> {
  const targets = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name));
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or another user's process we may not look into
    }
    for (const fd of fds) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      if (targets.has(link)) return Number(pid);
    }
  }
  return undefined;
}

/**
 * The process listening on a TCP port, at any address. Linux only (reads `/proc/net/tcp*`
 * and `/proc/<pid>/fd`); undefined elsewhere, when nothing listens, or when the holder is
 * a process we may not look into.
 * @example
 * await portHolder(8081) // { pid: 4242, name: "llama-server" }
 */
export async function portHolder(port: number): Promise<{ pid: number; name: string } | undefined> {
  checkPort(port);
  if (process.platform !== "linux") return undefined;
  const inodes = await listeningInodes(port);
  if (inodes.size === 0) return undefined;
  const pid = await pidHolding(inodes);
  if (pid === undefined) return undefined;
  return { pid, name: await processName(pid) };
}

/** Basename of the executable (comm is cut at 15 characters), else comm. */
async function processName(pid: number): Promise<string> {
  const exe = await readlink(`/proc/${pid}/exe`).catch(() => "");
  if (exe) return basename(exe.replace(/ \(deleted\)$/, ""));
  return (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim();
}

function canBind(port: number, host: string): boolean {
  try {
    const listener = Bun.listen({ hostname: host, port, socket: { data() {} } });
    listener.stop(true);
    return true;
  } catch {
    // EADDRINUSE, or EACCES for a privileged port: either way llama-server could not use it.
    return false;
  }
}

/**
 * Whether a port can be used: a real bind on `host` succeeds and closes, and (on Linux)
 * nothing listens on that port at any other address either.
 * @default host = "127.0.0.1"
 * @example
 * if (await isPortFree(8081)) spawnServer(8081)
 */
export async function isPortFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  checkPort(port);
  if (!canBind(port, host)) return false;
  if (process.platform !== "linux") return true;
  return (await listeningInodes(port)).size === 0;
}

/**
 * Throws unless the port is free, naming the holder where the OS tells.
 * @default host = "127.0.0.1"
 * @throws PortInUseError with `pid` and `holder`
 * @example
 * await assertPortFree(8081)
 */
export async function assertPortFree(port: number, host = "127.0.0.1"): Promise<void> {
  if (await isPortFree(port, host)) return;
  const holder = await portHolder(port);
  throw new PortInUseError(port, holder?.pid, holder?.name);
}

/**
 * The lowest free port in an inclusive range, skipping `exclude` (ports promised to other slots).
 * @default host = "127.0.0.1"
 * @throws NoFreePortError (a PortInUseError) when every port is taken
 * @example
 * await pickFreePort([8081, 8099], { exclude: new Set([8081, 8088]) }) // 8082
 */
export async function pickFreePort(
  range: readonly [number, number],
  options: { readonly exclude?: ReadonlySet<number>; readonly host?: string } = {},
): Promise<number> {
  const [low, high] = range;
  checkPort(low);
  checkPort(high);
  if (low > high) throw new InvalidInputError("range", `${low}-${high} runs backwards`);
  const { exclude = new Set<number>(), host = "127.0.0.1" } = options;
  let excluded = 0;
  for (let port = low; port <= high; port++) {
    if (exclude.has(port)) {
      excluded++;
      continue;
    }
    if (await isPortFree(port, host)) return port;
  }
  throw new NoFreePortError(range, excluded);
}

/**
 * Waits until a port is free, polling with back-off (5 ms doubling up to 200 ms).
 * @default host = "127.0.0.1", timeoutMs = 5000
 * @returns false when it was still taken at the deadline
 * @example
 * if (!(await waitPortFree(8081, { timeoutMs: 2000 }))) console.warn("port 8081 still held")
 */
export async function waitPortFree(
  port: number,
  options: { readonly host?: string; readonly timeoutMs?: number } = {},
): Promise<boolean> {
  const { host = "127.0.0.1", timeoutMs = 5000 } = options;
  const deadline = performance.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
    if (await isPortFree(port, host)) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    await Bun.sleep(Math.min(delay, left));
  }
}
