import { describe, expect, it } from "bun:test";
import { type CommandSpec, integerList, integerValue, parseCommand, splitCommand, UsageError } from "./args.ts";

const spec: Pick<CommandSpec, "name" | "args" | "options" | "json" | "destructive"> = {
  name: "load",
  args: [{ name: "model", description: "model id" }],
  options: {
    gpu: { type: "string", description: "gpu" },
    pid: { type: "string", multiple: true, description: "pids" },
    force: { type: "boolean", description: "force" },
  },
  json: true,
};

describe("splitCommand", () => {
  it("finds the command after global flags and their values", () => {
    expect(splitCommand(["--home", "/x", "ls", "--json"])).toMatchObject({
      command: "ls",
      rest: ["--home", "/x", "--json"],
    });
  });

  it("finds no command in a bare --version or --help", () => {
    expect(splitCommand(["--version"])).toMatchObject({ command: undefined, version: true });
    expect(splitCommand(["-h"])).toMatchObject({ command: undefined, help: true });
  });

  it("does not mistake a command's --help for a global one", () => {
    expect(splitCommand(["load", "--help"])).toMatchObject({ command: "load", help: false, rest: ["--help"] });
  });
});

describe("parseCommand", () => {
  it("names positionals and reads flags wherever they stand", () => {
    const input = parseCommand(spec, ["--gpu", "0,1", "qwen", "--json", "--home", "/h"]);
    expect(input.args).toEqual({ model: "qwen" });
    expect(input.flags).toMatchObject({ gpu: "0,1", json: true, home: "/h" });
  });

  it("leaves a missing positional undefined for a prompt or a usage error to decide", () => {
    expect(parseCommand(spec, []).args).toEqual({ model: undefined });
  });

  it("refuses unknown flags, missing values and extra positionals as usage errors", () => {
    expect(() => parseCommand(spec, ["--bogus"])).toThrow(UsageError);
    expect(() => parseCommand(spec, ["--gpu"])).toThrow(/--gpu/);
    expect(() => parseCommand(spec, ["a", "b"])).toThrow('unexpected argument "b"');
  });

  it("offers --yes only to destructive commands", () => {
    expect(() => parseCommand(spec, ["--yes"])).toThrow(UsageError);
    expect(parseCommand({ ...spec, destructive: true }, ["-y"]).flags.yes).toBe(true);
  });
});

describe("number flags", () => {
  it("accepts whole numbers within bounds", () => {
    expect(integerValue("8081", "--port", { min: 1, max: 65535 })).toBe(8081);
  });

  it("refuses anything else, naming the flag", () => {
    expect(() => integerValue("80a", "--port")).toThrow('--port must be a whole number of at least 0, got "80a"');
    expect(() => integerValue("70000", "--port", { min: 1, max: 65535 })).toThrow("from 1 to 65535");
    expect(() => integerValue("-1", "--lines", { min: 1 })).toThrow(UsageError);
  });

  it("reads repeated and comma-separated pids", () => {
    const input = parseCommand(spec, ["--pid", "10", "--pid", "11,12"]);
    expect(integerList(input, "pid")).toEqual([10, 11, 12]);
    expect(integerList(parseCommand(spec, []), "pid")).toBeUndefined();
  });
});
