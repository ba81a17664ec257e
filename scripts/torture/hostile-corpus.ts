/**
 * The hostile requests of scenario 3, generated from a seed: bad JSON, wrong types, huge
 * bodies, odd unicode, path tricks in slots and log names, PIDs that must never be targeted,
 * missing and wrong tokens, malformed HTTP. Every request is built to be refused: none names
 * the configured model with otherwise valid fields, the tracked slot or PID with a valid token,
 * or a stream that would stay open. A request that is accepted anyway is itself a finding.
 */
import { parseSlot } from "@corral/core";
import { Rng } from "./random.ts";

/**
 * What the corpus needs to know about the server it attacks.
 * @example
 * const ctx: CorpusContext = { token: "t", modelId: "tiny", trackedSlot: "0", trackedPid: 4242, ownPid: process.pid, parentPid: process.ppid, bystanderPid: 4300 }
 */
export interface CorpusContext {
  readonly token: string;
  /** the one configured model: never named with otherwise valid fields */
  readonly modelId: string;
  /** the slot holding the stand-in: never addressed with a valid token */
  readonly trackedSlot: string;
  readonly trackedPid: number;
  /** the server's own PID and its parent's */
  readonly ownPid: number;
  readonly parentPid: number;
  /** a PID of ours that is not a llama-server (a copied sleep) */
  readonly bystanderPid: number;
}

/**
 * A request through fetch, or raw bytes down a socket (for what fetch refuses to send).
 * @example
 * const r: HostileRequest = { kind: "raw", label: "no version", bytes: new TextEncoder().encode("GET /\r\n") }
 */
export type HostileRequest =
  | {
      readonly kind: "http";
      readonly label: string;
      readonly method: string;
      readonly path: string;
      readonly headers: Readonly<Record<string, string>>;
      readonly body?: string | Uint8Array | "stream";
      readonly streamBytes?: number;
    }
  | { readonly kind: "raw"; readonly label: string; readonly bytes: Uint8Array };

const enc = (s: string) => new TextEncoder().encode(s);

/** Slot strings with path tricks and other junk; none is a valid slot. */
const BAD_SLOTS = [
  "..",
  "../..",
  "../../etc/passwd",
  "..%2f..%2fetc%2fpasswd",
  "%2e%2e",
  "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
  "....//....//",
  "%252e%252e",
  "0%2f..%2f1",
  "0%00",
  "%00",
  "0;1",
  "-1",
  "1000",
  "0,0",
  "0,",
  ",",
  ",0",
  "0,,1",
  "1e3",
  "0x1",
  "%200",
  "0%20",
  "0%0a",
  "%F0%9F%92%A9",
  "%C0%AE%C0%AE",
  "%ff",
  "%E2%80%AE0",
  "%D9%A3",
  "0%0d%0aX-Injected:%201",
  "a",
  "both2",
  "NaN",
  "null",
  "x".repeat(300),
  "1".repeat(40),
  "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
] as const;

/** Slots that are valid but hold nothing here: refusals with 404. */
const EMPTY_SLOTS = ["5", "7", "12", "999", "5,6"] as const;

/** PIDs no request may target, as JSON values. */
function badPids(ctx: CorpusContext): unknown[] {
  return [
    0,
    1,
    -1,
    -2,
    2 ** 31,
    2 ** 31 - 1 + 1,
    2 ** 53,
    -(2 ** 31),
    1.5,
    1e308,
    "1",
    "-1",
    null,
    true,
    [],
    {},
    ctx.ownPid,
    ctx.parentPid,
    ctx.bystanderPid,
    2,
  ];
}

/** Strings that no model, process or slot is called. */
const ODD_STRINGS = [
  "",
  " ",
  "\u0000",
  "tiny\u0000",
  "\u202etiny",
  "ti\u200bny",
  "💩",
  "e\u0301\u0301\u0301",
  "\ud800",
  "\udfff",
  "\uffff",
  "\ufeff",
  "../../etc/passwd",
  "..\\..\\windows",
  "$(reboot)",
  "`id`",
  "'; DROP TABLE models; --",
  "<script>alert(1)</script>",
  "%s%s%s%n",
  "x".repeat(129),
  "y".repeat(5000),
  "bash",
  "init",
  "sh",
  "bun",
  "sleep",
  "redis-server",
  "__proto__",
  "constructor",
] as const;

