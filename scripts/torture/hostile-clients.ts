/**
 * Scenario 8, hostile clients (issue 14): what a web page in the user's browser and another local
 * user can try against a default `corral serve`. Every refusal is checked against a real server
 * process, and after each class nothing may have changed: no process, no registry entry, no
 * history line. Then 2,000 held event streams and stalled log followers, with the server's RSS
 * before, during and after. The other-user half (as `nobody`) is in hostile-users.ts.
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { createTokenStore } from "@corral/core";
import { makeHome, type TortureHome } from "./home.ts";
import { hostileUsers } from "./hostile-users.ts";
import { Scope, until } from "./scope.ts";
import { type ServeProcess, startServe } from "./serve-proc.ts";
import { messageOf, type Scenario, type ScenarioOptions, type ScenarioResult, Tally } from "./types.ts";

/**
 * Scenario 8: cross-site pages, rebound names, bad tokens, other users and stream floods change nothing.
 * @example
 * const result = await hostileClients.run({ form: "short", seed: 1, log: console.error })
 */
export const hostileClients: Scenario = {
  id: 8,
  name: "hostile clients",
  run: runHostileClients,
};

const EVIL = "http://evil.example";

interface Attempt {
  readonly name: string;
  readonly path: string;
  readonly init: RequestInit;
  /** the status and error code the server must answer */
  readonly status: number;
  readonly code: string;
}

async function runHostileClients(options: ScenarioOptions): Promise<ScenarioResult> {
  const tally = new Tally(hostileClients.id, hostileClients.name);
  const scope = new Scope();
  try {
    const h = await makeHome(scope, join(scope.tempDir("hostile-clients"), "home"), [
      { id: "tiny", args: ["--fake-load-ms", "50"] },
    ]);
    const start = await startServe(scope, h.home, h.configFile);
    if (!start.server) throw new Error(`corral serve did not start: ${start.output.slice(-800)}`);
    const server = start.server;
    await requestsRefused(server, h, tally, options);
    await browserPage(server, h, tally, options);
    await streamFlood(server, h, tally, options);
    await hostileUsers(scope, tally, options);
  } catch (error) {
    tally.fail(`the scenario itself failed: ${messageOf(error)}`);
  } finally {
    await scope.cleanup();
  }
  return tally.result();
}

/** What must not change: the registry file and the number of history lines. */
function stateOf(h: TortureHome): string {
  const registry = existsSync(h.registry) ? readFileSync(h.registry, "utf8") : "";
  const historyFile = join(h.home, "history.jsonl");
  const lines = existsSync(historyFile) ? readFileSync(historyFile, "utf8").split("\n").length : 0;
  return `${registry.length}:${lines}:${registry}`;
}

