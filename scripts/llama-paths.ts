import { accessSync, constants, statSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";

/**
 * The npm package whose tarball carries llama.cpp's source as a git bundle
 * (`package/llama/gitRelease.bundle`). Pinning the package pins the llama.cpp commit,
 * so its version names the cache folder.
 */
export const LLAMA_SOURCE_PACKAGE = "node-llama-cpp";
/** @see LLAMA_SOURCE_PACKAGE */
export const LLAMA_SOURCE_VERSION = "3.21.1";
/** The random-weight model `test-llama-archs -a llama` writes: `<arch>-dense.gguf`. */
export const LLAMA_MODEL_FILE = "llama-dense.gguf";
/** The model that answers (real tokenizer, random weights) that scripts/gguf-writer.ts writes beside it. */
export const LLAMA_CHAT_MODEL_FILE = "tiny-chat.gguf";

/** Where `bun run llama:build` puts (or has put) its llama-server and model. */
export interface LlamaBuildPaths {
  /** `${XDG_CACHE_HOME:-~/.cache}/corral/llama.cpp-<LLAMA_SOURCE_VERSION>` */
  readonly cacheDir: string;
  /** `CORRAL_LLAMA_SERVER`, else `<cacheDir>/bin/llama-server` */
  readonly server: string;
  /** `CORRAL_LLAMA_MODEL`, else `<cacheDir>/models/llama-dense.gguf` */
  readonly model: string;
  /** `<cacheDir>/models/tiny-chat.gguf`: a llama with llama.cpp's SPM tokenizer, so completions work */
  readonly chatModel: string;
  /** the chat model is a file (`ready` does not depend on it) */
  readonly chatReady: boolean;
  /** the server is an executable file and the model a file */
  readonly ready: boolean;
  /** one line naming what is missing and `bun run llama:build`; empty when ready */
  readonly reason: string;
}

/** Options of {@link llamaBuildPaths}. */
export interface LlamaBuildPathsOptions {
  /**
   * Environment to read `XDG_CACHE_HOME`, `CORRAL_LLAMA_SERVER` and `CORRAL_LLAMA_MODEL` from.
   * @default process.env
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Home folder behind the default cache.
   * @default os.homedir()
   */
  readonly home?: string;
}

/**
 * The cache folder of the pinned llama.cpp build.
 * @default `${XDG_CACHE_HOME:-~/.cache}/corral/llama.cpp-3.21.1`
 * @example
 * llamaCacheDir({ env: { XDG_CACHE_HOME: "/c" } }) // "/c/corral/llama.cpp-3.21.1"
 */
export function llamaCacheDir(options: LlamaBuildPathsOptions = {}): string {
  const { env = process.env, home = homedir() } = options;
  const cacheHome = env.XDG_CACHE_HOME || join(home, ".cache");
  return resolve(cacheHome, "corral", `llama.cpp-${LLAMA_SOURCE_VERSION}`);
}

/**
 * Finds the llama-server binary and tiny model that tests run against. Environment
 * overrides win, so a machine with its own llama.cpp build needs no cache at all.
 * Only looks at the files; it never builds or runs anything.
 * @default options.env = process.env, options.home = os.homedir()
 * @example
 * const llama = llamaBuildPaths();
 * if (!llama.ready) console.log(`skipped: ${llama.reason}`);
 * // skipped: no executable llama-server at /root/.cache/corral/llama.cpp-3.21.1/bin/llama-server: run `bun run llama:build`
 */
export function llamaBuildPaths(options: LlamaBuildPathsOptions = {}): LlamaBuildPaths {
  const env = options.env ?? process.env;
  const cacheDir = llamaCacheDir(options);
  const server = env.CORRAL_LLAMA_SERVER ? resolve(env.CORRAL_LLAMA_SERVER) : join(cacheDir, "bin", "llama-server");
  const model = env.CORRAL_LLAMA_MODEL ? resolve(env.CORRAL_LLAMA_MODEL) : join(cacheDir, "models", LLAMA_MODEL_FILE);
  const missing = [
    isExecutableFile(server) ? undefined : `no executable llama-server at ${server}`,
    isFile(model) ? undefined : `no model at ${model}`,
  ].filter((line) => line !== undefined);
  const reason = missing.length === 0 ? "" : `${missing.join("; ")}: run \`bun run llama:build\``;
  const chatModel = join(cacheDir, "models", LLAMA_CHAT_MODEL_FILE);
  return { cacheDir, server, model, chatModel, chatReady: isFile(chatModel), ready: missing.length === 0, reason };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isExecutableFile(path: string): boolean {
  if (!isFile(path)) return false;
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
