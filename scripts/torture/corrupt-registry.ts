/**
 * Scenario 4, corrupt registry files: empty, truncated, binary, wrong types, very large, a
 * symlink to garbage, a folder in its place. Every reader and writer (store, registry,
 * controller, API, `corral serve`) must refuse with a clear RegistryCorruptError, keep the
 * original bytes aside, and overwrite nothing until the user resets the registry. A file
 * whose document is fine but whose entries are not must keep those entries byte for byte.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Controller, createController, type ProcessEntry, RegistryCorruptError } from "@corral/core";
import { createApp } from "../../packages/api/src/index.ts";
import { bearer, TORTURE_TOKEN } from "./auth.ts";
import { makeHome } from "./home.ts";
import { Rng } from "./random.ts";
import { Scope } from "./scope.ts";
import { runServe } from "./serve-proc.ts";
import { messageOf, type Scenario, type ScenarioOptions, type ScenarioResult, Tally } from "./types.ts";

/**
 * Scenario 4: corrupt registry files are refused with RegistryCorruptError, kept aside, never overwritten.
 * @example
 * const result = await corruptRegistry.run({ form: "short", seed: 1, log: console.error })
 */
export const corruptRegistry: Scenario = {
  id: 4,
  name: "corrupt registry files",
  run: runCorruptRegistry,
};

/** One way to break the file: bytes to write, or a layout to make. */
interface Variant {
  readonly name: string;
  /** bytes of processes.json; for "symlink", the decoy's bytes */
  readonly bytes: Uint8Array;
  readonly layout?: "file" | "symlink" | "folder";
}

function entry(slot: string): ProcessEntry {
  return {
    pid: 40_000 + Number(slot),
    model_id: "tiny",
    model_name: "tiny",
    model_path: "/models/tiny.gguf",
    gpu_id: slot,
    port: 30_000 + Number(slot),
    started_at: "2026-11-26T12:00:00.000Z",
    command_line: ["llama-server", "-m", "/models/tiny.gguf"],
    status: "running",
    proc_start_ms: 1_700_000_000_000,
    executable: "/opt/llama/llama-server",
  };
}

function validDoc(entries: number): string {
  const processes: Record<string, ProcessEntry> = {};
  for (let i = 0; i < entries; i++) processes[String(i)] = entry(String(i));
  return JSON.stringify({ version: "1.1", last_updated: "2026-11-26T12:00:00.000Z", processes }, null, 2);
}

function variants(rng: Rng, form: ScenarioOptions["form"]): Variant[] {
  const text = (s: string) => new TextEncoder().encode(s);
  const doc = validDoc(3);
  const bigMiB = form === "long" ? 32 : 4;
  const big = validDoc(Math.ceil((bigMiB * 1024 * 1024) / doc.length) * 3);
  const repeat = form === "long" ? 4 : 2;
  const out: Variant[] = [
    { name: "empty", bytes: new Uint8Array(0) },
    { name: "whitespace only", bytes: text("  \n\t\r\n ") },
    { name: "NUL-filled (a crash on some filesystems)", bytes: new Uint8Array(4096) },
    {
      name: "invalid UTF-8",
      bytes: new Uint8Array([...text('{"version":"'), 0xff, 0xfe, 0xc0, 0xaf, ...text('","processes":{}}')]),
    },
    { name: "top level is an array", bytes: text("[]") },
    { name: "top level is null", bytes: text("null") },
    { name: "top level is a number", bytes: text("42") },
    { name: "top level is a string", bytes: text('"processes"') },
    { name: "processes is an array", bytes: text('{"version":"1.1","last_updated":"x","processes":[]}') },
    { name: "processes is a string", bytes: text('{"version":"1.1","last_updated":"x","processes":"0"}') },
    { name: "processes is missing", bytes: text('{"version":"1.1","last_updated":"x"}') },
    { name: "version is a number", bytes: text('{"version":1.1,"last_updated":"x","processes":{}}') },
    { name: "last_updated is an object", bytes: text('{"version":"1.1","last_updated":{},"processes":{}}') },
    { name: "200k levels of nesting", bytes: text("[".repeat(200_000)) },
    { name: "trailing garbage", bytes: text(`${doc}}garbage`) },
    { name: "two documents", bytes: text(doc + doc) },
    { name: "byte order mark then garbage", bytes: text("\ufeff{garbage") },
    { name: `very large (${bigMiB} MiB), truncated`, bytes: text(big.slice(0, big.length - 7)) },
    { name: `very large (${bigMiB} MiB) of garbage`, bytes: new Uint8Array(bigMiB * 1024 * 1024).fill(0x41) },
    {
      name: "a symlink to a garbage file outside the home",
      bytes: text("root:x:0:0:root:/root:/bin/bash\n"),
      layout: "symlink",
    },
    { name: "a folder where the file should be", bytes: new Uint8Array(0), layout: "folder" },
  ];
  for (let i = 0; i < repeat; i++) {
    out.push({ name: `truncated at a random byte (#${i + 1})`, bytes: text(doc.slice(0, rng.int(1, doc.length - 2))) });
    out.push({ name: `random binary (#${i + 1})`, bytes: rng.bytes(rng.int(1, 8192)) });
  }
  return out;
}

