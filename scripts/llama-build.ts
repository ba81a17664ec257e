/**
 * `bun run llama:build`: builds the real llama.cpp `llama-server` (CPU only) and a tiny
 * random-weight model for corral's process-level tests, from nothing but the npm registry.
 *
 * The npm package node-llama-cpp ships llama.cpp's whole source as a git bundle, so
 * `npm pack` is the one download. Everything lives outside the repo, in
 * `${XDG_CACHE_HOME:-~/.cache}/corral/llama.cpp-<node-llama-cpp version>/`:
 *
 *   node-llama-cpp-<v>.tgz   the npm tarball
 *   package/llama/           what we use of it: gitRelease.bundle, llama.cpp.info.json
 *   src/                     git clone of the bundle
 *   build/                   CMake build tree (incremental: a killed build resumes here)
 *   bin/                     llama-server, test-llama-archs
 *   models/                  llama-dense.gguf (~5 MB, random weights, no tokenizer)
 *                            tiny-chat.gguf (~17 MB, random weights, llama.cpp's SPM tokenizer: it answers)
 *   build.json               what was built, from which commit, with which flags
 *
 * Every step checks its own output first and writes to a temporary name before renaming,
 * so running it again after a kill picks up where it stopped.
 *
 * Usage: bun scripts/llama-build.ts [--jobs N]   (default 2 parallel compile jobs)
 */

import type { ChildProcess } from "node:child_process";
import { spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { writeLlamaGguf } from "./gguf-writer.ts";
import {
  LLAMA_CHAT_MODEL_FILE,
  LLAMA_MODEL_FILE,
  LLAMA_SOURCE_PACKAGE,
  LLAMA_SOURCE_VERSION,
  llamaCacheDir,
} from "./llama-paths.ts";

/** A step failed; the message says what and how to fix it. */
class LlamaBuildError extends Error {
  override name = "LlamaBuildError";
}

const TARGETS = ["llama-server", "test-llama-archs"] as const;
/** Seed for the model's random weights, so every build writes the same file. */
const MODEL_SEED = "42";

/**
 * CPU-only, static, no network at build time. `LLAMA_USE_PREBUILT_UI=OFF` matters: by default
 * the web UI step tries to download assets from Hugging Face on every build. `LLAMA_CURL` no
 * longer exists in this llama.cpp (it only warns when ON); it is passed to say what we mean.
 */
const CMAKE_FLAGS = [
  "-DCMAKE_BUILD_TYPE=Release",
  "-DLLAMA_BUILD_TESTS=ON",
  "-DLLAMA_CURL=OFF",
  "-DLLAMA_OPENSSL=OFF",
  "-DBUILD_SHARED_LIBS=OFF",
  "-DGGML_NATIVE=OFF",
  "-DLLAMA_BUILD_UI=OFF",
  "-DLLAMA_USE_PREBUILT_UI=OFF",
  "-DLLAMA_BUILD_EXAMPLES=OFF",
  "-DGGML_CCACHE=OFF",
] as const;

const cache = llamaCacheDir();
const paths = {
  tarball: join(cache, `${LLAMA_SOURCE_PACKAGE}-${LLAMA_SOURCE_VERSION}.tgz`),
  packageDir: join(cache, "package"),
  bundle: join(cache, "package", "llama", "gitRelease.bundle"),
  info: join(cache, "package", "llama", "llama.cpp.info.json"),
  src: join(cache, "src"),
  build: join(cache, "build"),
  bin: join(cache, "bin"),
  server: join(cache, "bin", "llama-server"),
  archs: join(cache, "bin", "test-llama-archs"),
  models: join(cache, "models"),
  model: join(cache, "models", LLAMA_MODEL_FILE),
  chatModel: join(cache, "models", LLAMA_CHAT_MODEL_FILE),
  vocab: join(cache, "src", "models", "ggml-vocab-llama-spm.gguf"),
  manifest: join(cache, "build.json"),
  lock: join(cache, ".build.lock"),
};

let current: ChildProcess | undefined;

function log(line: string): void {
  console.log(`llama:build: ${line}`);
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)}s`;
}

/** Runs a command; `quiet` keeps its output and shows the tail only if it fails. */
async function run(cmd: readonly string[], opts: { cwd?: string; quiet?: boolean } = {}): Promise<string> {
  const [file, ...args] = cmd;
  if (file === undefined) throw new LlamaBuildError("empty command");
  // Its own process group, so a stop reaches what cmake starts (ninja, the compilers) too.
  const child = spawn(file, args, {
    cwd: opts.cwd,
    detached: true,
    stdio: opts.quiet ? ["ignore", "pipe", "pipe"] : ["ignore", "inherit", "inherit"],
  });
  current = child;
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | string>((done) => {
    child.on("error", (err) => done(err.message));
    child.on("close", (exit, signal) => done(exit ?? signal ?? "unknown"));
  });
  current = undefined;
  if (code === 0) return output;
  const tail = output.trim().split("\n").slice(-30).join("\n");
  throw new LlamaBuildError(`\`${cmd.join(" ")}\` failed (${code})${tail ? `:\n${tail}` : ""}`);
}

