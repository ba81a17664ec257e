import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Controller,
  createController,
  defaultProbe,
  homeIdOf,
  isServerProcess,
  MARKER_ENV,
  type ProcessInfo,
  type ProcessProbe,
} from "@corral/core";
import { Kind, type Static, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { freePort, standInServer } from "../../core/test/fixtures/index.ts";
import { type AppDeps, createApp } from "../src/app.ts";
import { ErrorSchema } from "../src/schemas.ts";

export { freePort, spawnStandIn, standInServer, waitFor } from "../../core/test/fixtures/index.ts";

/**
 * The token every test app takes (as the server's own token, admin scope), and that {@link req}
 * sends unless the test sets its own `authorization` header: tests call the API the way a user does.
 */
export const TEST_TOKEN = "test-token-0123456789abcdefghijklmnopqrstuv";

/**
 * A request to a test app with the test token, for tests that build their own `Request`.
 * @example
 * await app.handle(authed("/api/v1/events"))
 */
export function authed(path: string, init: RequestInit = {}): Request {
  const headers = new Headers(init.headers);
  if (!headers.has("authorization")) headers.set("authorization", `Bearer ${TEST_TOKEN}`);
  return new Request(`http://localhost${path}`, { ...init, headers });
}

/** A model in a test home's config. */
export interface TestModel {
  readonly id: string;
  readonly args?: readonly string[];
  readonly gpu?: string;
  readonly port?: number;
}

/** A temp corral home whose config points at the stand-in llama-server, with a controller over it. */
export interface TestHome {
  readonly home: string;
  readonly configFile: string;
  readonly controller: Controller;
  /** every PID the registry of this home ever recorded: the only ones a test may kill */
  readonly pids: Set<number>;
  app(deps?: Partial<AppDeps>): ReturnType<typeof createApp>;
  /** SIGKILLs the recorded PIDs (whole process groups: the stand-ins run detached) and removes the home. */
  cleanup(): void;
}

/**
 * Writes `corral.json` (stand-in llama-server, small model files, a random port range) into a
 * temp home and opens a controller on it. No GPU figures unless `gpuQuery` is given.
 * @example
 * const t = await testHome([{ id: "tiny", args: ["--fake-load-ms", "200"] }])
 */
export async function testHome(
  models: readonly TestModel[],
  options: { readonly config?: Record<string, unknown>; readonly gpuQuery?: Controller["gpuQuery"] } = {},
): Promise<TestHome> {
  const home = mkdtempSync(join(tmpdir(), "corral-api-"));
  const server = await standInServer();
  const base = await freePort();
  const config = {
    llama_server: server,
    host: "127.0.0.1",
    ports: { range: [base, Math.min(base + 50, 65_535)], gpu: {} },
    timeouts: { load_ms: 15_000, stop_ms: 3_000, health_ms: 1_000 },
    gpu_release_wait_ms: 0,
    models: models.map((m) => {
      const path = join(home, `${m.id}.gguf`);
      writeFileSync(path, "GGUF stand-in model\n");
      return {
        id: m.id,
        path,
        args: m.args ?? [],
        ...(m.gpu ? { gpu: m.gpu } : {}),
        ...(m.port ? { port: m.port } : {}),
      };
    }),
    ...options.config,
  };
  const configFile = join(home, "corral.json");
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const pids = new Set<number>();
  const probe = scopedProbe(pids, homeIdOf(home));
  const controller = await createController({
    home,
    configFile,
    probe,
    gpuQuery: options.gpuQuery ?? (async () => undefined),
  });
  controller.registry.subscribe((e) => {
    if (e.pid) pids.add(e.pid);
  });
  return {
    home,
    configFile,
    controller,
    pids,
    // The test token, as a user's server has one; tests about auth pass their own.
    app: (deps = {}) => createApp({ controller, token: TEST_TOKEN, ...deps }),
    cleanup() {
      killPids(pids);
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * The real process probe, blind to llama-servers this test did not start: other test files
 * run their own stand-ins at the same time, and an orphan scan (then a cleanup) must never see
 * them. A llama-server counts as this test's when its PID or an ancestor's is in `pids`, or it
 * carries this home's marker (spawned by this controller, not yet registered).
 */
export function scopedProbe(pids: Set<number>, homeId: string): ProcessProbe {
  const real = defaultProbe();
  const mine = async (p: ProcessInfo, byPid: Map<number, ProcessInfo>): Promise<boolean> => {
    for (let q: ProcessInfo | undefined = p, hops = 0; q && hops < 64; q = byPid.get(q.ppid), hops++) {
      if (pids.has(q.pid)) return true;
    }
    return (await real.environ(p.pid))?.[MARKER_ENV.home] === homeId;
  };
  return {
    list: async () => {
      const all = await real.list();
      const byPid = new Map(all.map((p) => [p.pid, p]));
      const keep = await Promise.all(all.map(async (p) => !isServerProcess(p) || (await mine(p, byPid))));
      return all.filter((_, i) => keep[i]);
    },
    get: (pid) => real.get(pid),
    environ: (pid) => real.environ(pid),
  };
}

/** SIGKILLs each PID's process group (the stand-in and its fake children), then the PID itself. */
export function killPids(pids: Iterable<number>): void {
  for (const pid of pids) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

/** A JSON request to the app, with the test token unless `headers` carries an `authorization` of its own. */
export function req(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Request {
  const own = Object.keys(headers).some((name) => name.toLowerCase() === "authorization");
  return new Request(`http://localhost${path}`, {
    method,
    headers: {
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
      ...(own ? {} : { authorization: `Bearer ${TEST_TOKEN}` }),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
}

/**
 * Asserts that a response body has a schema's shape (TypeBox's `Value.Check`), naming every
 * field that does not (`Value.Errors`), and returns it typed.
 * @example
 * const { processes } = expectShape(ProcessListSchema, await res.json())
 */
export function expectShape<T extends TSchema>(schema: T, body: unknown): Static<T> {
  if (Value.Check(schema, body)) return body;
  const errors = [...Value.Errors(schema, body)]
    .slice(0, 8)
    .map((e) => `${e.path || "/"}: ${e.message} (got ${JSON.stringify(e.value)?.slice(0, 120)})`);
  const name = schema.$id ?? schema.title ?? "the declared schema";
  throw new Error(
    `body does not match ${name}:\n  ${errors.join("\n  ")}\nbody: ${JSON.stringify(body)?.slice(0, 1500)}`,
  );
}

/**
 * The `data:` payloads of an event stream's text (complete lines only), parsed, each checked
 * against `schema`.
 * @example
 * const events = sseData(text, HistoryEventSchema)
 */
export function sseData<T extends TSchema>(text: string, schema: T): Static<T>[] {
  return text
    .slice(0, text.lastIndexOf("\n") + 1)
    .split("\n")
    .filter((line) => line.startsWith("data: "))
    .map((line) => expectShape(schema, JSON.parse(line.slice(6))));
}

/** The parts of an Elysia app {@link call} reads: `handle`, and `routes` for the declared response schemas. */
export interface Callable {
  handle(request: Request): Promise<Response>;
  readonly routes?: ReadonlyArray<{ method: string; path: string; hooks?: { response?: unknown } }>;
}

/**
 * The response schema a route declares, for the status sent (`response: X` means 200).
 * @example
 * declaredResponse(app, "GET", "/api/v1/processes/0", 200) // ProcessStatusSchema
 */
export function declaredResponse(app: Callable, method: string, path: string, status: number): TSchema | undefined {
  const pathname = new URL(path, "http://localhost").pathname;
  const route = app.routes?.find(
    (r) => r.method === method && new RegExp(`^${r.path.replace(/:[^/]+/g, "[^/]+")}$`).test(pathname),
  );
  const declared = route?.hooks?.response as (TSchema & Record<number, TSchema>) | undefined;
  if (!declared) return undefined;
  return Kind in declared ? (status === 200 ? declared : undefined) : declared[status];
}

/**
 * Sends a request and returns status and parsed JSON body. Every JSON body is checked against
 * what the route declares with {@link expectShape}: a 200 against its response schema (also
 * where Elysia skips the check, as GET /processes does for speed), an error against
 * `{ error: { code, message } }`.
 */
export async function call(
  app: Callable,
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await app.handle(req(method, path, body, headers));
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (metrics)
  }
  if (res.headers.get("content-type")?.includes("json")) {
    const schema = res.status >= 400 ? ErrorSchema : declaredResponse(app, method, path, res.status);
    if (schema) expectShape(schema, parsed);
  }
  return { status: res.status, body: parsed, headers: res.headers };
}
