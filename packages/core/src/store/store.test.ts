import { afterEach, describe, expect, it } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { storeEntry } from "../../test/helpers/store-entry.ts";
import { InvalidInputError, RegistryCorruptError } from "../errors.ts";
import { REGISTRY_VERSION } from "./schema.ts";
import { createStore } from "./store.ts";

const dirs: string[] = [];
function tempHome(): string {
  const dir = mkdtempSync(join(tmpdir(), "corral-store-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A clock that moves one second per call, so every write has a distinct `last_updated`. */
function ticking(start = Date.UTC(2026, 10, 26, 12, 15, 0, 123)): () => number {
  let t = start;
  return () => (t += 1000);
}

const ORIGINAL = `{
  "version": "1.0",
  "last_updated": "2024-05-01T10:20:30.123456",
  "processes": {
    "0": {
      "pid": 4242,
      "model_id": "qwen-7b",
      "model_name": "Qwen 7B",
      "model_path": "C:\\\\models\\\\qwen-7b.gguf",
      "gpu_id": 0,
      "port": 8081,
      "started_at": "2024-05-01T10:20:30.123456",
      "command_line": ["C:\\\\llama\\\\llama-server.exe", "-m", "C:\\\\models\\\\qwen-7b.gguf", "--port", "8081"],
      "status": "running"
    },
    "1,2": {
      "pid": 4343,
      "model_id": "llama-70b",
      "model_name": "Llama 70B",
      "model_path": "/models/llama-70b.gguf",
      "gpu_id": "1,2",
      "port": 8082,
      "started_at": "2024-05-01T11:00:00",
      "command_line": ["llama-server", "-m", "/models/llama-70b.gguf"],
      "status": "loading"
    }
  }
}
`;

describe("createStore", () => {
  it("reads a missing file, or a missing home folder, as an empty registry", async () => {
    const home = tempHome();
    for (const file of [join(home, "processes.json"), join(home, "not", "yet", "processes.json")]) {
      const snapshot = await createStore({ file }).read();
      expect(snapshot.entries).toEqual({});
      expect(snapshot.invalid).toEqual([]);
      expect(snapshot.version).toBe(REGISTRY_VERSION);
    }
  });

  it("returns from read what update wrote, and writes the documented format", async () => {
    const file = join(tempHome(), "home", "processes.json");
    const now = ticking();
    const store = createStore({ file, now });
    const result = await store.update((entries) => {
      entries["0"] = storeEntry("0");
      return "added";
    });
    expect(result).toBe("added");
    const snapshot = await store.read();
    expect(snapshot.entries).toEqual({ "0": storeEntry("0") });
    expect(snapshot.version).toBe(REGISTRY_VERSION);
    expect(snapshot.last_updated).toBe("2026-11-26T12:15:01.123Z");
    const text = readFileSync(file, "utf8");
    const expected = {
      version: REGISTRY_VERSION,
      last_updated: snapshot.last_updated,
      processes: { "0": storeEntry("0") },
    };
    expect(text).toBe(`${JSON.stringify(expected, null, 2)}\n`);
    expect(statSync(join(file, "..")).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(file, "..")).filter((name) => name.endsWith(".tmp"))).toEqual([]);
  });

  it("loads the original controller's file unchanged: Windows paths, naive timestamps, gpu lists", async () => {
    const file = join(tempHome(), "processes.json");
    writeFileSync(file, ORIGINAL);
    const snapshot = await createStore({ file }).read();
    expect(snapshot.invalid).toEqual([]);
    expect(snapshot.version).toBe("1.0");
    expect(snapshot.last_updated).toBe("2024-05-01T10:20:30.123456");
    expect(snapshot.entries["0"]?.model_path).toBe("C:\\models\\qwen-7b.gguf");
    expect(snapshot.entries["0"]?.started_at).toBe("2024-05-01T10:20:30.123456");
    expect(snapshot.entries["0"]?.gpu_id).toBe(0);
    expect(snapshot.entries["1,2"]?.gpu_id).toBe("1,2");
    expect(snapshot.entries["1,2"]?.command_line).toEqual(["llama-server", "-m", "/models/llama-70b.gguf"]);
  });

  it("keeps the original's entries and unknown top-level fields when it writes", async () => {
    const file = join(tempHome(), "processes.json");
    const original = JSON.parse(ORIGINAL);
    writeFileSync(file, JSON.stringify({ ...original, written_by: "controller 0.3" }));
    const store = createStore({ file });
    await store.update((entries) => {
      entries["3"] = storeEntry("3");
    });
    const written = JSON.parse(readFileSync(file, "utf8"));
    expect(written.written_by).toBe("controller 0.3");
    expect(written.version).toBe(REGISTRY_VERSION);
    expect(written.processes["0"]).toEqual(original.processes["0"]);
    expect(written.processes["1,2"]).toEqual(original.processes["1,2"]);
    expect(Object.keys(written.processes)).toEqual(["0", "3", "1,2"]);
  });

  it("accepts a file that starts with a byte order mark", async () => {
    const file = join(tempHome(), "processes.json");
    writeFileSync(file, `\uFEFF${ORIGINAL}`);
    expect(Object.keys((await createStore({ file }).read()).entries)).toEqual(["0", "1,2"]);
  });

  it("does not write when mutate changes nothing", async () => {
    const file = join(tempHome(), "processes.json");
    const store = createStore({ file, now: ticking() });
    await store.update((entries) => {
      entries["0"] = storeEntry("0");
    });
    const before = readFileSync(file, "utf8");
    const seen = await store.update((entries) => Object.keys(entries));
    expect(seen).toEqual(["0"]);
    await store.update((entries) => {
      entries["0"] = storeEntry("0");
    });
    expect(readFileSync(file, "utf8")).toBe(before);
  });

  it("writes nothing when mutate throws, and lets the next update through", async () => {
    const file = join(tempHome(), "processes.json");
    const store = createStore({ file, lockTimeoutMs: 2000 });
    await store.update((entries) => {
      entries["0"] = storeEntry("0");
    });
    const before = readFileSync(file, "utf8");
    const failing = store.update((entries) => {
      delete entries["0"];
      throw new Error("changed my mind");
    });
    await expect(failing).rejects.toThrow("changed my mind");
    expect(readFileSync(file, "utf8")).toBe(before);
    await store.update((entries) => {
      entries["1"] = storeEntry("1");
    });
    expect(Object.keys((await store.read()).entries)).toEqual(["0", "1"]);
  });

  it("refuses to write an entry that does not match the schema", async () => {
    const file = join(tempHome(), "processes.json");
    const store = createStore({ file });
    await store.update((entries) => {
      entries["0"] = storeEntry("0");
    });
    const before = readFileSync(file, "utf8");
    const bad = store.update((entries) => {
      entries["1"] = { ...storeEntry("1"), pid: 0 };
    });
    await expect(bad).rejects.toBeInstanceOf(InvalidInputError);
    await expect(bad).rejects.toThrow('entry "1"');
    expect(readFileSync(file, "utf8")).toBe(before);
  });

  it("reports an invalid entry among valid ones and writes it back untouched", async () => {
    const file = join(tempHome(), "processes.json");
    const broken = { pid: "not a number", model_id: "x", extra: [1, { deep: true }] };
    writeFileSync(
      file,
      JSON.stringify({
        version: "1.0",
        last_updated: "2024-05-01T10:20:30",
        processes: { "0": storeEntry("0"), "5": broken },
      }),
    );
    const store = createStore({ file });
    const snapshot = await store.read();
    expect(Object.keys(snapshot.entries)).toEqual(["0"]);
    expect(snapshot.invalid).toHaveLength(1);
    expect(snapshot.invalid[0]?.slot).toBe("5");
    expect(snapshot.invalid[0]?.raw).toEqual(broken);
    expect(snapshot.invalid[0]?.errors.some((e) => e.startsWith("/pid:"))).toBe(true);
    expect(snapshot.invalid[0]?.errors.some((e) => e.startsWith("/port:"))).toBe(true);

    await store.update((entries) => {
      entries["1"] = storeEntry("1");
    });
    const written = JSON.parse(readFileSync(file, "utf8"));
    expect(written.processes["5"]).toEqual(broken);
    expect(Object.keys(written.processes)).toEqual(["0", "1", "5"]);
    expect((await store.read()).invalid.map((item) => item.slot)).toEqual(["5"]);
  });

  it("keeps slots with names that are also object properties, such as __proto__ and toString", async () => {
    const file = join(tempHome(), "processes.json");
    writeFileSync(
      file,
      `{"version":"1.0","last_updated":"x","processes":{"__proto__":${JSON.stringify(storeEntry("7"))},"toString":{"pid":0}}}`,
    );
    const store = createStore({ file });
    await store.update((entries) => {
      entries["1"] = storeEntry("1");
    });
    const snapshot = await store.read();
    expect(Object.keys(snapshot.entries)).toEqual(["1", "__proto__"]);
    expect(Object.getPrototypeOf(snapshot.entries)).toBe(Object.prototype);
    expect(snapshot.invalid.map((item) => item.slot)).toEqual(["toString"]);
  });

  it("drops an invalid entry only when mutate removes it from snapshot.invalid or replaces its slot", async () => {
    const file = join(tempHome(), "processes.json");
    writeFileSync(
      file,
      JSON.stringify({ version: "1.0", last_updated: "x", processes: { "4": { pid: -1 }, "5": { port: "x" } } }),
    );
    const store = createStore({ file });
    await store.update((entries, snapshot) => {
      snapshot.invalid.splice(
        snapshot.invalid.findIndex((item) => item.slot === "4"),
        1,
      );
      entries["5"] = storeEntry("5");
    });
    const snapshot = await store.read();
    expect(snapshot.invalid).toEqual([]);
    expect(snapshot.entries).toEqual({ "5": storeEntry("5") });
  });

  it("keeps a large registry readable and writable", async () => {
    const home = tempHome();
    mkdirSync(join(home, "h"));
    const file = join(home, "h", "processes.json");
    const store = createStore({ file });
    await store.update((entries) => {
      for (let i = 0; i < 20_000; i++) entries[String(i)] = storeEntry(String(i));
    });
    expect(Object.keys((await store.read()).entries)).toHaveLength(20_000);
  }, 60_000);
});

describe("a corrupt registry", () => {
  const cases: Record<string, string | Buffer> = {
    "plain garbage": "this is not json at all {{{",
    "truncated JSON": ORIGINAL.slice(0, ORIGINAL.length / 2),
    nothing: "",
    "only whitespace": "  \n\t\n",
    "binary bytes": Buffer.from([0x00, 0xff, 0xfe, 0x13, 0x37, 0x80, 0x81, 0x00, 0x7b]),
    "a top-level array": "[1, 2, 3]",
    "a top-level string": '"processes"',
    "processes as an array": '{"version":"1.0","last_updated":"x","processes":[]}',
    "no processes": '{"version":"1.0","last_updated":"x"}',
    "a numeric version": '{"version":1,"last_updated":"x","processes":{}}',
  };

  for (const [name, content] of Object.entries(cases)) {
    it(`is kept aside and reported, never overwritten, when the file holds ${name}`, async () => {
      const home = tempHome();
      const file = join(home, "processes.json");
      writeFileSync(file, content);
      const store = createStore({ file, now: () => Date.UTC(2026, 10, 26, 12, 15, 0, 123) });

      const error = (await store.read().catch((e: unknown) => e)) as RegistryCorruptError;
      expect(error).toBeInstanceOf(RegistryCorruptError);
      expect(error.file).toBe(file);
      expect(error.backup).toBe(join(home, "processes.json.corrupt-20261126T121500123Z"));
      expect(readFileSync(error.backup as string)).toEqual(Buffer.from(content));
      expect(error.message).toContain(error.backup as string);

      const later = store.update((entries) => {
        entries["0"] = storeEntry("0");
      });
      await expect(later).rejects.toBeInstanceOf(RegistryCorruptError);
      expect(readFileSync(file)).toEqual(Buffer.from(content));

      const { backup } = await store.reset();
      expect(backup).toBe(join(home, "processes.json.reset-20261126T121500123Z"));
      expect(readFileSync(backup as string)).toEqual(Buffer.from(content));
      await store.update((entries) => {
        entries["0"] = storeEntry("0");
      });
      expect((await store.read()).entries).toEqual({ "0": storeEntry("0") });
    });
  }

  it("is copied aside once, however often it is read", async () => {
    const home = tempHome();
    const file = join(home, "processes.json");
    writeFileSync(file, "{ broken");
    const store = createStore({ file, now: ticking() });
    const backups = new Set<string | undefined>();
    for (let i = 0; i < 3; i++) {
      backups.add(((await store.read().catch((e: unknown) => e)) as RegistryCorruptError).backup);
    }
    expect(backups.size).toBe(1);
    expect(readdirSync(home).filter((name) => name.includes(".corrupt-"))).toHaveLength(1);

    writeFileSync(file, "{ broken differently");
    const next = ((await store.read().catch((e: unknown) => e)) as RegistryCorruptError).backup;
    expect(backups.has(next)).toBe(false);
    expect(readFileSync(next as string, "utf8")).toBe("{ broken differently");
  });

  it("is reported without hanging when it is 50 MB of garbage", async () => {
    const home = tempHome();
    const file = join(home, "processes.json");
    const garbage = Buffer.alloc(50 * 1024 * 1024, "{[garbage");
    writeFileSync(file, garbage);
    const error = (await createStore({ file })
      .read()
      .catch((e: unknown) => e)) as RegistryCorruptError;
    expect(error).toBeInstanceOf(RegistryCorruptError);
    expect(error.message.length).toBeLessThan(1000);
    expect(statSync(error.backup as string).size).toBe(garbage.length);
  }, 60_000);
});

describe("store.reset", () => {
  it("starts an empty registry and moves the previous file aside", async () => {
    const home = tempHome();
    const file = join(home, "processes.json");
    writeFileSync(file, ORIGINAL);
    const store = createStore({ file });
    const { backup } = await store.reset();
    expect(readFileSync(backup as string, "utf8")).toBe(ORIGINAL);
    const snapshot = await store.read();
    expect(snapshot.entries).toEqual({});
    expect(snapshot.version).toBe(REGISTRY_VERSION);
  });

  it("has nothing to move aside when there was no file", async () => {
    const home = tempHome();
    const file = join(home, "sub", "processes.json");
    expect(await createStore({ file }).reset()).toEqual({ backup: undefined });
    expect(existsSync(file)).toBe(true);
  });
});