function attempts(token: string, tokens: Record<string, string>): Attempt[] {
  const auth = { authorization: `Bearer ${token}` };
  const json = { ...auth, "content-type": "application/json" };
  const foreign = { ...auth, origin: EVIL };
  const post = (body?: string, headers: Record<string, string> = {}): RequestInit => ({
    method: "POST",
    headers,
    ...(body === undefined ? {} : { body }),
  });
  return [
    // A page's "simple" requests: sent without a preflight, with the user's cookies if it had any.
    {
      name: "text/plain kill",
      path: "/api/v1/kill",
      init: post('{"name":"tiny"}', { ...foreign, "content-type": "text/plain" }),
      status: 403,
      code: "ORIGIN_NOT_ALLOWED",
    },
    {
      name: "form load",
      path: "/api/v1/models/load",
      init: post("model_id=tiny&gpu_id=0", { ...foreign, "content-type": "application/x-www-form-urlencoded" }),
      status: 403,
      code: "ORIGIN_NOT_ALLOWED",
    },
    {
      name: "bodiless cleanup",
      path: "/api/v1/cleanup-orphaned?force=true&include_foreign=true",
      init: post(undefined, foreign),
      status: 403,
      code: "ORIGIN_NOT_ALLOWED",
    },
    {
      name: "bodiless orphan kill",
      path: "/api/v1/orphans/1/kill?include_foreign=true",
      init: post(undefined, foreign),
      status: 403,
      code: "ORIGIN_NOT_ALLOWED",
    },
    {
      name: "text/plain without Origin",
      path: "/api/v1/models/load",
      init: post('{"model_id":"tiny"}', { ...auth, "content-type": "text/plain" }),
      status: 415,
      code: "UNSUPPORTED_MEDIA_TYPE",
    },
    {
      name: "Sec-Fetch-Site: cross-site",
      path: "/api/v1/models/load",
      init: post('{"model_id":"tiny"}', { ...json, "sec-fetch-site": "cross-site" }),
      status: 403,
      code: "CROSS_SITE",
    },
    // DNS rebinding: the page's origin is the attacker's name, resolved to 127.0.0.1.
    {
      name: "rebound Host read",
      path: "/api/v1/history",
      init: { headers: { ...auth, host: "rebind.attacker.example" } },
      status: 403,
      code: "HOST_NOT_ALLOWED",
    },
    {
      name: "rebound Host load",
      path: "/api/v1/models/load",
      init: post('{"model_id":"tiny"}', { ...json, host: "rebind.attacker.example:7070" }),
      status: 403,
      code: "HOST_NOT_ALLOWED",
    },
    // Tokens: none, wrong, expired, too weak for the route.
    {
      name: "no token",
      path: "/api/v1/models/load",
      init: post('{"model_id":"tiny"}', { "content-type": "application/json" }),
      status: 401,
      code: "UNAUTHORIZED",
    },
    {
      name: "wrong token",
      path: "/api/v1/processes",
      init: { headers: { authorization: `Bearer ${token}x` } },
      status: 401,
      code: "UNAUTHORIZED",
    },
    {
      name: "expired token",
      path: "/api/v1/processes",
      init: { headers: { authorization: `Bearer ${tokens.expired}` } },
      status: 401,
      code: "UNAUTHORIZED",
    },
    {
      name: "read token loads",
      path: "/api/v1/models/load",
      init: post('{"model_id":"tiny"}', { "content-type": "application/json", authorization: `Bearer ${tokens.read}` }),
      status: 403,
      code: "FORBIDDEN",
    },
    {
      name: "control token makes tokens",
      path: "/api/v1/tokens",
      init: post('{"name":"x","scope":"admin"}', {
        "content-type": "application/json",
        authorization: `Bearer ${tokens.control}`,
      }),
      status: 403,
      code: "FORBIDDEN",
    },
    {
      name: "inference token reads the registry",
      path: "/api/v1/processes",
      init: { headers: { authorization: `Bearer ${tokens.inference}` } },
      status: 403,
      code: "FORBIDDEN",
    },
  ];
}

async function requestsRefused(server: ServeProcess, h: TortureHome, tally: Tally, options: ScenarioOptions) {
  const store = createTokenStore({ file: join(h.home, "tokens.json"), now: () => Date.now() - 7_200_000 });
  const tokens: Record<string, string> = {
    expired: (await store.create("expired", "admin", { expiresInMs: 3_600_000 })).secret,
    read: (await store.create("reader", "read")).secret,
    control: (await store.create("operator", "control")).secret,
    inference: (await store.create("chat", "inference")).secret,
  };
  const rounds = options.form === "long" ? 20 : 2;
  const before = stateOf(h);
  for (let round = 0; round < rounds; round++) {
    for (const a of attempts(server.token(), tokens)) {
      tally.trial();
      try {
        const res = await fetch(`${server.url}${a.path}`, a.init);
        const body = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
        tally.check(
          res.status === a.status && body.error?.code === a.code,
          () => `${a.name}: answered ${res.status} ${body.error?.code}, not ${a.status} ${a.code}`,
        );
      } catch (error) {
        tally.fail(`${a.name}: ${messageOf(error)}`);
      }
    }
  }
  tally.trial();
  tally.check(stateOf(h) === before, "refused requests changed the registry or the history");
  // Plain local callers keep working: the CLI's way, with the token, no Origin.
  const ok = await fetch(`${server.url}/api/v1/processes`, { headers: { authorization: `Bearer ${server.token()}` } });
  tally.check(ok.status === 200, `curl with the token answered ${ok.status}`);
  options.log(`hostile clients: ${rounds} rounds of refused requests, ${tally.failures} failures so far`);
}

/** A real Chromium on a page of another local port: fetch and a form POST at corral change nothing. */
async function browserPage(server: ServeProcess, h: TortureHome, tally: Tally, options: ScenarioOptions) {
  if (!existsSync("/usr/bin/chromium")) {
    tally.note("no /usr/bin/chromium: the browser part did not run");
    return;
  }
  const { launchChromium } = await import("../../apps/web/test/helpers/chromium.ts");
  const target = server.url;
  const page = `<!doctype html><title>hostile</title>
<form id="f" method="POST" action="${target}/api/v1/models/load" enctype="text/plain">
<input name='{"model_id":"tiny","gpu_id":0,"pad":"' value='"}'></form>
<script>
Promise.allSettled([
  fetch("${target}/api/v1/kill", { method: "POST", mode: "no-cors", headers: { "content-type": "text/plain" }, body: '{"name":"tiny"}' }),
  fetch("${target}/api/v1/cleanup-orphaned?force=true&include_foreign=true", { method: "POST", mode: "no-cors" }),
  fetch("${target}/api/v1/models/load", { method: "POST", headers: { "content-type": "application/json" }, body: '{"model_id":"tiny"}' }),
]).then(() => document.getElementById("f").submit());
</script>`;
  const evil = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: () => new Response(page, { headers: { "content-type": "text/html" } }),
  });
  const browser = await launchChromium();
  try {
    const before = stateOf(h);
    tally.trial();
    await browser.page.goto(`http://127.0.0.1:${evil.port}/`);
    await browser.page.waitForURL(`${target}/api/v1/models/load`, { timeout: 20_000 });
    const shown = (await browser.page.textContent("body")) ?? "";
    tally.check(shown.includes("ORIGIN_NOT_ALLOWED"), `the form POST was answered with: ${shown.slice(0, 200)}`);
    await Bun.sleep(300);
    tally.check(stateOf(h) === before, "the hostile page changed the registry or the history");
  } finally {
    await browser.close();
    evil.stop(true);
  }
  options.log("hostile clients: the browser page changed nothing");
}