function requireTools(step: string, ...alternatives: readonly (readonly string[])[]): string[] {
  return alternatives.map((names) => {
    const found = names.find((name) => Bun.which(name) !== null);
    if (found === undefined) {
      throw new LlamaBuildError(`${step} needs ${names.join(" or ")} on PATH; install it and run again`);
    }
    return found;
  });
}

/** `<bin>/llama-server --version` output when it runs and exits 0, else undefined. */
function serverVersion(server: string): string | undefined {
  if (!existsSync(server)) return undefined;
  const result = spawnSync(server, ["--version"], { encoding: "utf8", timeout: 30_000 });
  if (result.status !== 0) return undefined;
  const text = `${result.stdout}${result.stderr}`;
  return (
    text
      .split("\n")
      .find((line) => line.startsWith("version:"))
      ?.trim() ??
    text.trim().split("\n")[0] ??
    ""
  );
}

function freshDir(dir: string): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function fetchTarball(): Promise<void> {
  if (existsSync(paths.tarball)) return log(`have ${paths.tarball}`);
  requireTools("fetching the source", ["npm"]);
  const spec = `${LLAMA_SOURCE_PACKAGE}@${LLAMA_SOURCE_VERSION}`;
  log(`npm pack ${spec} (~35 MB from the npm registry)`);
  // A killed npm pack leaves a partial file; only a finished one is renamed into place.
  const tmp = freshDir(join(cache, "download.tmp"));
  try {
    await run(["npm", "pack", spec, "--pack-destination", tmp], { quiet: true });
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw new LlamaBuildError(
      `could not fetch ${spec} from the npm registry (${npmRegistry()}); is it reachable?\n${(err as Error).message}`,
    );
  }
  renameSync(join(tmp, `${LLAMA_SOURCE_PACKAGE}-${LLAMA_SOURCE_VERSION}.tgz`), paths.tarball);
  rmSync(tmp, { recursive: true, force: true });
}

function npmRegistry(): string {
  const result = spawnSync("npm", ["config", "get", "registry"], { encoding: "utf8", timeout: 10_000 });
  return result.stdout?.trim() || "npm registry";
}

async function extractBundle(): Promise<void> {
  if (existsSync(paths.bundle)) return log(`have ${paths.bundle}`);
  requireTools("extracting the tarball", ["tar"]);
  log(`extracting package/llama from ${paths.tarball}`);
  const tmp = freshDir(join(cache, "extract.tmp"));
  await run(["tar", "-xzf", paths.tarball, "-C", tmp, "package/llama"], { quiet: true });
  if (!existsSync(join(tmp, "package", "llama", "gitRelease.bundle"))) {
    throw new LlamaBuildError(`${paths.tarball} has no package/llama/gitRelease.bundle; delete it and retry`);
  }
  rmSync(paths.packageDir, { recursive: true, force: true });
  renameSync(join(tmp, "package"), paths.packageDir);
  rmSync(tmp, { recursive: true, force: true });
}

async function cloneSource(): Promise<void> {
  if (existsSync(join(paths.src, ".git")) && gitHead() !== undefined) return log(`have ${paths.src} at ${gitHead()}`);
  requireTools("cloning the source", ["git"]);
  log(`git clone ${paths.bundle} -> ${paths.src}`);
  const tmp = join(cache, "src.tmp");
  rmSync(tmp, { recursive: true, force: true });
  await run(["git", "-c", "advice.detachedHead=false", "clone", "--quiet", paths.bundle, tmp], { quiet: true });
  rmSync(paths.src, { recursive: true, force: true });
  renameSync(tmp, paths.src);
}