const BAD_JSON = [
  "{",
  "}",
  "[",
  '{"model_id":',
  '{"model_id": "a",}',
  "{'model_id':'a'}",
  "nul",
  "NaN",
  "Infinity",
  "-",
  "1e99999x",
  '{"a":1}{"b":2}',
  "/* c */ {}",
  "\u0000",
  "\ufeff{}",
  '{"pid": 01}',
  '{"pid": 0x10}',
  "[1,2",
  '"unterminated',
  '{"a":"\\ud800"',
  '{"a": "\\x41"}',
  '{"__proto__": {"admin": true}',
] as const;

/** Routes that take a body. */
const BODY_ROUTES = [
  ["POST", "/api/v1/models/load"],
  ["POST", "/api/v1/models/unload"],
  ["POST", "/api/v1/models/switch"],
  ["POST", "/api/v1/kill"],
] as const;

/** Every route that changes something (cleanup-orphaned takes no body: only its token is hostile). */
const MUTATING_ROUTES = [...BODY_ROUTES, ["POST", "/api/v1/cleanup-orphaned"]] as const;

/**
 * Whether a `gpu_id` names a real slot once the API is done with it: the schema's pattern, or
 * a numeric string Elysia coerces into a GPU index (" 0", "0x1", "0\n" all mean a GPU). Such a
 * value with the configured model would load for real, so the corpus never pairs them.
 * @example
 * namesASlot(" 0") // true
 * namesASlot("0,0") // false (a GPU twice: refused)
 */
export function namesASlot(value: unknown): boolean {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof n === "number") return Number.isInteger(n) && n >= 0 && n <= 999;
  if (typeof value !== "string") return false;
  if (value === "both") return true;
  try {
    parseSlot(value);
    return true;
  } catch {
    return false;
  }
}

const READ_ROUTES = [
  "/api/v1/processes",
  "/api/v1/process-registry",
  "/api/v1/models",
  "/api/v1/orphans",
  "/api/v1/gpus",
  "/api/v1/history",
  "/api/v1/logs",
  "/api/v1/events",
  "/metrics",
  "/openapi",
] as const;

/**
 * `count` hostile requests for `ctx`, reproducible from `seed`.
 * @example
 * for (const request of hostileCorpus(ctx, 42, 10_000)) await send(request)
 */
export function hostileCorpus(ctx: CorpusContext, seed: number, count: number): HostileRequest[] {
  const rng = new Rng(seed);
  const kinds: Array<[number, (rng: Rng, ctx: CorpusContext) => HostileRequest]> = [
    [24, badAuth],
    [14, badJson],
    [20, wrongTypes],
    [16, pathTricks],
    [7, oddUnicode],
    [3, hugeBody],
    [8, rawHttp],
    [8, oddContentType],
  ];
  const total = kinds.reduce((sum, [w]) => sum + w, 0);
  const out: HostileRequest[] = [];
  while (out.length < count) {
    let roll = rng.next() * total;
    const make =
      kinds.find(([w]) => {
        roll -= w;
        return roll < 0;
      })?.[1] ?? badAuth;
    out.push(make(rng, ctx));
  }
  return out;
}

const auth = (ctx: CorpusContext) => ({ authorization: `Bearer ${ctx.token}` });
const json = { "content-type": "application/json" };

/** Missing, wrong and malformed tokens, on every route, with bodies that would otherwise work. */
function badAuth(rng: Rng, ctx: CorpusContext): HostileRequest {
  const wrong = rng.pick([
    undefined,
    "Bearer wrong",
    `Bearer ${ctx.token}x`,
    `Bearer ${ctx.token.slice(0, -1)}`,
    `Bearer ${ctx.token.toUpperCase()}`,
    "Bearer",
    "Bearer ",
    `Basic ${btoa(`corral:${ctx.token}`)}`,
    `Token ${ctx.token}`,
    `Bearer ${"A".repeat(rng.int(1000, 16_000))}`,
    `Bearer  ${ctx.token} extra`,
    `Bearer ${encodeURIComponent("\u00e9\u00e9")}`,
    "Bearer null",
    "Bearer undefined",
  ]);
  const headers: Record<string, string> = wrong === undefined ? {} : { authorization: wrong };
  if (rng.chance(0.5)) {
    const [method, path] = rng.pick(MUTATING_ROUTES);
    // With the right token these would load, unload or kill for real: auth must stop them.
    const body = rng.pick([
      { model_id: ctx.modelId, gpu_id: rng.pick(EMPTY_SLOTS) },
      { gpu_id: ctx.trackedSlot },
      { model_id: ctx.modelId, gpu_id: ctx.trackedSlot },
      { pid: ctx.trackedPid },
      { name: "llama-server" },
    ]);
    return {
      kind: "http",
      label: `auth ${wrong?.slice(0, 20) ?? "none"} ${method} ${path}`,
      method,
      path,
      headers: { ...headers, ...json },
      body: JSON.stringify(body),
    };
  }
  const target = rng.pick([
    ["DELETE", `/api/v1/processes/${ctx.trackedSlot}`],
    ["POST", `/api/v1/orphans/${ctx.trackedPid}/kill`],
    ["POST", `/api/v1/orphans/${ctx.trackedPid}/adopt`],
    ["GET", rng.pick(READ_ROUTES)],
    ["GET", `/api/v1/logs?gpu_id=${ctx.trackedSlot}&access_token=${rng.pick(["wrong", ctx.token.slice(1), ""])}`],
    ["GET", `/api/v1/processes?access_token=${ctx.token}`],
  ] as const);
  return {
    kind: "http",
    label: `auth ${wrong?.slice(0, 20) ?? "none"} ${target[0]} ${target[1].slice(0, 40)}`,
    method: target[0],
    path: target[1],
    headers,
  };
}

