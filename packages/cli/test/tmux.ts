/**
 * A real pseudo-terminal for the interactive tests: tmux on a socket of its own
 * (`tmux -L corral-test-<random>`), so the tests only ever see and kill their own sessions.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAIN, REPO } from "./helpers.ts";

/** Quotes one word for `sh -c`. */
function sh(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** One tmux server with one session per corral run. */
export class Terminal {
  readonly socket = `corral-test-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  readonly #dir = mkdtempSync(join(tmpdir(), "corral-tmux-"));
  #sessions = 0;

  /**
   * Runs corral in a new 120x40 session and returns the session's name. When corral exits its
   * code is written to a file ({@link exitCode}) and the pane stays open for a last capture.
   * CI is unset inside: corral is only interactive without it.
   */
  start(args: readonly string[], env: Readonly<Record<string, string>> = {}): string {
    const name = `s${++this.#sessions}`;
    const vars = Object.entries({ NO_COLOR: "1", ...env }).map(([k, v]) => `${k}=${sh(v)}`);
    const command = [
      `cd ${sh(REPO)} &&`,
      `env -u CI -u FORCE_COLOR ${vars.join(" ")} ${sh(process.execPath)} ${sh(MAIN)} ${args.map(sh).join(" ")};`,
      `echo $? > ${sh(join(this.#dir, `${name}.exit`))};`,
      "sleep 300",
    ].join(" ");
    this.#tmux(["new-session", "-d", "-s", name, "-x", "120", "-y", "40", command]);
    return name;
  }

  /** What the screen shows now. */
  screen(name: string): string {
    return this.#tmux(["capture-pane", "-p", "-t", name]);
  }

  /** Sends keys as tmux names them: "Enter", "Down", "Space", "C-c", or literal text. */
  keys(name: string, ...keys: string[]): void {
    this.#tmux(["send-keys", "-t", name, ...keys]);
  }

  /** Types text literally (no key-name lookup). */
  type(name: string, text: string): void {
    this.#tmux(["send-keys", "-t", name, "-l", text]);
  }

  /** Waits until the screen shows `what`, returning the screen; throws with the screen on timeout. */
  async waitFor(name: string, what: string | RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let screen = "";
    while (Date.now() < deadline) {
      screen = this.screen(name);
      if (typeof what === "string" ? screen.includes(what) : what.test(screen)) return screen;
      await Bun.sleep(50);
    }
    throw new Error(`timed out waiting for ${String(what)}; the screen shows:\n${screen}`);
  }

  /** corral's exit code once it has exited. */
  async exitCode(name: string, timeoutMs = 20_000): Promise<number> {
    const file = join(this.#dir, `${name}.exit`);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        const text = readFileSync(file, "utf8").trim();
        if (text !== "") return Number(text);
      } catch {
        // not exited yet
      }
      await Bun.sleep(50);
    }
    throw new Error(`corral in session ${name} did not exit; the screen shows:\n${this.screen(name)}`);
  }

  /** Kills this tmux server (only ours: it has its own socket) and its sessions. */
  close(): void {
    try {
      this.#tmux(["kill-server"]);
    } catch {
      // no session was ever started
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #tmux(args: readonly string[]): string {
    const result = Bun.spawnSync(["tmux", "-L", this.socket, "-f", "/dev/null", ...args], {
      stdout: "pipe",
      stderr: "pipe",
    });
    if (result.exitCode !== 0) throw new Error(`tmux ${args[0]} failed: ${result.stderr.toString()}`);
    return result.stdout.toString();
  }
}
