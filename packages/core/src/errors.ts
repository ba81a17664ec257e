/**
 * corral's typed errors. Each carries the facts a front-end needs to explain it
 * (and to map it to an HTTP status or exit code) and keeps `cause`.
 */

/** Stable machine-readable codes, one per error class. */
export type CorralErrorCode =
  | "REGISTRY_CORRUPT"
  | "LOCK_TIMEOUT"
  | "STORE_WRITE_FAILED"
  | "NOT_FOUND"
  | "NOT_OUR_PROCESS"
  | "NO_SUCH_PROCESS"
  | "KILL_FAILED"
  | "PORT_IN_USE"
  | "SLOT_IN_USE"
  | "CONFIG_INVALID"
  | "UNKNOWN_MODEL"
  | "LOAD_FAILED"
  | "INVALID_INPUT"
  | "UNSAFE_PATH"
  | "INVALID_NAME"
  | "PORT_NOT_ALLOWED";

/**
 * Base class of every error corral throws on purpose.
 * @example
 * try { await registry.kill("0") } catch (e) { if (e instanceof CorralError) console.error(e.code, e.message) }
 */
export class CorralError extends Error {
  readonly code: CorralErrorCode;
  constructor(code: CorralErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * The registry file exists but cannot be used: bad JSON, truncated, wrong shape.
 * The original was copied to `backup` and is never overwritten without the user saying so.
 * @example
 * if (e instanceof RegistryCorruptError) console.error(`${e.file} is corrupt; copy kept at ${e.backup}`)
 */
export class RegistryCorruptError extends CorralError {
  readonly file: string;
  readonly backup: string | undefined;
  readonly reason: string;
  constructor(file: string, reason: string, backup?: string, options?: { cause?: unknown }) {
    super(
      "REGISTRY_CORRUPT",
      `registry ${file} is corrupt: ${reason}` +
        (backup ? ` (a copy was kept at ${backup}; corral will not overwrite it until you reset the registry)` : ""),
      options,
    );
    this.file = file;
    this.reason = reason;
    this.backup = backup;
  }
}

/**
 * The registry lock could not be taken in time: another live process holds it.
 * @example
 * if (e instanceof LockTimeoutError) console.error(`held by pid ${e.holderPid}`)
 */
export class LockTimeoutError extends CorralError {
  readonly file: string;
  readonly holderPid: number | undefined;
  constructor(file: string, waitedMs: number, holderPid?: number) {
    super(
      "LOCK_TIMEOUT",
      `could not lock ${file} within ${waitedMs} ms${holderPid ? ` (held by pid ${holderPid})` : ""}`,
    );
    this.file = file;
    this.holderPid = holderPid;
  }
}

/**
 * Writing the registry failed (disk full, read-only folder …); the previous file is intact.
 * @example
 * if (e instanceof StoreWriteError) console.error(e.message)
 */
export class StoreWriteError extends CorralError {
  readonly file: string;
  constructor(file: string, options: { cause: unknown }) {
    const why = options.cause instanceof Error ? options.cause.message : String(options.cause);
    super("STORE_WRITE_FAILED", `could not write ${file}: ${why}; the previous file is intact`, options);
    this.file = file;
  }
}

/**
 * No registry entry under that slot.
 * @example
 * if (e instanceof EntryNotFoundError) console.error(`nothing is loaded in slot ${e.slot}`)
 */
export class EntryNotFoundError extends CorralError {
  readonly slot: string;
  constructor(slot: string) {
    super("NOT_FOUND", `no process is registered in slot "${slot}"`);
    this.slot = slot;
  }
}

/**
 * corral refuses to signal this PID: it is not a llama-server, not the process the
 * registry recorded (PID reuse), PID 1, corral itself or one of its ancestors.
 * @example
 * if (e instanceof NotOurProcessError) console.error(`${e.pid}: ${e.reason}`)
 */
export class NotOurProcessError extends CorralError {
  readonly pid: number;
  readonly reason: string;
  constructor(pid: number, reason: string) {
    super("NOT_OUR_PROCESS", `refusing to touch pid ${pid}: ${reason}`);
    this.pid = pid;
    this.reason = reason;
  }
}

/**
 * corral refuses a foreign llama-server (another user's, or another corral home's, as
 * `findOrphans` judges it) unless foreign processes were included explicitly.
 * @example
 * if (e instanceof ForeignProcessError) console.error(`${e.pid}: ${e.reasons.join("; ")}`)
 */
export class ForeignProcessError extends NotOurProcessError {
  readonly reasons: readonly string[];
  constructor(pid: number, reasons: readonly string[]) {
    super(pid, `it is foreign (${reasons.join("; ")}); include foreign processes to touch it`);
    this.reasons = reasons;
  }
}

/**
 * The PID is not an orphaned llama-server: it is tracked (or a child of a tracked one), gone,
 * or not a llama-server at all.
 * @example
 * if (e instanceof NotOrphanError) console.error(`${e.pid}: ${e.reason}`)
 */
export class NotOrphanError extends CorralError {
  readonly pid: number;
  readonly reason: string;
  constructor(pid: number, reason: string) {
    super("NOT_FOUND", `pid ${pid} is not an orphaned llama-server: ${reason}`);
    this.pid = pid;
    this.reason = reason;
  }
}

/**
 * No process with that PID exists.
 * @example
 * if (e instanceof ProcessNotFoundError) console.error(`pid ${e.pid} is gone`)
 */
export class ProcessNotFoundError extends CorralError {
  readonly pid: number;
  constructor(pid: number) {
    super("NO_SUCH_PROCESS", `no process with pid ${pid}`);
    this.pid = pid;
  }
}

/**
 * A process survived SIGKILL (uninterruptible sleep, or we lack permission).
 * @example
 * if (e instanceof KillFailedError) console.error(e.pids)
 */
export class KillFailedError extends CorralError {
  readonly pids: number[];
  constructor(pids: number[], reason: string, options?: { cause?: unknown }) {
    super("KILL_FAILED", `could not kill pid ${pids.join(", ")}: ${reason}`, options);
    this.pids = pids;
  }
}

/**
 * The port is already taken. `pid` and `command` name the holder where the OS tells.
 * @example
 * if (e instanceof PortInUseError) console.error(`port ${e.port} is held by pid ${e.pid}`)
 */
export class PortInUseError extends CorralError {
  readonly port: number;
  readonly pid: number | undefined;
  readonly holder: string | undefined;
  constructor(port: number, pid?: number, holder?: string) {
    super("PORT_IN_USE", `port ${port} is already in use${pid ? ` by pid ${pid}${holder ? ` (${holder})` : ""}` : ""}`);
    this.port = port;
    this.pid = pid;
    this.holder = holder;
  }
}

/**
 * The slot, or one of the GPUs it names, is held by another entry.
 * @example
 * if (e instanceof SlotInUseError) console.error(`held by ${e.holder.model_id} (pid ${e.holder.pid})`)
 */
export class SlotInUseError extends CorralError {
  readonly slot: string;
  readonly holder: { slot: string; pid: number; model_id: string };
  constructor(slot: string, holder: { slot: string; pid: number; model_id: string }) {
    super(
      "SLOT_IN_USE",
      `slot "${slot}" overlaps slot "${holder.slot}", held by ${holder.model_id} (pid ${holder.pid}); unload it first or ask to replace it`,
    );
    this.slot = slot;
    this.holder = holder;
  }
}

/**
 * The configuration is invalid; `key` names the offending setting.
 * @example
 * if (e instanceof ConfigError) console.error(`${e.file}: ${e.key}: ${e.reason}`)
 */
export class ConfigError extends CorralError {
  readonly file: string | undefined;
  readonly key: string;
  readonly reason: string;
  constructor(key: string, reason: string, file?: string, options?: { cause?: unknown }) {
    super("CONFIG_INVALID", `${file ? `${file}: ` : ""}${key}: ${reason}`, options);
    this.file = file;
    this.key = key;
    this.reason = reason;
  }
}

/**
 * No model with that id in the configuration.
 * @example
 * if (e instanceof UnknownModelError) console.error(`known models: ${e.known.join(", ")}`)
 */
export class UnknownModelError extends CorralError {
  readonly modelId: string;
  readonly known: string[];
  constructor(modelId: string, known: string[]) {
    super("UNKNOWN_MODEL", `unknown model "${modelId}"${known.length ? ` (known: ${known.join(", ")})` : ""}`);
    this.modelId = modelId;
    this.known = known;
  }
}

/**
 * A model failed to load: the server exited, or did not become ready in time.
 * @example
 * if (e instanceof LoadFailedError) console.error(e.message, e.logTail.join("\n"))
 */
export class LoadFailedError extends CorralError {
  readonly slot: string;
  readonly modelId: string;
  readonly exitCode: number | null | undefined;
  readonly timedOut: boolean;
  readonly logTail: string[];
  constructor(
    init: {
      slot: string;
      modelId: string;
      reason: string;
      exitCode?: number | null;
      timedOut?: boolean;
      logTail?: string[];
    },
    options?: { cause?: unknown },
  ) {
    const tail = init.logTail?.length ? `\n--- last log lines ---\n${init.logTail.join("\n")}` : "";
    super("LOAD_FAILED", `loading ${init.modelId} in slot "${init.slot}" failed: ${init.reason}${tail}`, options);
    this.slot = init.slot;
    this.modelId = init.modelId;
    this.exitCode = init.exitCode;
    this.timedOut = init.timedOut ?? false;
    this.logTail = init.logTail ?? [];
  }
}

/**
 * An argument failed validation (a slot with path tricks, a PID ≤ 1 …).
 * @example
 * if (e instanceof InvalidInputError) console.error(`${e.field}: ${e.reason}`)
 */
export class InvalidInputError extends CorralError {
  readonly field: string;
  readonly reason: string;
  constructor(field: string, reason: string) {
    super("INVALID_INPUT", `${field}: ${reason}`);
    this.field = field;
    this.reason = reason;
  }
}

/**
 * No tracked model and no llama-server process goes by that name.
 * @example
 * if (e instanceof NameNotFoundError) console.error(`nothing named ${e.name}`)
 */
export class NameNotFoundError extends CorralError {
  readonly processName: string;
  constructor(name: string) {
    super("NOT_FOUND", `no tracked model and no llama-server process named "${name}"`);
    this.processName = name;
  }
}

/**
 * A file or folder corral will not use because someone else could change what it points at:
 * a home not owned by this user or writable by others, a symlinked log, another user's file.
 * `fix` says what to do about it.
 * @example
 * if (e instanceof UnsafePathError) console.error(`${e.path}: ${e.reason}; ${e.fix}`)
 */
export class UnsafePathError extends CorralError {
  readonly path: string;
  readonly reason: string;
  readonly fix: string;
  constructor(path: string, reason: string, fix: string, options?: { cause?: unknown }) {
    super("UNSAFE_PATH", `${path}: ${reason}; ${fix}`, options);
    this.path = path;
    this.reason = reason;
    this.fix = fix;
  }
}

/**
 * A name that cannot name anything: empty or only whitespace (which would otherwise match every
 * process whose executable is unreadable).
 * @example
 * if (e instanceof InvalidNameError) console.error(e.message)
 */
export class InvalidNameError extends CorralError {
  readonly processName: string;
  constructor(name: string) {
    super("INVALID_NAME", `name: ${JSON.stringify(name)} is blank; give a model id, model name or executable name`);
    this.processName = name;
  }
}

/**
 * A requested port is outside what the configuration allows (`ports.range` and `ports.gpu`,
 * and the model's own `port`): corral does not start servers on arbitrary ports (22, say).
 * @example
 * if (e instanceof PortNotAllowedError) console.error(`allowed: ${e.range.join("-")}`)
 */
export class PortNotAllowedError extends CorralError {
  readonly port: number;
  readonly range: readonly [number, number];
  readonly allowed: readonly number[];
  constructor(port: number, range: readonly [number, number], allowed: readonly number[]) {
    const extra = allowed.length ? ` or one of ${allowed.join(", ")}` : "";
    super(
      "PORT_NOT_ALLOWED",
      `port ${port} is not allowed: use a port from ports.range ${range[0]}-${range[1]}${extra}, or widen ports.range`,
    );
    this.port = port;
    this.range = range;
    this.allowed = allowed;
  }
}
