import type { ProbeResult } from "../process/identity.ts";
import type { KillTreeResult } from "../process/kill-tree.ts";
import type { OrphanVerdict } from "../process/orphans.ts";
import type { HistoryEvent, ProcessEntry } from "../store/schema.ts";

/** An entry together with what the OS says about its process right now. */
export interface VerifiedEntry {
  readonly slot: string;
  readonly entry: ProcessEntry;
  readonly probe: ProbeResult;
}

/** A registry event: the same object that is appended to `history.jsonl`. */
export type RegistryEvent = HistoryEvent;

/** What a kill did. */
export interface KillOutcome {
  readonly pid: number;
  readonly slot: string | undefined;
  /** false when the process was already gone and nothing was signalled */
  readonly signalled: boolean;
  readonly tree: KillTreeResult | undefined;
  /** whose an untracked process was, as `findOrphans` judged it (undefined for a tracked slot) */
  readonly verdict?: OrphanVerdict;
}

/** Options shared by every kill. */
export interface KillOptions {
  /** SIGKILL at once instead of SIGTERM first @default false */
  readonly force?: boolean;
  /** how long to wait after SIGTERM before SIGKILL @default 10000 */
  readonly timeoutMs?: number;
  /** allow killing llama-servers of other users or other corral homes ("foreign") @default false */
  readonly includeForeign?: boolean;
  /** why, for the history @default "requested" */
  readonly reason?: string;
}

/**
 * What a cleanup did with one PID: `killed`; `left-foreign` (another user's or another corral
 * home's, and foreign ones were not included); `not-orphan` (tracked, gone, or not a
 * llama-server); `failed` (the kill was attempted and did not succeed).
 */
export type CleanupOutcome = "killed" | "left-foreign" | "not-orphan" | "failed";

/** Per-PID result of `cleanupOrphans`. */
export interface CleanupResult {
  readonly pid: number;
  readonly verdict: OrphanVerdict | "unknown";
  readonly outcome: CleanupOutcome;
  /** `outcome === "killed"` */
  readonly killed: boolean;
  /** why it was left alone, or why killing failed */
  readonly reason?: string;
  /** the kill, when one was made */
  readonly tree?: KillTreeResult;
}

/** One process a kill by pid or name will stop, as resolved before anything is signalled. */
export interface KillTarget {
  readonly pid: number;
  /** set for a tracked process: it is stopped through its slot (unload) */
  readonly slot?: string;
  /** "tracked" for a registry entry, else the orphan verdict */
  readonly verdict: "tracked" | OrphanVerdict;
  /** process start time, so a kill made after a confirmation never hits a reused PID */
  readonly startTimeMs?: number;
  readonly model_id?: string;
  readonly port?: number;
  readonly executable?: string;
  readonly command_line: readonly string[];
  /** one line for a confirmation: what it is and why it is included */
  readonly description: string;
}

/** What a kill by pid or name will do: the targets, and the matches it leaves alone with why. */
export interface KillPlan {
  readonly targets: KillTarget[];
  readonly skipped: Array<{ readonly pid: number; readonly reason: string }>;
}

/** Which processes to kill: one PID, or everything going by a name (model id or name, else executable). */
export type KillSelector =
  | { readonly pid: number; readonly name?: undefined }
  | { readonly name: string; readonly pid?: undefined };
