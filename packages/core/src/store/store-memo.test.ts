import { afterEach, describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { storeEntry } from "../../test/helpers/store-entry.ts";
import { REGISTRY_VERSION } from "./schema.ts";
import { createStore } from "./store.ts";

// The store remembers the file it last read or wrote (by device, inode, size, mtime and ctime),
// so an unchanged file is neither parsed nor rendered again. These are the ways that must not
// show: the bytes it writes, a change by anyone else, and callers changing what they were given.

const dirs: string[] = [];
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "corral-store-memo-"));
  dirs.push(dir);
  return join(dir, "processes.json");
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const at = Date.UTC(2026, 10, 26, 12, 0, 0, 0);

describe("the store's memory of its file", () => {
  it("writes exactly what JSON.stringify with two spaces writes, write after write", async () => {
    const file = tempFile();
    // A file from elsewhere: an unknown top-level field, an invalid entry and an odd slot name.
    writeFileSync(
      file,
      JSON.stringify({
        version: "1.0",
        last_updated: "x",
        processes: { "0": storeEntry("0"), bad: { pid: "nope", nested: [1, { a: null }] } },
        owner: { name: "lab", tags: ["a", "b"] },
      }),
    );
    const store = createStore({ file, now: () => at });
    const expectText = () => {
      const doc = JSON.parse(readFileSync(file, "utf8"));
      expect(readFileSync(file, "utf8")).toBe(`${JSON.stringify(doc, null, 2)}\n`);
      return doc;
    };
    await store.update((entries) => {
      entries["1"] = storeEntry("1", { host: "::1", model_name: 'Quote " and \\ and\nnewline' });
    });
    expect(Object.keys(expectText().processes).sort()).toEqual(["0", "1", "bad"]);
    await store.update((entries) => {
      entries["0"] = { ...entries["0"]!, status: "unhealthy", status_reason: undefined };
    });
    expect(expectText().processes["0"].status).toBe("unhealthy");
    await store.update((entries, snapshot) => {
      for (const slot of Object.keys(entries)) delete entries[slot];
      snapshot.invalid.splice(0);
    });
    expect(expectText()).toEqual({
      version: REGISTRY_VERSION,
      last_updated: new Date(at).toISOString(),
      processes: {},
      owner: { name: "lab", tags: ["a", "b"] },
    });
  });

  it("sees a file another writer renamed into place, and one edited in place", async () => {
    const file = tempFile();
    const store = createStore({ file, now: () => at });
    await store.update((entries) => {
      entries["0"] = storeEntry("0");
    });
    expect(Object.keys((await store.read()).entries)).toEqual(["0"]);
    const other = JSON.parse(readFileSync(file, "utf8"));
    other.processes["1"] = storeEntry("1");
    writeFileSync(`${file}.other`, JSON.stringify(other));
    renameSync(`${file}.other`, file);
    expect(Object.keys((await store.read()).entries)).toEqual(["0", "1"]);
    // In place: same inode, another size.
    other.processes["0"].model_id = "edited-by-hand";
    writeFileSync(file, JSON.stringify(other, null, 2));
    expect((await store.read()).entries["0"]?.model_id).toBe("edited-by-hand");
    // And the next write starts from what is there now, not from what it wrote before.
    await store.update((entries) => {
      entries["2"] = storeEntry("2");
    });
    const written = JSON.parse(readFileSync(file, "utf8"));
    expect(Object.keys(written.processes)).toEqual(["0", "1", "2"]);
    expect(written.processes["0"].model_id).toBe("edited-by-hand");
  });

  it("hands out copies: changing what read or update gave changes neither the file nor the next read", async () => {
    const file = tempFile();
    const store = createStore({ file, now: () => at });
    const kept = storeEntry("0");
    await store.update((entries) => {
      entries["0"] = kept;
    });
    kept.command_line.push("--changed-after-write");
    kept.model_id = "changed-after-write";
    const first = await store.read();
    first.entries["0"]!.command_line.push("--changed-after-read");
    first.entries["0"]!.status = "changed-after-read";
    const second = await store.read();
    expect(second.entries["0"]).toEqual(storeEntry("0"));
    // An update that changes an entry in place is written, and remembered as written.
    await store.update((entries) => {
      entries["0"]!.status = "stopping";
    });
    expect((await store.read()).entries["0"]?.status).toBe("stopping");
    expect(JSON.parse(readFileSync(file, "utf8")).processes["0"].status).toBe("stopping");
  });

  it("tells a no-op update from a change without the caller's word, as before", async () => {
    const file = tempFile();
    const store = createStore({ file, now: () => at });
    await store.update((entries) => {
      entries["0"] = storeEntry("0");
    });
    const before = readFileSync(file, "utf8");
    let now = at;
    const later = createStore({ file, now: () => (now += 1000) });
    await later.update(() => undefined);
    expect(readFileSync(file, "utf8")).toBe(before);
    await later.update((entries) => {
      entries["0"] = { ...entries["0"]!, port: 9999 };
    });
    expect(readFileSync(file, "utf8")).not.toBe(before);
  });
});