async function runCorruptRegistry(options: ScenarioOptions): Promise<ScenarioResult> {
  const tally = new Tally(corruptRegistry.id, corruptRegistry.name);
  const rng = new Rng(options.seed);
  const scope = new Scope();
  try {
    const all = variants(rng, options.form);
    for (const [i, variant] of all.entries()) {
      tally.trial();
      // `corral serve` costs a second per start: the long form starts it for every variant.
      const serve = options.form === "long" || i < 2;
      await checkVariant(scope, variant, serve, tally);
      options.log(`corrupt registry: ${i + 1}/${all.length} ${variant.name}`);
    }
    tally.trial();
    await checkInvalidEntriesKept(scope, tally);
  } catch (error) {
    tally.fail(`the scenario itself failed: ${messageOf(error)}`);
  } finally {
    await scope.cleanup();
  }
  return tally.result();
}

/** The original, as it lies: a file's bytes, a link's target's bytes, or "folder". */
function original(file: string): string {
  if (!existsSync(file)) return "missing";
  const info = lstatSync(file);
  if (info.isDirectory()) return `folder:${readdirSync(file).join(",")}`;
  return `${info.isSymbolicLink() ? "link" : "file"}:${Buffer.from(readFileSync(file)).toString("base64")}`;
}

async function checkVariant(scope: Scope, variant: Variant, serve: boolean, tally: Tally): Promise<void> {
  const dir = scope.tempDir("corrupt");
  const h = await makeHome(scope, join(dir, "home"), [{ id: "tiny" }]);
  const file = h.registry;
  const decoy = join(dir, "decoy.txt");
  if (variant.layout === "symlink") {
    writeFileSync(decoy, variant.bytes);
    symlinkSync(decoy, file);
  } else if (variant.layout === "folder") mkdirSync(file);
  else writeFileSync(file, variant.bytes);
  const before = original(file);
  const decoyBefore = existsSync(decoy) ? readFileSync(decoy) : undefined;
  const say = (what: string) => `${variant.name}: ${what}`;
  const controller = await createController({
    home: h.home,
    configFile: h.configFile,
    probe: scope.probe(),
    gpuQuery: async () => undefined,
  });
  const { registry } = controller;

  const first = await registry.snapshot().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (
    tally.check(
      first instanceof RegistryCorruptError,
      say(`read gave ${first === undefined ? "no error" : messageOf(first)}, not RegistryCorruptError`),
    )
  ) {
    const e = first as RegistryCorruptError;
    tally.check(e.file === file && e.message.includes(file), say(`the error does not name the file: ${e.message}`));
    tally.check(e.reason.length > 0, say("the error gives no reason"));
    if (variant.layout !== "folder") {
      const kept =
        e.backup !== undefined &&
        existsSync(e.backup) &&
        Buffer.from(readFileSync(e.backup)).equals(Buffer.from(variant.bytes));
      tally.check(kept, say(`the original was not kept aside (backup ${e.backup ?? "none"})`));
    }
  }
  await expectRefused(say, tally, {
    register: () => registry.register("0", entry("0")),
    unregister: () => registry.unregister("1"),
    "store.update": () => registry.store.update(() => undefined),
    verifyAll: () => registry.verifyAll(),
    prune: () => registry.prune(),
    cleanupOrphans: () => registry.cleanupOrphans(),
    recover: () => controller.recover(),
    load: () => controller.load("tiny", { gpu: 0 }),
  });
  await checkApi(controller, say, tally);
  tally.check(original(file) === before, say("the file was changed"));
  if (serve) {
    const run = await runServe(scope, h.home, h.configFile, 30_000);
    tally.check(
      run.exitCode !== null && run.exitCode !== 0,
      say(`corral serve did not refuse to start (${run.exitCode ?? "still running"})`),
    );
    tally.check(
      /corrupt/i.test(run.output),
      say(`corral serve's error does not say the registry is corrupt: ${run.output.slice(-300)}`),
    );
    tally.check(original(file) === before, say("corral serve changed the file"));
  }
  const copies = readdirSync(h.home).filter((n) => n.startsWith("processes.json.corrupt-"));
  tally.check(copies.length <= 1, say(`${copies.length} copies kept aside for one corrupt file`));
  tally.check(
    readdirSync(h.home).every((n) => !n.endsWith(".tmp")),
    say("a temp file was left behind"),
  );
  tally.check(
    (await scope.markedServers()).length === 0,
    say("a llama-server was started although the registry is unreadable"),
  );

  // The user's explicit reset moves the original aside and starts over.
  try {
    const { backup } = await registry.store.reset();
    tally.check(backup !== undefined && original(backup) === before, say("reset did not keep the original aside"));
    await registry.register("0", entry("0"));
    tally.check((await registry.get("0"))?.pid === entry("0").pid, say("a write after reset did not take effect"));
  } catch (error) {
    tally.fail(say(`reset, then register, failed: ${messageOf(error)}`));
  }
  if (decoyBefore) tally.check(readFileSync(decoy).equals(decoyBefore), say("the symlink's target was written to"));
}