/** Bodies that are not JSON, or not UTF-8, with a valid token. */
function badJson(rng: Rng, ctx: CorpusContext): HostileRequest {
  const [method, path] = rng.pick([...BODY_ROUTES, ["POST", `/api/v1/orphans/${ctx.bystanderPid}/adopt`]] as const);
  const body: string | Uint8Array = rng.pick([
    () => rng.pick(BAD_JSON),
    () => "[".repeat(rng.int(1000, 60_000)),
    () => `{"a":${'{"a":'.repeat(rng.int(100, 6000))}`,
    () => rng.bytes(rng.int(1, 4096)),
    () => new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    () => `${JSON.stringify({ model_id: "nope" })}${rng.pick(["x", "}", ",", "\u0000"])}`,
  ])();
  return { kind: "http", label: `bad json ${path}`, method, path, headers: { ...auth(ctx), ...json }, body };
}

/** Valid JSON whose fields have the wrong type or range. Nothing here names the model with valid fields. */
function wrongTypes(rng: Rng, ctx: CorpusContext): HostileRequest {
  const junk = () =>
    rng.pick<unknown>([null, true, [], {}, [0], { $gt: 0 }, -1, 1.5, 1e308, "", "0", ...ODD_STRINGS, ...BAD_SLOTS]);
  const gpus = [
    -1,
    1.5,
    1000,
    1e308,
    null,
    [],
    {},
    [0, 1],
    "both2",
    "",
    "٣",
    "0\n",
    " 0",
    "0x1",
    "+0",
    "00",
    ...BAD_SLOTS,
  ];
  // Values the API would take as a slot are kept for the unknown model only (refused as 404).
  const badGpu = () => rng.pick<unknown>(gpus.filter((g) => !namesASlot(g)));
  const pick = rng.int(0, 5);
  let path: string;
  let body: Record<string, unknown>;
  if (pick === 0) {
    path = "/api/v1/models/load";
    // Either the model is unknown (404 whatever else is valid), or it is ours and another field is invalid.
    body = rng.chance(0.5)
      ? { model_id: junk(), ...(rng.chance(0.5) ? { gpu_id: rng.pick([...EMPTY_SLOTS, ...gpus]) } : {}) }
      : {
          model_id: ctx.modelId,
          ...rng.pick([
            { gpu_id: badGpu() },
            { gpu_id: "5", port: rng.pick([0, -1, 65_536, 1.5, 1e308]) },
            { gpu_id: "5", timeout_ms: rng.pick([0, -5, 1e12, "x"]) },
            { gpu_id: "5", replace: rng.pick(["yes", null, "maybe"]) },
          ]),
        };
  } else if (pick === 1) {
    path = "/api/v1/models/unload";
    body = rng.chance(0.7)
      ? { gpu_id: badGpu(), force: rng.pick([true, "yes", 1]) }
      : { gpu_id: rng.pick(EMPTY_SLOTS), timeout_ms: rng.pick([0, -1, "x", 1e12]) };
  } else if (pick === 2) {
    path = "/api/v1/models/switch";
    body = {
      model_id: rng.chance(0.5) ? junk() : "nope",
      gpu_id: rng.chance(0.5) ? rng.pick(gpus) : rng.pick(EMPTY_SLOTS),
    };
  } else if (pick === 3) {
    path = "/api/v1/kill";
    body = rng.pick([
      { pid: rng.pick(badPids(ctx)) },
      { name: rng.pick([...ODD_STRINGS, null, 42, []]) },
      { pid: rng.pick(badPids(ctx)), name: "x" },
      {},
      { pid: ctx.bystanderPid, force: "yes" },
    ]);
  } else if (pick === 4) {
    const pid = rng.pick([
      0,
      1,
      -1,
      "abc",
      "1e3",
      "0x10",
      "%20",
      2 ** 53,
      ctx.ownPid,
      ctx.parentPid,
      ctx.bystanderPid,
      ctx.trackedPid,
    ]);
    path = `/api/v1/orphans/${encodeURIComponent(String(pid))}/adopt`;
    body = rng.pick([{}, { slot: rng.pick(BAD_SLOTS) }, { model_id: junk() }, { slot: "5", model_id: "x" }]);
  } else {
    const pid = rng.pick([0, 1, -1, "abc", 2 ** 40, ctx.ownPid, ctx.parentPid, ctx.bystanderPid, ctx.trackedPid]);
    path = `/api/v1/orphans/${encodeURIComponent(String(pid))}/kill?include_foreign=${rng.pick(["true", "maybe", "1", ""])}&force=${rng.pick(["true", "x"])}`;
    body = {};
  }
  if (rng.chance(0.1)) body = { ...body, __proto__: { admin: true }, constructor: { prototype: { polluted: true } } };
  return {
    kind: "http",
    label: `types ${path.slice(0, 40)}`,
    method: "POST",
    path,
    headers: { ...auth(ctx), ...json },
    body: JSON.stringify(body),
  };
}