/** VmRSS of a process in MiB. */
function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb ?? 0) / 1024;
}

/** A raw HTTP/1.1 GET that is sent and then never read. */
function stalled(url: string, path: string, token: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      socket.pause();
      resolve(socket);
    });
    socket.on("error", reject);
  });
}

async function streamFlood(server: ServeProcess, h: TortureHome, tally: Tally, options: ScenarioOptions) {
  const token = server.token();
  const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const load = await fetch(`${server.url}/api/v1/models/load`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify({ model_id: "tiny", gpu_id: 0 }),
  });
  tally.trial();
  if (!tally.check(load.status === 200, `loading a model for the log followers answered ${load.status}`)) return;
  const entry = JSON.parse(readFileSync(h.registry, "utf8")).processes["0"] as { log_file: string };
  // Idle means warm: code paths compiled and the allocator's pools made once, by a small round of the same.
  for (let i = 0; i < 50; i++) await fetch(`${server.url}/api/v1/processes`, { headers: auth });
  const warm = await Promise.all(Array.from({ length: 100 }, () => stalled(server.url, "/api/v1/events", token)));
  for (const s of warm) s.destroy();
  await Bun.sleep(2_000);
  const idle = rssMiB(server.proc.pid);
  const held: Socket[] = [];
  let refused = 0;
  const streams = 2_000;
  try {
    // The followers first: the event streams then fill the rest of server.max_streams and get 429 past it.
    for (let i = 0; i < 5; i++) held.push(await stalled(server.url, "/api/v1/logs?gpu_id=0&follow=true", token));
    for (let i = 0; i < streams; i++) held.push(await stalled(server.url, "/api/v1/events", token));
    const probe = await fetch(`${server.url}/api/v1/events`, { headers: auth });
    tally.trial();
    tally.check(probe.status === 429, `a stream past server.max_streams answered ${probe.status}, not 429`);
    if (probe.status === 429) refused++;
    await probe.body?.cancel();
    const growthMiB = options.form === "long" ? 100 : 30;
    const line = `${"l".repeat(1023)}\n`;
    for (let i = 0; i < growthMiB; i++) {
      appendFileSync(entry.log_file, line.repeat(1024));
      await Bun.sleep(5);
    }
    const health = await fetch(`${server.url}/api/v1/health`, { signal: AbortSignal.timeout(10_000) });
    tally.trial();
    tally.check(health.status === 200, `with ${streams} streams held the API answered ${health.status}`);
    const during = rssMiB(server.proc.pid);
    tally.check(during < idle + 300, `RSS grew from ${idle.toFixed(0)} to ${during.toFixed(0)} MiB while flooded`);
    for (const s of held) s.destroy();
    held.length = 0;
    // Memory comes back once the clients leave (the allocator returns it within a few seconds).
    const after = await until(() => {
      const now = rssMiB(server.proc.pid);
      return now <= idle * 1.1 ? now : undefined;
    }, 20_000);
    const last = after ?? rssMiB(server.proc.pid);
    tally.trial();
    tally.check(
      after !== undefined,
      `RSS ${last.toFixed(0)} MiB after the clients left, idle was ${idle.toFixed(0)} MiB`,
    );
    tally.note(
      `RSS idle ${idle.toFixed(0)} MiB, with ${streams} event streams and 5 stalled log followers (${growthMiB} MiB of log) ` +
        `${during.toFixed(0)} MiB, after ${last.toFixed(0)} MiB; beyond max_streams: 429 (${refused})`,
    );
    options.log(`hostile clients: RSS ${idle.toFixed(0)} → ${during.toFixed(0)} → ${last.toFixed(0)} MiB`);
  } finally {
    for (const s of held) s.destroy();
  }
}
