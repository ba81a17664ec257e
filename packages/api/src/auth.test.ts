import { describe, expect, it } from "bun:test";
import { tokenOf, tokensMatch } from "./auth.ts";

describe("tokensMatch", () => {
  it("accepts the same token and refuses others, including prefixes and longer strings", () => {
    expect(tokensMatch("s3cret-token", "s3cret-token")).toBe(true);
    expect(tokensMatch("s3cret", "s3cret-token")).toBe(false);
    expect(tokensMatch("s3cret-token-and-more", "s3cret-token")).toBe(false);
    expect(tokensMatch("", "s3cret-token")).toBe(false);
  });
});

describe("tokenOf", () => {
  it("reads a bearer token from the Authorization header, whatever the scheme's case", () => {
    const r = new Request("http://localhost/api/v1/processes", { headers: { authorization: "bearer  abc.def " } });
    expect(tokenOf(r)).toBe("abc.def");
  });

  it("ignores other schemes", () => {
    const r = new Request("http://localhost/api/v1/processes", { headers: { authorization: "Basic dXNlcjpwdw==" } });
    expect(tokenOf(r)).toBeUndefined();
  });

  it("takes ?access_token= only on the streaming endpoints, where EventSource cannot send headers", () => {
    expect(tokenOf(new Request("http://localhost/api/v1/events?access_token=abc"))).toBe("abc");
    expect(tokenOf(new Request("http://localhost/api/v1/processes?access_token=abc"))).toBeUndefined();
  });
});