/** Slots and log names with path tricks, in paths and query strings, with a valid token. */
function pathTricks(rng: Rng, ctx: CorpusContext): HostileRequest {
  const slot = rng.pick(BAD_SLOTS);
  const [method, path] = rng.pick([
    ["GET", `/api/v1/processes/${slot}`],
    ["POST", `/api/v1/processes/${slot}/verify`],
    ["DELETE", `/api/v1/processes/${slot}`],
    ["DELETE", `/api/v1/processes/${rng.pick(EMPTY_SLOTS)}?force=${rng.pick(["true", "maybe"])}`],
    ["GET", `/api/v1/logs?gpu_id=${slot}&lines=${rng.pick(["10", "-1", "0", "1e9", "abc", "10001", "1.5", ""])}`],
    ["GET", `/api/v1/logs?gpu_id=${slot}&follow=${rng.pick(["maybe", "2", "yes"])}`],
    [
      "GET",
      `/api/v1/logs?gpu_id=${ctx.trackedSlot}&lines=${rng.pick(["-1", "0", "1e9", "abc", "10001", "1.5", "%00"])}`,
    ],
    ["GET", `/api/v1/history?slot=${slot}&limit=${rng.pick(["-1", "0", "1e9", "x", "10"])}`],
    ["GET", `/api/v1/processes/${slot}?__proto__[admin]=1&constructor[prototype][x]=1`],
    [
      "GET",
      `/${rng.pick(["..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/etc/passwd", "index.html/..%2f..%2f..%2fetc%2fpasswd", "..%5c..%5cetc%5cpasswd", "assets/..%2f..%2fcanary.txt"])}`,
    ],
    ["GET", `/api/v1/${rng.pick(["..%2fmetrics", "%2e%2e/openapi", "processes%2f0", "PROCESSES", "processes/"])}`],
  ] as const);
  return { kind: "http", label: `path ${method} ${path.slice(0, 50)}`, method, path, headers: auth(ctx) };
}

/** Odd unicode in names, ids and headers. */
function oddUnicode(rng: Rng, ctx: CorpusContext): HostileRequest {
  const s = rng.pick(ODD_STRINGS) + rng.pick(["", "\u0301", "\u202e", "\ud83d", "\u0000"]);
  const [path, body] = rng.pick([
    ["/api/v1/kill", { name: s }],
    ["/api/v1/models/load", { model_id: s, gpu_id: rng.pick(EMPTY_SLOTS) }],
    ["/api/v1/models/switch", { model_id: s, gpu_id: rng.pick(EMPTY_SLOTS) }],
    [`/api/v1/orphans/${ctx.bystanderPid}/adopt`, { model_id: s, slot: "5" }],
  ] as const);
  return {
    kind: "http",
    label: `unicode ${path}`,
    method: "POST",
    path,
    headers: { ...auth(ctx), ...json, "x-odd": escape(s) },
    body: JSON.stringify(body),
  };
}