function gitHead(): string | undefined {
  const result = spawnSync("git", ["-C", paths.src, "rev-parse", "HEAD"], { encoding: "utf8" });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** Configuring again is cheap (~2 s) and a no-op for an unchanged tree, so it always runs. */
async function configure(): Promise<void> {
  requireTools("building", ["cmake"], ["c++", "g++", "clang++"], ["cc", "gcc", "clang"]);
  const generator = cachedGenerator() ?? (Bun.which("ninja") ? "Ninja" : "Unix Makefiles");
  if (generator === "Unix Makefiles") requireTools("building", ["make"]);
  log(`cmake configure (${generator}) ${CMAKE_FLAGS.join(" ")}`);
  await run(["cmake", "-S", paths.src, "-B", paths.build, "-G", generator, ...CMAKE_FLAGS], { quiet: true });
}

/** Switching generators in an existing tree is an error, so keep the one it was made with. */
function cachedGenerator(): string | undefined {
  const file = join(paths.build, "CMakeCache.txt");
  if (!existsSync(file)) return undefined;
  return /^CMAKE_GENERATOR:INTERNAL=(.+)$/m.exec(readFileSync(file, "utf8"))?.[1];
}

async function compile(jobs: number): Promise<void> {
  log(`cmake --build --target ${TARGETS.join(" ")} -j ${jobs} (about 11 min on 2 cores from scratch)`);
  await run(["cmake", "--build", paths.build, "--target", ...TARGETS, "-j", String(jobs)]);
}

function installBinaries(): void {
  mkdirSync(paths.bin, { recursive: true });
  for (const target of TARGETS) {
    const from = join(paths.build, "bin", target);
    if (!existsSync(from)) throw new LlamaBuildError(`the build finished without ${from}`);
    const to = join(paths.bin, target);
    copyFileSync(from, `${to}.tmp`);
    renameSync(`${to}.tmp`, to);
  }
  log(`installed ${TARGETS.join(", ")} into ${paths.bin}`);
}

async function writeModel(): Promise<void> {
  if (existsSync(paths.model)) return log(`have ${paths.model}`);
  log(`test-llama-archs -a llama -s ${MODEL_SEED} -o <tmp> (random weights, no tokenizer)`);
  const tmp = freshDir(join(cache, "models.tmp"));
  await run([paths.archs, "-a", "llama", "-s", MODEL_SEED, "-o", tmp], { quiet: true });
  const written = readdirSync(tmp);
  if (!written.includes(LLAMA_MODEL_FILE)) {
    throw new LlamaBuildError(`test-llama-archs wrote [${written.join(", ")}], not ${LLAMA_MODEL_FILE}`);
  }
  mkdirSync(paths.models, { recursive: true });
  for (const file of written) renameSync(join(tmp, file), join(paths.models, file));
  rmSync(tmp, { recursive: true, force: true });
}

/** The model that answers: the SPM tokenizer of llama.cpp's own vocab file over random weights (fast: ~0.2 s). */
function writeChatModel(): void {
  if (existsSync(paths.chatModel)) {
    log(`have ${paths.chatModel}`);
    return;
  }
  if (!existsSync(paths.vocab)) throw new LlamaBuildError(`${paths.vocab} is missing: delete ${paths.src} and rerun`);
  mkdirSync(paths.models, { recursive: true });
  const bytes = writeLlamaGguf({ vocabFile: paths.vocab, outFile: paths.chatModel });
  log(`wrote ${paths.chatModel} (${(bytes / 1e6).toFixed(1)} MB; 2 layers, embedding 64, context 2048, f32)`);
}

function writeManifest(version: string): void {
  const info = existsSync(paths.info) ? (JSON.parse(readFileSync(paths.info, "utf8")) as { tag?: string }) : {};
  const manifest = {
    version: LLAMA_SOURCE_VERSION,
    source: `npm:${LLAMA_SOURCE_PACKAGE}@${LLAMA_SOURCE_VERSION}`,
    bundle: paths.bundle,
    llama_cpp_release: info.tag ?? null,
    commit: gitHead() ?? null,
    server_version: version,
    cmake_flags: CMAKE_FLAGS,
    binaries: { "llama-server": paths.server, "test-llama-archs": paths.archs },
    model: paths.model,
    model_bytes: statSync(paths.model).size,
    chat_model: existsSync(paths.chatModel) ? paths.chatModel : null,
    built_at: new Date().toISOString(),
  };
  writeFileSync(`${paths.manifest}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(`${paths.manifest}.tmp`, paths.manifest);
}

function printReady(version: string): void {
  log(`ready (${version})`);
  console.log(`  llama-server  ${paths.server}`);
  console.log(`  model         ${paths.model}`);
  console.log(`  chat model    ${paths.chatModel}`);
  console.log(`  manifest      ${paths.manifest}`);
}

/** The finished build, when bin/llama-server runs and the model is there. */
function finished(): string | undefined {
  return existsSync(paths.model) ? serverVersion(paths.server) : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** One build per cache at a time: a second `llama:build` waits, then finds the work done. */
async function acquireLock(): Promise<void> {
  let lastNotice = Number.NEGATIVE_INFINITY;
  for (;;) {
    try {
      closeSync(openSync(paths.lock, "wx"));
      writeFileSync(paths.lock, String(process.pid));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = Number.parseInt(readFileSync(paths.lock, "utf8"), 10);
    if (!Number.isInteger(holder) || !isAlive(holder)) {
      rmSync(paths.lock, { force: true }); // left by a killed build
      continue;
    }
    if (performance.now() - lastNotice > 60_000) {
      log(`another llama:build (pid ${holder}) is working in ${cache}; waiting for it`);
      lastNotice = performance.now();
    }
    await Bun.sleep(2000);
  }
}

function releaseLock(): void {
  if (existsSync(paths.lock) && readFileSync(paths.lock, "utf8") === String(process.pid)) rmSync(paths.lock);
}

function parseJobs(argv: readonly string[]): number {
  const at = argv.findIndex((arg) => arg === "--jobs" || arg === "-j");
  if (at === -1) return 2;
  const jobs = Number.parseInt(argv[at + 1] ?? "", 10);
  if (!Number.isInteger(jobs) || jobs < 1) throw new LlamaBuildError("--jobs needs a positive integer");
  return jobs;
}

async function main(argv: readonly string[]): Promise<void> {
  const jobs = parseJobs(argv);
  const ready = finished();
  if (ready !== undefined && existsSync(paths.chatModel)) {
    if (!existsSync(paths.manifest)) writeManifest(ready);
    return printReady(ready);
  }
  mkdirSync(cache, { recursive: true });
  await acquireLock();
  try {
    const steps: readonly [string, () => unknown][] = [
      ["fetch", fetchTarball],
      ["extract", extractBundle],
      ["clone", cloneSource],
      ["configure", configure],
      ["compile", () => compile(jobs)],
      ["install", installBinaries],
      ["model", writeModel],
      ["chat model", writeChatModel],
    ];
    // A build that finished while we waited for the lock needs nothing more (but the chat model, if new).
    if (finished() !== undefined) writeChatModel();
    else {
      for (const [index, [name, step]] of steps.entries()) {
        const started = performance.now();
        log(`[${index + 1}/${steps.length}] ${name}`);
        await step();
        log(`[${index + 1}/${steps.length}] ${name} done in ${seconds(started)}`);
      }
    }
    const version = serverVersion(paths.server);
    if (version === undefined) throw new LlamaBuildError(`${paths.server} --version did not exit 0`);
    writeManifest(version);
    printReady(version);
  } finally {
    releaseLock();
  }
}

// On Ctrl-C or SIGTERM stop the compiler too, so a rerun never races a leftover build.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    try {
      if (current?.pid !== undefined) process.kill(-current.pid, "SIGTERM");
    } catch {
      // the group already exited
    }
    releaseLock();
    log(`stopped by ${signal}; run it again to resume`);
    process.exit(signal === "SIGINT" ? 130 : 143);
  });
}

const started = performance.now();
try {
  await main(process.argv.slice(2));
  log(`finished in ${seconds(started)}`);
} catch (err) {
  const message = err instanceof LlamaBuildError ? err.message : String((err as Error)?.stack ?? err);
  console.error(`llama:build: FAILED: ${message}`);
  process.exit(1);
}
