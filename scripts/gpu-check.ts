// GPU CHECK: run by hand on a machine with an NVIDIA GPU; no test runs it.
//
// Runs the REAL nvidia-smi, prints its raw output and what packages/core/src/gpu.ts makes of
// it. Where `python3 -c "import torch"` works and CUDA is available, it then starts a small
// process holding 256 MiB on GPU 0, checks that queryGpus sees that PID on GPU 0, kills it and
// checks that waitGpuReleased sees the memory freed. Every child has a timeout, the holder is
// always killed, and the whole check gives up after 4 minutes. It changes nothing on the GPU
// beyond that one allocation.
//
// usage:  bun scripts/gpu-check.ts [--record <dir>]
//   --record <dir>  also write the raw outputs there (query-gpu.csv, compute-apps.csv, and
//                   *.busy.csv with the holder running) to become test fixtures
// exit:   0 every check passed (or only the snapshot could be checked), 1 a check failed,
//         2 no usable nvidia-smi
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  COMPUTE_APPS_QUERY_ARGS,
  GPU_QUERY_ARGS,
  type GpuSnapshot,
  parseComputeAppsCsv,
  parseGpuCsv,
  queryGpus,
  waitGpuReleased,
} from "@corral/core";

const WHOLE_CHECK_MS = 4 * 60_000;
const HOLDER_MIB = 256;
const HOLDER_PY = `
import sys, time, torch
x = torch.empty(${HOLDER_MIB} * 1024 * 1024, dtype=torch.uint8, device="cuda:0")
torch.cuda.synchronize()
print("ready", flush=True)
time.sleep(120)
`;

const recordIndex = process.argv.indexOf("--record");
const recordDir = recordIndex > 0 ? process.argv[recordIndex + 1] : undefined;
let failed = false;
let holder: Bun.Subprocess<"ignore", "pipe", "inherit"> | undefined;

const watchdog = setTimeout(() => {
  console.log(`\nFAIL: the check ran past ${WHOLE_CHECK_MS / 1000} s; giving up`);
  holder?.kill("SIGKILL");
  process.exit(1);
}, WHOLE_CHECK_MS);

function check(ok: boolean, what: string): void {
  console.log(`${ok ? "PASS" : "FAIL"}: ${what}`);
  if (!ok) failed = true;
}

/** Runs a command with a time limit; never throws. */
async function run(cmd: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  try {
    const child = Bun.spawn(cmd, {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      timeout: timeoutMs,
      killSignal: "SIGKILL",
    });
    const [stdout, stderr, code] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    return { code, stdout, stderr };
  } catch (error) {
    return { code: null, stdout: "", stderr: String(error) };
  }
}

async function raw(args: readonly string[], recordAs?: string): Promise<string> {
  const result = await run(["nvidia-smi", ...args], 15_000);
  console.log(
    `\n$ nvidia-smi ${args.join(" ")}   (exit ${result.code})\n${result.stdout}${result.stderr ? `[stderr] ${result.stderr}` : ""}`,
  );
  if (recordDir && recordAs) await writeFile(join(recordDir, recordAs), result.stdout);
  return result.stdout;
}

function show(label: string, snapshot: GpuSnapshot | undefined): void {
  console.log(`\n${label}:\n${JSON.stringify(snapshot, null, 2)}`);
}

async function checkSnapshot(): Promise<GpuSnapshot | undefined> {
  await raw(["-L"]);
  const gpuText = await raw(GPU_QUERY_ARGS, "query-gpu.csv");
  await raw(["--query-gpu=index,name,memory.total,memory.used", "--format=csv,noheader,nounits"]);
  const appsText = await raw(COMPUTE_APPS_QUERY_ARGS, "compute-apps.csv");
  const snapshot = await queryGpus({ timeoutMs: 15_000 });
  show("queryGpus()", snapshot);
  if (!snapshot) return undefined;
  const parsed = parseGpuCsv(gpuText);
  check(
    parsed.length > 0 && parsed.length === snapshot.gpus.length,
    `parseGpuCsv found ${parsed.length} GPU(s), as queryGpus did`,
  );
  check(
    parsed.every((g) => g.uuid !== undefined && g.name.length > 0),
    "every GPU has a name and a uuid",
  );
  check(
    parsed.every((g) => g.memory_total_mib !== undefined && g.memory_total_mib > 0),
    "every GPU reports its total memory (undefined here is expected only on unified-memory boards)",
  );
  check(
    parseComputeAppsCsv(appsText, parsed).length === snapshot.processes.length,
    "parseComputeAppsCsv agrees with queryGpus",
  );
  return snapshot;
}

