import { describe, expect, it } from "bun:test";
import {
  ConfigError,
  EntryNotFoundError,
  InvalidInputError,
  KillFailedError,
  LoadFailedError,
  LockTimeoutError,
  NotOurProcessError,
  PortInUseError,
  ProcessNotFoundError,
  RegistryCorruptError,
  SlotInUseError,
  StoreWriteError,
  UnknownModelError,
} from "@corral/core";
import { ParseError } from "elysia";
import { describeError, HttpError } from "./errors.ts";

describe("describeError", () => {
  it("maps every core error code to its status and keeps code and message in the body", () => {
    const cases: Array<[Error, number, string]> = [
      [new EntryNotFoundError("0"), 404, "NOT_FOUND"],
      [new NotOurProcessError(42, "it is redis-server"), 403, "NOT_OUR_PROCESS"],
      [new ProcessNotFoundError(42), 404, "NO_SUCH_PROCESS"],
      [new SlotInUseError("0", { slot: "0,1", pid: 7, model_id: "q" }), 409, "SLOT_IN_USE"],
      [new PortInUseError(8081, 99), 409, "PORT_IN_USE"],
      [new InvalidInputError("slot", "bad"), 400, "INVALID_INPUT"],
      [new ConfigError("models[0].port", "not a port"), 400, "CONFIG_INVALID"],
      [new UnknownModelError("nope", ["tiny"]), 404, "UNKNOWN_MODEL"],
      [new LoadFailedError({ slot: "0", modelId: "q", reason: "exited" }), 503, "LOAD_FAILED"],
      [new RegistryCorruptError("/h/processes.json", "bad JSON"), 503, "REGISTRY_CORRUPT"],
      [new LockTimeoutError("/h/processes.json", 10_000, 5), 503, "LOCK_TIMEOUT"],
      [new StoreWriteError("/h/processes.json", { cause: new Error("ENOSPC") }), 503, "STORE_WRITE_FAILED"],
      [new KillFailedError([42], "uninterruptible sleep"), 503, "KILL_FAILED"],
    ];
    for (const [error, status, code] of cases) {
      const reply = describeError(error, "UNKNOWN");
      expect({ status: reply.status, code: reply.body.error.code }).toEqual({ status, code });
      expect(reply.body.error.message).toBe(error.message);
      expect(reply.unexpected).toBe(false);
    }
  });

  it("uses the shared status of an AggregateError's items and lists each one", () => {
    const error = new AggregateError(
      [new NotOurProcessError(5, "not ours"), new NotOurProcessError(6, "not ours")],
      "2 of 2 kills failed",
    );
    const reply = describeError(error, "UNKNOWN");
    expect(reply.status).toBe(403);
    expect(reply.body.error.code).toBe("PARTIAL_FAILURE");
    expect(reply.body.error.errors?.map((e) => e.code)).toEqual(["NOT_OUR_PROCESS", "NOT_OUR_PROCESS"]);
    expect(reply.body.error.message).toContain("refusing to touch pid 6");
  });

  it("answers 207 when the items of an AggregateError fail in different ways", () => {
    const error = new AggregateError(
      [new NotOurProcessError(5, "not ours"), new KillFailedError([6], "stuck")],
      "2 of 3 kills failed",
    );
    const reply = describeError(error, "UNKNOWN");
    expect(reply.status).toBe(207);
    expect(reply.body.error.errors?.map((e) => e.status)).toEqual([403, 503]);
  });

  it("unwraps the HttpError a body parser threw inside Elysia's ParseError", () => {
    const parse = new ParseError(new HttpError(413, "PAYLOAD_TOO_LARGE", "too big"));
    expect(describeError(parse, "PARSE").status).toBe(413);
    expect(describeError(new ParseError(new SyntaxError("x")), "PARSE").body.error.code).toBe("INVALID_JSON");
  });

  it("turns an unknown failure into a 500 that says it is a bug and flags it for the log", () => {
    const reply = describeError(new TypeError("cannot read x of undefined"), "UNKNOWN");
    expect(reply.status).toBe(500);
    expect(reply.unexpected).toBe(true);
    expect(reply.body.error.message).toContain("cannot read x of undefined");
    expect(reply.body.error.message).toContain("bug");
  });

  it("names the missing route in a 404", () => {
    const reply = describeError(new Error("NOT_FOUND"), "NOT_FOUND", "GET /api/v1/nope");
    expect(reply.status).toBe(404);
    expect(reply.body.error.message).toContain("GET /api/v1/nope");
  });
});
