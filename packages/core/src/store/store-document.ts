import { type TypeCheck, TypeCompiler } from "@sinclair/typebox/compiler";
import { Value } from "@sinclair/typebox/value";
import { InvalidInputError } from "../errors.ts";
import { type ProcessEntry, ProcessEntrySchema, RegistryDocumentSchema } from "./schema.ts";

/** From this many entries on, compiling the schemas pays for itself within a read or two. */
const COMPILE_FROM = 100;
let compiled:
  | { entry: TypeCheck<typeof ProcessEntrySchema>; document: TypeCheck<typeof RegistryDocumentSchema> }
  | undefined;

/**
 * Schema checks for a registry of `count` entries. Compiled, the schemas check 1000 entries in
 * about 0.1 ms instead of 2 ms (and an update checks each entry twice), but compiling costs
 * about 7 ms once per process: it is done the first time a registry this big is seen, so a
 * CLI start over a handful of entries does not pay for it.
 * @example
 * checkers(1000).entry(raw) // true when `raw` is a valid entry
 */
export function checkers(count: number): { entry: (value: unknown) => boolean; document: (value: unknown) => boolean } {
  if (!compiled && count >= COMPILE_FROM) {
    compiled = {
      entry: TypeCompiler.Compile(ProcessEntrySchema),
      document: TypeCompiler.Compile(RegistryDocumentSchema),
    };
  }
  const c = compiled;
  return c
    ? { entry: (value) => c.entry.Check(value), document: (value) => c.document.Check(value) }
    : {
        entry: (value) => Value.Check(ProcessEntrySchema, value),
        document: (value) => Value.Check(RegistryDocumentSchema, value),
      };
}

/**
 * The file's text; editors on Windows like to add a byte order mark, which JSON.parse does not accept.
 * @example
 * decode(readFileSync(file)) // "{\n  \"version\": …"
 */
export function decode(bytes: Buffer): string {
  const text = bytes.toString("utf8");
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** A registry document as parsed: its known fields, and any others it holds. */
export type Document = { version: string; last_updated: string; processes: Record<string, unknown> } & Record<
  string,
  unknown
>;

/**
 * The document, or why it is unusable.
 * @example
 * parseDocument("") // "the file is empty"
 */
export function parseDocument(text: string): Document | string {
  if (text.trim() === "") return "the file is empty";
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return `not valid JSON (${why.slice(0, 160)})`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "the top level is not an object";
  const processes = (value as Record<string, unknown>).processes;
  if (typeof processes !== "object" || processes === null || Array.isArray(processes)) {
    return '"processes" is missing or not an object';
  }
  if (!checkers(Object.keys(processes).length).document(value)) {
    const first = Value.Errors(RegistryDocumentSchema, value).First();
    return `wrong shape: ${first ? `${first.path || "/"} ${first.message}` : "does not match the registry schema"}`;
  }
  return value as Document;
}

/**
 * One message per offending field: the first (most telling) one TypeBox gives.
 * @example
 * entryErrors({ pid: "x" }) // ["/model_id: Expected required property", …]
 */
export function entryErrors(raw: unknown): string[] {
  const byPath = new Map<string, string>();
  for (const error of Value.Errors(ProcessEntrySchema, raw)) {
    const path = error.path || "/";
    if (!byPath.has(path)) byPath.set(path, `${path}: ${error.message}`);
  }
  return [...byPath.values()];
}

/**
 * Refuses entries that do not match the schema (what `mutate` left in `entries` is written).
 * @throws InvalidInputError naming the first bad slot and its fields
 * @example
 * checkEntries(snapshot.entries)
 */
export function checkEntries(entries: Record<string, ProcessEntry>): void {
  const check = checkers(Object.keys(entries).length);
  for (const [slot, entry] of Object.entries(entries)) {
    if (!check.entry(entry)) {
      throw new InvalidInputError(`entry "${slot}"`, entryErrors(entry).join("; "));
    }
  }
}
