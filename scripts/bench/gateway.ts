/**
 * Scenario 9: the gateway. `corral serve` (the real CLI) in front of the real llama-server with
 * tiny-chat.gguf (the stand-in where `bun run llama:build` has not run), and every figure beside
 * the same llama-server reached directly, in the same run, interleaved:
 *   - added latency of a non-streaming completion, 1 and 16 concurrent clients (p50, p99; < 1 ms p99)
 *   - added time to the first streamed token (< 1 ms)
 *   - streamed tokens per second through the gateway over direct (>= 0.98)
 *   - GET /v1/models requests per second (wrk; > 20,000)
 *   - cold start: request for an unloaded model to its first token, minus llama-server's own
 *     time to ready and the warm first-token time (< 50 ms)
 *   - corral serve's RSS with 64 streams in flight (< 100 MB)
 */
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, standInServer } from "../../packages/core/test/fixtures/index.ts";
import { llamaBuildPaths } from "../llama-paths.ts";
import {
  type BenchContext,
  type Figure,
  figure,
  median,
  percentile,
  round,
  rssBytes,
  type Scenario,
  within,
} from "./harness.ts";
import { hasWrk, runWrk } from "./wrk.ts";

const REPO = join(import.meta.dir, "..", "..");
const CLI = join(REPO, "packages", "cli", "src", "main.ts");
const TOKEN = "bench-gateway-token-0123456789abcdef";
const MB = 1024 * 1024;
const JSON_HEADERS = { "content-type": "application/json", authorization: `Bearer ${TOKEN}` };

interface Setup {
  readonly gateway: string;
  readonly home: string;
  readonly real: boolean;
  readonly servePid: number;
}

async function start(ctx: BenchContext): Promise<Setup> {
  const llama = llamaBuildPaths();
  const real = llama.ready && llama.chatReady;
  const home = ctx.tracker.tempDir("bench-gateway");
  const model = real ? llama.chatModel : join(home, "stand-in.gguf");
  if (!real) writeFileSync(model, "GGUF stand-in\n");
  const args = real
    ? ["--chat-template", "chatml", "--context-shift", "-c", "2048", "--threads", "1", "--threads-http", "32"]
    : [];
  const low = 26000 + (process.pid % 30) * 100;
  writeFileSync(
    join(home, "corral.json"),
    JSON.stringify({
      llama_server: real ? llama.server : await standInServer(),
      ports: { range: [low, low + 99], gpu: {} },
      gpu_release_wait_ms: 0,
      // The inference routes are open on loopback, so wrk needs no header; the rest keeps the token.
      gateway: { auth: "none" },
      models: [
        { id: "chat", path: model, gpu: "0", args, env: { GGML_NO_BACKTRACE: "1" } },
        { id: "cold", path: model, gpu: "1", args, env: { GGML_NO_BACKTRACE: "1" } },
      ],
    }),
  );
  const port = await freePort();
  const fd = openSync(join(home, "serve.log"), "a");
  const serve = ctx.tracker.process(
    Bun.spawn([process.execPath, CLI, "serve", "--port", String(port)], {
      cwd: REPO,
      env: { ...process.env, CORRAL_HOME: home, CORRAL_TOKEN: TOKEN },
      stdio: ["ignore", fd, fd],
    }),
  );
  closeSync(fd);
  const gateway = `http://127.0.0.1:${port}`;
  await within(
    (async () => {
      for (;;) {
        if ((await fetch(`${gateway}/api/v1/health`).catch(() => undefined))?.ok) return;
        await Bun.sleep(50);
      }
    })(),
    30_000,
    "corral serve answering",
  );
  return { gateway, home, real, servePid: serve.pid };
}