/** Each operation must reject with RegistryCorruptError. */
async function expectRefused(
  say: (what: string) => string,
  tally: Tally,
  operations: Record<string, () => Promise<unknown>>,
): Promise<void> {
  for (const [name, op] of Object.entries(operations)) {
    const outcome = await op().then(
      () => "it succeeded",
      (e: unknown) => (e instanceof RegistryCorruptError ? undefined : messageOf(e)),
    );
    tally.check(outcome === undefined, () => say(`${name} did not refuse with RegistryCorruptError: ${outcome}`));
  }
}

async function checkApi(controller: Controller, say: (what: string) => string, tally: Tally): Promise<void> {
  const app = createApp({ controller, token: TORTURE_TOKEN });
  const calls: Array<[string, string, unknown?]> = [
    ["GET", "/api/v1/process-registry"],
    ["GET", "/api/v1/processes"],
    ["GET", "/api/v1/models"],
    ["POST", "/api/v1/models/load", { model_id: "tiny", gpu_id: 0 }],
    ["POST", "/api/v1/models/unload", { gpu_id: 0 }],
    ["POST", "/api/v1/cleanup-orphaned"],
  ];
  for (const [method, path, body] of calls) {
    const res = await app.handle(
      new Request(`http://localhost${path}`, {
        method,
        headers: bearer(body === undefined ? {} : { "content-type": "application/json" }),
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
    const json = (await res.json().catch(() => undefined)) as { error?: { code?: string } } | undefined;
    tally.check(res.status === 503 && json?.error?.code === "REGISTRY_CORRUPT", () =>
      say(`${method} ${path} answered ${res.status} ${json?.error?.code ?? ""}, not 503 REGISTRY_CORRUPT`),
    );
  }
}

/**
 * A sound document with entries of the wrong types: they are reported, and a write to another
 * slot keeps each of them exactly as it was.
 */
async function checkInvalidEntriesKept(scope: Scope, tally: Tally): Promise<void> {
  const h = await makeHome(scope, join(scope.tempDir("corrupt"), "home"), [{ id: "tiny" }]);
  const invalid: Record<string, unknown> = {
    "0": { ...entry("0"), pid: "4242" },
    "2": 42,
    "3": null,
    "4": { ...entry("4"), port: 70_000, gpu_id: [0] },
    "5": { pid: 1 },
    "6": { ...entry("6"), command_line: "llama-server -m x" },
  };
  const doc = {
    version: "1.0",
    last_updated: "2026-11-26T12:00:00",
    processes: { ...invalid, "1": entry("1") },
    extra_field: { kept: true },
  };
  writeFileSync(h.registry, JSON.stringify(doc, null, 2));
  const controller = await createController({
    home: h.home,
    configFile: h.configFile,
    probe: scope.probe(),
    gpuQuery: async () => undefined,
  });
  try {
    const snapshot = await controller.registry.snapshot();
    tally.check(
      snapshot.invalid
        .map((i) => i.slot)
        .sort()
        .join(",") === Object.keys(invalid).sort().join(","),
      `invalid entries: reported ${snapshot.invalid.map((i) => i.slot).join(",")}, expected ${Object.keys(invalid).join(",")}`,
    );
    await controller.registry.register("9", entry("9"));
    await controller.registry.unregister("1");
    const after = JSON.parse(readFileSync(h.registry, "utf8")) as typeof doc;
    for (const [slot, raw] of Object.entries(invalid)) {
      const kept = JSON.stringify((after.processes as Record<string, unknown>)[slot]) === JSON.stringify(raw);
      if (!kept)
        tally.lose(
          1,
          `invalid entry ${slot} was not kept as it was: ${JSON.stringify((after.processes as Record<string, unknown>)[slot])}`,
        );
    }
    tally.check(
      JSON.stringify(after.extra_field) === JSON.stringify(doc.extra_field),
      "an unknown top-level field was dropped",
    );
    tally.check(
      (after.processes as Record<string, unknown>)["9"] !== undefined,
      "the new entry was not written next to the invalid ones",
    );
  } catch (error) {
    tally.fail(`invalid entries: ${messageOf(error)}`);
  }
}
