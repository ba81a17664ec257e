/**
 * Scenario 3, hostile API input: thousands of malformed requests (see ./hostile-corpus.ts)
 * against the corral API listening on a real port, with a token and one loaded stand-in.
 * No answer may be a 5xx, no mutating request may be accepted, no answer may leak a file from
 * outside the API, the server must keep answering, and when it is over nothing on disk has
 * changed (processes.json, history.jsonl, the folder around the home) and the stand-in is
 * untouched. The app is built like `serve()` builds it (same listen options, the page
 * included) but without the watcher, whose own ticks could legitimately write.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createController } from "@corral/core";
import { createApp } from "../../packages/api/src/index.ts";
import { namedCopy } from "../../packages/core/test/fixtures/index.ts";
import { diffFingerprints, fingerprint, makeHome } from "./home.ts";
import { type CorpusContext, type HostileRequest, hostileCorpus } from "./hostile-corpus.ts";
import { Scope, startTicks, stillAlive } from "./scope.ts";
import { messageOf, type Scenario, type ScenarioOptions, type ScenarioResult, Tally } from "./types.ts";

/**
 * Scenario 3: thousands of malformed requests; no 5xx, nothing accepted, nothing on disk changed.
 * @example
 * const result = await hostileApi.run({ form: "short", seed: 1, log: console.error })
 */
export const hostileApi: Scenario = {
  id: 3,
  name: "hostile API input",
  run: runHostileApi,
};

const CONCURRENCY = 8;
const READ_ONLY = new Set(["GET", "HEAD", "OPTIONS"]);

/** What came back for one request. */
interface Answer {
  readonly status: number | undefined;
  readonly body: string;
  /** the connection closed or timed out without a status line */
  readonly none?: string;
}

