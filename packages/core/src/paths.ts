import { homedir } from "node:os";
import { join, resolve } from "node:path";

/** Where corral keeps one home's files. */
export interface CorralPaths {
  readonly home: string;
  /** `processes.json` */
  readonly registry: string;
  /** `history.jsonl` */
  readonly history: string;
  /** folder of per-process logs */
  readonly logs: string;
  /** `corral.yaml` (a `corral.json` beside it is accepted too) */
  readonly config: string;
  /** `token`: the server's own token, made on the first `corral serve` (0600) */
  readonly token: string;
  /** `tokens.json`: named, scoped tokens, hashed (0600) */
  readonly tokens: string;
}

/**
 * The default home: `CORRAL_HOME`, else the platform's state folder.
 * @default Linux `$XDG_STATE_HOME/corral` or `~/.local/state/corral`; Windows `%LOCALAPPDATA%\corral`;
 *          macOS `~/Library/Application Support/corral`
 * @example
 * defaultHome() // "/home/me/.local/state/corral"
 */
export function defaultHome(
  env: Record<string, string | undefined> = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = homedir(),
): string {
  if (env.CORRAL_HOME) return resolve(env.CORRAL_HOME);
  if (platform === "win32") return join(env.LOCALAPPDATA ?? join(home, "AppData", "Local"), "corral");
  if (platform === "darwin") return join(home, "Library", "Application Support", "corral");
  return join(env.XDG_STATE_HOME || join(home, ".local", "state"), "corral");
}

/**
 * The file layout of a home.
 * @default home = defaultHome()
 * @example
 * corralPaths("/tmp/h").registry // "/tmp/h/processes.json"
 */
export function corralPaths(home: string = defaultHome()): CorralPaths {
  const root = resolve(home);
  return {
    home: root,
    registry: join(root, "processes.json"),
    history: join(root, "history.jsonl"),
    logs: join(root, "logs"),
    config: join(root, "corral.yaml"),
    token: join(root, "token"),
    tokens: join(root, "tokens.json"),
  };
}