async function torchWithCuda(): Promise<boolean> {
  const probe = await run(
    ["python3", "-c", "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)"],
    90_000,
  );
  if (probe.code !== 0)
    console.log(
      `\ntorch with CUDA not available (exit ${probe.code}): snapshot only.${probe.stderr ? `\n${probe.stderr.trim().split("\n").at(-1)}` : ""}`,
    );
  return probe.code === 0;
}

/** Starts the holder and resolves once it printed "ready", or undefined if it did not within 90 s. */
async function startHolder(): Promise<number | undefined> {
  holder = Bun.spawn(["python3", "-u", "-c", HOLDER_PY], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
    timeout: 150_000,
    killSignal: "SIGKILL",
  });
  const reader = holder.stdout.getReader();
  const ready = (async () => {
    let seen = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return false;
      seen += new TextDecoder().decode(value);
      if (seen.includes("ready")) return true;
    }
  })();
  const ok = await Promise.race([ready, Bun.sleep(90_000).then(() => false)]);
  return ok ? holder.pid : undefined;
}

async function checkHolder(): Promise<void> {
  const pid = await startHolder();
  check(pid !== undefined, `a python3/torch process allocated ${HOLDER_MIB} MiB on GPU 0`);
  if (pid === undefined) return;
  let seen: GpuSnapshot | undefined;
  // The driver may list a new context a moment late.
  for (let i = 0; i < 20 && !seen?.processes.some((p) => p.pid === pid); i++) {
    seen = await queryGpus({ timeoutMs: 15_000 });
    if (!seen?.processes.some((p) => p.pid === pid)) await Bun.sleep(500);
  }
  await raw(GPU_QUERY_ARGS, "query-gpu.busy.csv");
  await raw(COMPUTE_APPS_QUERY_ARGS, "compute-apps.busy.csv");
  show(`queryGpus() with pid ${pid} holding memory`, seen);
  const mine = seen?.processes.filter((p) => p.pid === pid) ?? [];
  check(mine.length === 1, `queryGpus lists pid ${pid} once`);
  if (mine.length === 0 && seen?.processes.length) {
    console.log(
      `note: nvidia-smi lists pids ${seen.processes.map((p) => p.pid).join(", ")}: a PID namespace may hide the host PIDs`,
    );
  }
  check(mine[0]?.gpu_index === 0, "its GPU index is 0 (mapped through gpu_uuid)");
  check(
    (mine[0]?.used_memory_mib ?? 0) >= HOLDER_MIB,
    `it holds at least ${HOLDER_MIB} MiB (${mine[0]?.used_memory_mib} MiB)`,
  );
  holder?.kill("SIGKILL");
  await holder?.exited;
  const released = await waitGpuReleased(pid, { timeoutMs: 15_000 });
  check(
    released.released === true,
    `waitGpuReleased saw the memory freed after the kill (${JSON.stringify(released)})`,
  );
}

try {
  if (recordDir) await mkdir(recordDir, { recursive: true });
  const snapshot = await checkSnapshot();
  if (!snapshot) {
    console.log("\nno usable nvidia-smi: queryGpus answered undefined");
    process.exitCode = 2;
  } else if (await torchWithCuda()) {
    await checkHolder();
  }
} catch (error) {
  check(false, `unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  holder?.kill("SIGKILL");
  clearTimeout(watchdog);
}
if (process.exitCode !== 2) process.exitCode = failed ? 1 : 0;
console.log(
  `\ngpu-check: ${process.exitCode === 0 ? "all checks passed" : process.exitCode === 2 ? "no GPU figures" : "some checks FAILED"}`,
);