async function runHostileApi(options: ScenarioOptions): Promise<ScenarioResult> {
  const tally = new Tally(hostileApi.id, hostileApi.name);
  const scope = new Scope();
  const count = options.form === "long" ? 12_000 : 1_500;
  try {
    const dir = scope.tempDir("hostile");
    const canary = `canary-${randomBytes(12).toString("hex")}`;
    writeFileSync(join(dir, "canary.txt"), `${canary}\n`);
    const h = await makeHome(scope, join(dir, "home"), [{ id: "tiny" }]);
    const controller = await createController({
      home: h.home,
      configFile: h.configFile,
      probe: scope.probe(),
      gpuQuery: async () => undefined,
    });
    controller.registry.subscribe((e) => e.pid !== undefined && scope.track(e.pid));
    const { slot, entry } = await controller.load("tiny", { gpu: 0 });
    const standInTicks = startTicks(entry.pid);
    const bystander = Bun.spawn([namedCopy(Bun.which("sleep") ?? "/bin/sleep", "redis-server"), "600"], {
      stdio: ["ignore", "ignore", "ignore"],
      detached: true,
    });
    scope.track(bystander.pid);
    const bystanderTicks = startTicks(bystander.pid);
    const token = `Tk${randomBytes(16).toString("hex")}`;
    const app = createApp({ controller, token });
    // The options serve() listens with: the 1 MiB backstop and the idle timeout matter here.
    app.listen({
      hostname: "127.0.0.1",
      port: 0,
      development: false,
      reusePort: false,
      maxRequestBodySize: 1024 * 1024,
      idleTimeout: 60,
    });
    scope.defer(async () => {
      await app.stop(true);
    });
    const port = app.server!.port!;
    const base = `http://127.0.0.1:${port}`;

    const before = fingerprint(dir, ["home/logs"]);
    const passwd = hashOf("/etc/passwd");
    const entryBefore = JSON.stringify(entry);
    const ctx: CorpusContext = {
      token,
      modelId: "tiny",
      trackedSlot: slot,
      trackedPid: entry.pid,
      ownPid: process.pid,
      parentPid: process.ppid,
      bystanderPid: bystander.pid,
    };
    const corpus = hostileCorpus(ctx, options.seed, count);
    const statuses = new Map<string, number>();
    /** read-only requests that got 2xx, and requests that got no answer: worth a look, not failures */
    const examples = new Map<string, number>();
    let next = 0;
    let done = 0;
    const worker = async () => {
      for (let i = next++; i < corpus.length; i = next++) {
        const request = corpus[i]!;
        tally.trial();
        const answer = await send(base, port, request);
        judge(request, answer, canary, tally);
        const key = answer.status === undefined ? "no answer" : String(answer.status);
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        if (answer.status === undefined || answer.status < 300) {
          const kind = answer.status === undefined ? "no answer" : "accepted";
          const label = `${kind}: ${request.label.replace(/\s+/g, " ").slice(0, 60)}`;
          examples.set(label, (examples.get(label) ?? 0) + 1);
        }
        if (++done % 500 === 0) {
          await stillUp(base, tally, `after ${done} requests`);
          options.log(`hostile API: ${done}/${corpus.length}, ${tally.failures} failures`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await stillUp(base, tally, "at the end");

    const changes = diffFingerprints(before, fingerprint(dir, ["home/logs"]));
    tally.check(changes.length === 0, () => `refused requests changed the disk: ${changes.join("; ")}`);
    tally.check(hashOf("/etc/passwd") === passwd, "/etc/passwd changed");
    const now = await controller.registry.get(slot);
    tally.check(JSON.stringify(now) === entryBefore, `the tracked entry changed: ${JSON.stringify(now)}`);
    if (!now) tally.lose(1, "the tracked entry is gone");
    tally.check(stillAlive(entry.pid, standInTicks), "the tracked stand-in was killed");
    tally.check(
      !/cleaning up before exit/.test(readFileSync(entry.log_file!, "utf8")),
      "the tracked stand-in got a signal",
    );
    tally.check(stillAlive(bystander.pid, bystanderTicks), "the bystander (a copied sleep) was killed");
    const servers = (await scope.markedServers()).map((p) => p.pid);
    tally.check(
      servers.length === 1 && servers[0] === entry.pid,
      `hostile requests started servers: ${servers.join(", ")}`,
    );
    const listed = await fetch(`${base}/api/v1/process-registry`, { headers: { authorization: `Bearer ${token}` } });
    const registryBody = (await listed.json()) as { processes?: Record<string, { pid?: number }> };
    tally.check(
      listed.status === 200 && registryBody.processes?.[slot]?.pid === entry.pid,
      "a normal request after the storm did not see the entry",
    );
    const histogram = [...statuses]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, n]) => `${n}×${k}`)
      .join(", ");
    tally.note(`${corpus.length} requests: ${histogram}`);
    if (statuses.has("505"))
      tally.note("505s come from Bun's HTTP parser, for request lines without HTTP/1.x; not counted as failures");
    for (const [label, n] of [...examples].sort((a, b) => b[1] - a[1]).slice(0, 6)) tally.note(`${n}× ${label}`);
  } catch (error) {
    tally.fail(`the scenario itself failed: ${messageOf(error)}`);
  } finally {
    await scope.cleanup();
  }
  return tally.result();
}

function hashOf(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

async function stillUp(base: string, tally: Tally, when: string): Promise<void> {
  const res = await fetch(`${base}/api/v1/health`, { signal: AbortSignal.timeout(20_000) }).catch((e: unknown) =>
    messageOf(e),
  );
  tally.check(
    typeof res !== "string" && res.status === 200,
    () => `${when}: the server did not answer /health: ${typeof res === "string" ? res : res.status}`,
  );
}

/** Every way an answer can break a promise. */
function judge(request: HostileRequest, answer: Answer, canary: string, tally: Tally): void {
  const what = request.label;
  // Bun's HTTP parser itself answers 505 to a request line with no or an unknown HTTP version,
  // before corral sees anything: the protocol's refusal, not a server failure.
  if (
    answer.status === 505 &&
    request.kind === "raw" &&
    !/ HTTP\/1\.[01]\r\n/.test(new TextDecoder().decode(request.bytes))
  )
    return;
  if (answer.status !== undefined && answer.status >= 500) {
    tally.fail(`${what}: answered ${answer.status}: ${answer.body.slice(0, 200)}`);
  }
  if (answer.body.includes(canary) || answer.body.includes("root:x:0:0"))
    tally.fail(`${what}: the answer leaks a file from outside the API`);
  const method =
    request.kind === "http" ? request.method : new TextDecoder().decode(request.bytes.slice(0, 8)).split(" ")[0]!;
  const readOnly = READ_ONLY.has(method) || (request.kind === "http" && /\/verify$/.test(request.path));
  if (!readOnly && answer.status !== undefined && answer.status >= 200 && answer.status < 300) {
    tally.fail(`${what}: a hostile ${method} was accepted (${answer.status}): ${answer.body.slice(0, 200)}`);
  }
}

async function send(base: string, port: number, request: HostileRequest): Promise<Answer> {
  if (request.kind === "raw") return sendRaw(port, request.bytes);
  let body: RequestInit["body"];
  if (request.body === "stream") body = chunked(request.streamBytes ?? 0);
  // A copy: fetch wants bytes over a plain ArrayBuffer.
  else body = typeof request.body === "string" || request.body === undefined ? request.body : request.body.slice();
  try {
    const res = await fetch(`${base}${request.path}`, {
      method: request.method,
      headers: request.headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(20_000),
    });
    return { status: res.status, body: await res.text().catch(() => "") };
  } catch (error) {
    // A server may close the connection on a body it refused (413) before reading all of it.
    return { status: undefined, body: "", none: messageOf(error) };
  }
}

/** A request body streamed in 64 KiB chunks without a Content-Length. */
function chunked(total: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      const n = Math.min(64 * 1024, total - sent);
      sent += n;
      controller.enqueue(new Uint8Array(n).fill(0x7b));
    },
  });
}

/** Writes raw bytes and reads until the server closes, or 3 s pass (incomplete requests get no answer). */
async function sendRaw(port: number, bytes: Uint8Array): Promise<Answer> {
  const chunks: Uint8Array[] = [];
  let quiet: ReturnType<typeof setTimeout> | undefined;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  try {
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_s, data) => {
          chunks.push(new Uint8Array(data));
          // Keep-alive connections stay open after the answer: a short quiet spell ends it.
          clearTimeout(quiet);
          quiet = setTimeout(finish, 150);
        },
        close: () => finish(),
        error: () => finish(),
      },
    });
    socket.write(bytes);
    const timer = setTimeout(finish, 3_000);
    await finished;
    clearTimeout(timer);
    clearTimeout(quiet);
    socket.end();
  } catch (error) {
    return { status: undefined, body: "", none: messageOf(error) };
  }
  const text = Buffer.concat(chunks).toString("latin1");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
  return status ? { status: Number(status), body: text } : { status: undefined, body: text, none: "no status line" };
}