/** The llama-server's address and PID once the gateway loaded it; tracked so cleanup ends it. */
function loaded(ctx: BenchContext, home: string, model: string): { direct: string; pid: number; readyMs: number } {
  const doc = JSON.parse(readFileSync(join(home, "processes.json"), "utf8")) as {
    processes: Record<string, { model_id: string; port: number; pid: number }>;
  };
  const entry = Object.values(doc.processes).find((e) => e.model_id === model);
  if (!entry) throw new Error(`${model} is not in the registry`);
  ctx.tracker.pid(entry.pid);
  ctx.tracker.group(entry.pid);
  const ready = readFileSync(join(home, "history.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { event: string; pid?: number; reason?: string })
    .find((e) => e.event === "status" && e.pid === entry.pid && /ready in/.test(e.reason ?? ""));
  const readyMs = Number(/ready in ([\d.]+) ms/.exec(ready?.reason ?? "")?.[1] ?? Number.NaN);
  return { direct: `http://127.0.0.1:${entry.port}`, pid: entry.pid, readyMs };
}

/** Connections llama-server reset under a kept-alive client (it closes them after a stream); retried, both ways alike. */
let resets = 0;

/** POST with one retry when a pooled connection turns out closed (the gateway does the same upstream). */
async function post(url: string, body: string): Promise<Response> {
  try {
    return await fetch(url, { method: "POST", headers: JSON_HEADERS, body });
  } catch (error) {
    if ((error as { code?: string }).code !== "ECONNRESET") throw error;
    resets++;
    return fetch(url, { method: "POST", headers: JSON_HEADERS, body, keepalive: false });
  }
}

function completionBody(model: string, stream: boolean, maxTokens: number): string {
  return JSON.stringify({ model, prompt: "Hello", max_tokens: maxTokens, stream, temperature: 0 });
}

async function once(base: string, body: string): Promise<number> {
  const started = performance.now();
  const res = await post(`${base}/v1/completions`, body);
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`${base}: ${res.status}`);
  return performance.now() - started;
}

/** ms to the first chunk that carries text, and the number of chunks with text over the whole stream. */
async function streamed(base: string, body: string): Promise<{ ttft: number; tokens: number; ms: number }> {
  const started = performance.now();
  const res = await post(`${base}/v1/completions`, body);
  if (!res.ok || !res.body) throw new Error(`${base}: ${res.status} ${await res.text()}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let ttft = Number.NaN;
  let tokens = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const text = decoder.decode(value, { stream: true });
    const n = (text.match(/"text":"[^"]/g) ?? []).length;
    if (n > 0 && Number.isNaN(ttft)) ttft = performance.now() - started;
    tokens += n;
  }
  return { ttft, tokens, ms: performance.now() - started };
}

/** Latencies of `clients` concurrent loops, `perClient` requests each, against one base URL. */
async function concurrent(base: string, body: string, clients: number, perClient: number): Promise<number[]> {
  const samples: number[] = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = 0; i < perClient; i++) samples.push(await once(base, body));
    }),
  );
  return samples;
}

async function latencyFigures(ctx: BenchContext, s: Setup, direct: string): Promise<Figure[]> {
  const body = completionBody("chat", false, 1);
  const figures: Figure[] = [];
  for (const clients of [1, 16]) {
    const gateway: number[] = [];
    const straight: number[] = [];
    const rounds = ctx.runs(6, 2);
    const perClient = clients === 1 ? ctx.runs(50, 15) : ctx.runs(8, 3);
    await concurrent(s.gateway, body, clients, 2);
    for (let r = 0; r < rounds; r++) {
      straight.push(...(await concurrent(direct, body, clients, perClient)));
      gateway.push(...(await concurrent(s.gateway, body, clients, perClient)));
    }
    for (const p of [50, 99]) {
      const added = percentile(gateway, p) - percentile(straight, p);
      const note = `gateway p${p} ${round(percentile(gateway, p))} ms, direct ${round(percentile(straight, p))} ms, ${gateway.length} requests each`;
      figures.push(
        figure(
          9,
          `gateway.added.c${clients}.p${p}`,
          `gateway added latency, non-streaming, ${clients} client${clients > 1 ? "s" : ""}, p${p}`,
          round(added),
          "ms",
          p === 99 ? { op: "<", value: 1 } : undefined,
          note,
        ),
      );
    }
  }
  return figures;
}

async function streamFigures(ctx: BenchContext, s: Setup, direct: string): Promise<Figure[]> {
  const first = completionBody("chat", true, 1);
  const long = completionBody("chat", true, s.real ? 400 : 5);
  const ttft = { gateway: [] as number[], direct: [] as number[] };
  const rate = { gateway: [] as number[], direct: [] as number[] };
  for (let r = 0; r < ctx.runs(30, 8); r++) {
    ttft.direct.push((await streamed(direct, first)).ttft);
    ttft.gateway.push((await streamed(s.gateway, first)).ttft);
  }
  for (let r = 0; r < ctx.runs(6, 2); r++) {
    for (const [key, base] of [
      ["direct", direct],
      ["gateway", s.gateway],
    ] as const) {
      const one = await streamed(base, long);
      rate[key].push((one.tokens / one.ms) * 1000);
    }
  }
  const ratio = median(rate.gateway) / median(rate.direct);
  return [
    figure(
      9,
      "gateway.ttft.added",
      "gateway added time to first streamed token (median)",
      round(median(ttft.gateway) - median(ttft.direct)),
      "ms",
      { op: "<", value: 1 },
      `gateway ${round(median(ttft.gateway))} ms, direct ${round(median(ttft.direct))} ms`,
    ),
    figure(
      9,
      "gateway.stream.ratio",
      "streamed tokens/s, gateway over direct",
      round(ratio),
      "x",
      { op: ">", value: 0.98 },
      `gateway ${round(median(rate.gateway))} tok/s, direct ${round(median(rate.direct))} tok/s`,
    ),
  ];
}

async function modelsRps(ctx: BenchContext, s: Setup): Promise<Figure> {
  const target = { op: ">", value: 20_000 } as const;
  const name = "GET /v1/models, requests/s (wrk, 16 connections)";
  if (!hasWrk()) return figure(9, "gateway.models.rps", name, null, "req/s", target, "wrk is not installed");
  const r = await runWrk({ url: `${s.gateway}/v1/models`, seconds: ctx.quick ? 3 : 8, connections: 16 }, ctx.tracker);
  return figure(
    9,
    "gateway.models.rps",
    name,
    Math.round(r.requestsPerSec),
    "req/s",
    target,
    `p99 ${round(r.p99)} ms, ${r.non2xx} non-2xx`,
  );
}

async function coldStart(ctx: BenchContext, s: Setup, warmTtft: number): Promise<Figure> {
  const samples: number[] = [];
  for (let r = 0; r < ctx.runs(3, 1); r++) {
    const one = await streamed(s.gateway, completionBody("cold", true, 1));
    const { readyMs, pid } = loaded(ctx, s.home, "cold");
    samples.push(one.ttft - readyMs - warmTtft);
    const res = await fetch(`${s.gateway}/api/v1/models/unload`, {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify({ gpu_id: "1" }),
    });
    if (!res.ok) throw new Error(`unloading cold (pid ${pid}): ${res.status} ${await res.text()}`);
  }
  return figure(
    9,
    "gateway.cold.overhead",
    "cold start: request to first token, minus llama-server's time to ready and a warm first token",
    round(median(samples)),
    "ms",
    { op: "<", value: 50 },
    `${samples.length} loads; the rest is corral's spawn, registry writes and /health polling`,
  );
}

async function rssWithStreams(s: Setup): Promise<Figure> {
  const body = completionBody("chat", true, 100_000);
  const aborts = Array.from({ length: 64 }, () => new AbortController());
  const readers = await Promise.all(
    aborts.map(async (ac) => {
      const res = await fetch(`${s.gateway}/v1/completions`, {
        method: "POST",
        headers: JSON_HEADERS,
        body,
        signal: ac.signal,
      });
      return res.body!.getReader();
    }),
  );
  // Every stream is open through the gateway (llama-server queues the ones past its slots).
  await Bun.sleep(1500);
  const rss = rssBytes(s.servePid) ?? Number.NaN;
  for (const ac of aborts) ac.abort();
  await Promise.all(readers.map((r) => r.cancel().catch(() => undefined)));
  return figure(9, "gateway.rss.64streams", "corral serve RSS with 64 streams in flight", round(rss / MB), "MB", {
    op: "<",
    value: 100,
  });
}

export const gatewayScenario: Scenario = {
  scenario: 9,
  name: "gateway (OpenAI routes) beside the llama-server reached directly",
  async run(ctx) {
    const s = await start(ctx);
    ctx.log(
      `gateway bench against ${s.real ? "the real llama-server with tiny-chat.gguf" : "the stand-in (no llama:build)"}`,
    );
    // The first request loads the model through the gateway.
    const warm = await streamed(s.gateway, completionBody("chat", true, 1));
    const { direct } = loaded(ctx, s.home, "chat");
    ctx.log(`chat loaded (first token after ${round(warm.ttft)} ms); latency`);
    const figures = await latencyFigures(ctx, s, direct);
    ctx.log("streams");
    figures.push(...(await streamFigures(ctx, s, direct)));
    ctx.log("GET /v1/models under wrk");
    figures.push(await modelsRps(ctx, s));
    ctx.log("cold start");
    const warmTtfts: number[] = [];
    for (let i = 0; i < 5; i++) warmTtfts.push((await streamed(direct, completionBody("chat", true, 1))).ttft);
    const warmTtft = median(warmTtfts);
    figures.push(await coldStart(ctx, s, warmTtft));
    ctx.log("64 streams in flight");
    figures.push(await rssWithStreams(s));
    if (resets > 0) ctx.log(`${resets} kept-alive client connections were reset by llama-server and retried`);
    return figures;
  },
};
