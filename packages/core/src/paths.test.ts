import { describe, expect, it } from "bun:test";
import { join, resolve } from "node:path";
import { corralPaths, defaultHome } from "./paths.ts";

describe("defaultHome", () => {
  it("is CORRAL_HOME when set, made absolute, on every platform", () => {
    for (const platform of ["linux", "darwin", "win32"] as const) {
      expect(defaultHome({ CORRAL_HOME: "rel/home" }, platform, "/home/me")).toBe(resolve("rel/home"));
    }
  });

  it("follows XDG_STATE_HOME on Linux, else ~/.local/state", () => {
    expect(defaultHome({ XDG_STATE_HOME: "/var/state" }, "linux", "/home/me")).toBe(join("/var/state", "corral"));
    expect(defaultHome({}, "linux", "/home/me")).toBe(join("/home/me", ".local", "state", "corral"));
    // An empty XDG_STATE_HOME counts as unset, as the XDG spec says.
    expect(defaultHome({ XDG_STATE_HOME: "" }, "linux", "/home/me")).toBe(
      join("/home/me", ".local", "state", "corral"),
    );
    expect(defaultHome({}, "freebsd", "/home/me")).toBe(join("/home/me", ".local", "state", "corral"));
  });

  it("uses Application Support on macOS and LOCALAPPDATA on Windows", () => {
    expect(defaultHome({ XDG_STATE_HOME: "/ignored" }, "darwin", "/Users/me")).toBe(
      join("/Users/me", "Library", "Application Support", "corral"),
    );
    expect(defaultHome({ LOCALAPPDATA: "/c/Users/me/AppData/Local" }, "win32", "/c/Users/me")).toBe(
      join("/c/Users/me/AppData/Local", "corral"),
    );
    expect(defaultHome({}, "win32", "/c/Users/me")).toBe(join("/c/Users/me", "AppData", "Local", "corral"));
  });

  it("reads this process's environment by default", () => {
    const saved = process.env.CORRAL_HOME;
    process.env.CORRAL_HOME = "/tmp/corral-paths-test-home";
    try {
      expect(defaultHome()).toBe("/tmp/corral-paths-test-home");
      expect(corralPaths().registry).toBe(join("/tmp/corral-paths-test-home", "processes.json"));
    } finally {
      if (saved === undefined) delete process.env.CORRAL_HOME;
      else process.env.CORRAL_HOME = saved;
    }
  });
});
