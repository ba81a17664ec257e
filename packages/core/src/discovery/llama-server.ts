import { accessSync, constants, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join, resolve } from "node:path";

/**
 * Where llama-server may be: `$CORRAL_LLAMA_SERVER`, PATH, the usual build folders, and the cache
 * `bun run llama:build` fills (`${XDG_CACHE_HOME:-~/.cache}/corral/llama.cpp-<version>/bin`,
 * the same folder scripts/llama-paths.ts computes; core does not import scripts/).
 */

/** Options of {@link findLlamaServer}. */
export interface FindLlamaServerOptions {
  /** @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** @default os.homedir() */
  readonly userHome?: string;
}

/** What {@link findLlamaServer} found, and every place it looked. */
export interface LlamaServerSearch {
  /** the first executable llama-server, if any */
  readonly path?: string;
  /** every path checked, in order */
  readonly looked: readonly string[];
}

const EXE = process.platform === "win32" ? "llama-server.exe" : "llama-server";

/** One line saying how to get a llama-server, for messages. */
export const LLAMA_SERVER_HINT =
  "install llama.cpp (its llama-server), set llama_server to its full path, or run `bun run llama:build` in corral's repository (a CPU build for trying corral out)";

/**
 * A regular file this process may execute (on Windows: one that exists).
 * @example
 * isExecutableFile("/usr/bin/env") // true
 */
export function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    if (process.platform !== "win32") accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The llama.cpp folders `bun run llama:build` made, newest version first.
 * @example
 * llamaBuildCaches({ userHome: "/root" }) // ["/root/.cache/corral/llama.cpp-3.21.1"]
 */
export function llamaBuildCaches(options: FindLlamaServerOptions = {}): string[] {
  const env = options.env ?? process.env;
  const cache = resolve(env.XDG_CACHE_HOME || join(options.userHome ?? homedir(), ".cache"), "corral");
  try {
    return readdirSync(cache)
      .filter((n) => n.startsWith("llama.cpp-"))
      .sort((a, b) => b.localeCompare(a, undefined, { numeric: true }))
      .map((n) => join(cache, n));
  } catch {
    return [];
  }
}

/**
 * The paths checked for llama-server, in order: `$CORRAL_LLAMA_SERVER`, each PATH folder,
 * `~/llama.cpp/build/bin`, `/usr/local/bin`, the `llama:build` caches.
 * @example
 * llamaServerCandidates({ env: { PATH: "/usr/bin" }, userHome: "/h" })[0] // "/usr/bin/llama-server"
 */
export function llamaServerCandidates(options: FindLlamaServerOptions = {}): string[] {
  const env = options.env ?? process.env;
  const home = options.userHome ?? homedir();
  const paths = [
    ...(env.CORRAL_LLAMA_SERVER ? [resolve(env.CORRAL_LLAMA_SERVER)] : []),
    ...(env.PATH ?? "")
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, EXE)),
    join(home, "llama.cpp", "build", "bin", EXE),
    join("/usr/local/bin", EXE),
    ...llamaBuildCaches(options).map((dir) => join(dir, "bin", EXE)),
  ];
  return [...new Set(paths)];
}

/**
 * Finds llama-server: the first executable of {@link llamaServerCandidates}.
 * @example
 * const { path, looked } = findLlamaServer()
 * if (!path) console.log(`no llama-server in ${looked.join(", ")}`)
 */
export function findLlamaServer(options: FindLlamaServerOptions = {}): LlamaServerSearch {
  const looked = llamaServerCandidates(options);
  const path = looked.find(isExecutableFile);
  return path === undefined ? { looked } : { path, looked };
}