/** Bodies past the 64 KiB limit: declared, chunked without a length, and past Bun's 1 MiB backstop. */
function hugeBody(rng: Rng, ctx: CorpusContext): HostileRequest {
  const [method, path] = rng.pick(BODY_ROUTES);
  const size = rng.pick([64 * 1024 + 1, 200_000, 1024 * 1024 + 1, 5 * 1024 * 1024]);
  if (rng.chance(0.3)) {
    return {
      kind: "http",
      label: `huge chunked ${size} ${path}`,
      method,
      path,
      headers: { ...auth(ctx), ...json },
      body: "stream",
      streamBytes: size,
    };
  }
  const body = JSON.stringify({ model_id: "x".repeat(size), gpu_id: "5" });
  return { kind: "http", label: `huge ${size} ${path}`, method, path, headers: { ...auth(ctx), ...json }, body };
}

/** Malformed HTTP that fetch would never send. */
function rawHttp(rng: Rng, ctx: CorpusContext): HostileRequest {
  const a = `Authorization: Bearer ${ctx.token}\r\n`;
  const text = rng.pick([
    "GET /api/v1/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    `GET /api/v1/logs?gpu_id=../../etc/passwd HTTP/1.1\r\nHost: x\r\n${a}\r\n`,
    `GET /api/v1/processes/../../../etc/passwd HTTP/1.1\r\nHost: x\r\n${a}\r\n`,
    `GET http://evil.example/api/v1/process-registry HTTP/1.1\r\nHost: x\r\n\r\n`,
    `GET //api/v1/process-registry HTTP/1.1\r\nHost: x\r\n\r\n`,
    "FOO /api/v1/processes HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /api/v1/processes HTTP/9.9\r\nHost: x\r\n\r\n",
    "GET /api/v1/processes\r\n\r\n",
    "GET /\r\n",
    "\u0000\u0001\u0002\u0003 garbage\r\n\r\n",
    "GET /api/v1/health HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n",
    `POST /api/v1/kill HTTP/1.1\r\nHost: x\r\n${a}Content-Length: 10\r\nContent-Length: 12\r\n\r\n{"pid": 1}`,
    `POST /api/v1/kill HTTP/1.1\r\nHost: x\r\n${a}Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
    `POST /api/v1/kill HTTP/1.1\r\nHost: x\r\n${a}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`,
    `POST /api/v1/models/load HTTP/1.1\r\nHost: x\r\n${a}Content-Length: 1000\r\n\r\n{"model_id":`,
    `GET /api/v1/processes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ctx.token}\r\n X-Folded: yes\r\n\r\n`,
    `GET /api/v1/processes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nAuthorization: Bearer ${ctx.token}\r\n\r\n`,
    `GET /api/v1/processes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ctx.token}\u00e9\r\n\r\n`,
    `GET /api/v1/${"a".repeat(rng.int(10_000, 70_000))} HTTP/1.1\r\nHost: x\r\n\r\n`,
    `GET /api/v1/processes HTTP/1.1\r\nHost: x\r\n${"X-Junk: y\r\n".repeat(rng.int(100, 2000))}\r\n`,
    `DELETE /api/v1/processes/${ctx.trackedSlot} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n\r\n`,
  ]);
  return { kind: "raw", label: `raw ${JSON.stringify(text.slice(0, 40))}`, bytes: enc(text) };
}

/** Bodies that claim another type: forms, multipart, text. Still JSON-parsed, still refused. */
function oddContentType(rng: Rng, ctx: CorpusContext): HostileRequest {
  const [method, path] = rng.pick(BODY_ROUTES);
  const [type, body] = rng.pick([
    ["application/x-www-form-urlencoded", `model_id=${ctx.modelId}&gpu_id=5&pid=${ctx.trackedPid}`],
    [
      "multipart/form-data; boundary=x",
      `--x\r\nContent-Disposition: form-data; name="model_id"\r\n\r\n${ctx.modelId}\r\n--x--\r\n`,
    ],
    ["text/plain", `model_id=${ctx.modelId}`],
    ["application/xml", `<load><model_id>${ctx.modelId}</model_id></load>`],
    ["application/json; charset=utf-16", "\u0000{\u0000}"],
    ["", "{not json"],
  ] as const);
  return {
    kind: "http",
    label: `content-type ${type.slice(0, 30)} ${path}`,
    method,
    path,
    headers: { ...auth(ctx), ...(type ? { "content-type": type } : {}) },
    body,
  };
}
