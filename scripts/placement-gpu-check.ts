// PLACEMENT GPU CHECK: run by hand on a machine with an NVIDIA GPU and a CUDA build of llama-server;
// no test runs it (issue 16: "a short prepared script loads a real model with the CUDA build and
// records estimate vs measured memory").
//
// For each shape (context sizes, flash attention on and off) it starts llama-server on GPU 0 with
// every layer offloaded, reads the buffer sizes it prints (`CUDA0 model buffer size`, `CUDA0 KV
// buffer size`, `CUDA0 compute buffer size`), asks nvidia-smi what the process holds, stops it, and
// prints one JSON line per shape with placement's estimate beside both. Every server gets 120 s to
// load and is SIGKILLed after its figures are read; the check gives up after 8 minutes.
//
// usage:  CORRAL_LLAMA_SERVER=/path/to/cuda/llama-server bun scripts/placement-gpu-check.ts <model.gguf>
// exit:   0 figures printed for every shape, 1 a shape failed, 2 usage (no model, no GPU figures)
import { estimateMemory, parseMemoryArgs, queryGpus, readModelFacts } from "@corral/core";

const MIB = 2 ** 20;
const SHAPES: readonly (readonly string[])[] = [
  ["-c", "4096", "-fa", "on"],
  ["-c", "16384", "-fa", "on"],
  ["-c", "4096", "-fa", "off"],
  ["-c", "8192", "-fa", "on", "-ctk", "q8_0", "-ctv", "q8_0"],
];
const model = process.argv[2];
const server = process.env.CORRAL_LLAMA_SERVER ?? "llama-server";
if (!model) {
  console.error("usage: CORRAL_LLAMA_SERVER=<cuda llama-server> bun scripts/placement-gpu-check.ts <model.gguf>");
  process.exit(2);
}
if (!(await queryGpus())) {
  console.error("no GPU figures: nvidia-smi is missing or failing");
  process.exit(2);
}
setTimeout(() => {
  console.error("placement-gpu-check: gave up after 8 minutes");
  process.exit(1);
}, 8 * 60_000).unref();

const facts = await readModelFacts(model);
let failed = false;
for (const args of SHAPES) {
  const estimate = estimateMemory(facts, parseMemoryArgs(args), [0]).devices.find((d) => d.device === 0);
  const child = Bun.spawn([server, "-m", model, "--port", "0", "-ngl", "999", "-lv", "4", "--no-warmup", ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, CUDA_VISIBLE_DEVICES: "0", GGML_NO_BACKTRACE: "1" },
  });
  let log = "";
  const read = async (stream: ReadableStream<Uint8Array>) => {
    const reader = stream.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      log += decoder.decode(value, { stream: true });
    }
  };
  const reading = Promise.all([read(child.stdout), read(child.stderr)]);
  const deadline = Date.now() + 120_000;
  while (!/server is listening|listening on/.test(log) && Date.now() < deadline && child.exitCode === null) {
    await Bun.sleep(200);
  }
  const snapshot = await queryGpus();
  const heldMib = (snapshot?.processes ?? [])
    .filter((p) => p.pid === child.pid)
    .reduce((a, p) => a + p.used_memory_mib, 0);
  child.kill("SIGKILL");
  await child.exited;
  await reading;
  const printed = (what: string) => {
    const figures = [...log.matchAll(new RegExp(`CUDA0 ${what} buffer size =\\s+([\\d.]+) MiB`, "g"))];
    return figures.reduce((a, m) => a + Number(m[1]), 0);
  };
  const row = {
    args: args.join(" "),
    estimate_mib: estimate && {
      weights: Math.round(estimate.weights_bytes / MIB),
      kv: Math.round(estimate.kv_bytes / MIB),
      compute: Math.round(estimate.compute_bytes / MIB),
      total: Math.round(estimate.total_bytes / MIB),
    },
    printed_mib: { weights: printed("model"), kv: printed("KV"), compute: printed("compute") },
    nvidia_smi_mib: heldMib,
  };
  if (heldMib === 0) failed = true;
  console.log(JSON.stringify(row));
}
process.exit(failed ? 1 : 0);
