import { type Static, Type } from "@sinclair/typebox";

/**
 * One tracked process, as stored in `processes.json`. The first nine fields are the
 * original controller's format, read unchanged; the optional ones are what corral adds
 * for identity and operation. Unknown fields are kept, so newer files survive older readers.
 * @example
 * const entry: ProcessEntry = { pid: 4242, model_id: "qwen", model_name: "Qwen 7B", model_path: "/m/q.gguf",
 *   gpu_id: 0, port: 8081, started_at: "2026-11-26T12:00:00.000Z", command_line: ["llama-server"], status: "running" }
 */
export const ProcessEntrySchema = Type.Object(
  {
    pid: Type.Integer({ minimum: 1, description: "process id of the llama-server" }),
    model_id: Type.String({ description: "model id from the configuration" }),
    model_name: Type.String(),
    model_path: Type.String(),
    gpu_id: Type.Union([Type.Integer({ minimum: 0 }), Type.String()], {
      description: 'GPU index, or a list such as "0,1"',
    }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    started_at: Type.String({ description: "ISO time the controller spawned it (naive in the original's files)" }),
    command_line: Type.Array(Type.String()),
    status: Type.String({ description: "loading | running | unhealthy | stopping | exited" }),
    proc_start_ms: Type.Optional(
      Type.Number({ description: "process start time from the OS, epoch ms: half of the identity" }),
    ),
    executable: Type.Optional(Type.String({ description: "absolute path of the executable: the other half" })),
    log_file: Type.Optional(Type.String()),
    instance_id: Type.Optional(Type.String({ description: "CORRAL_INSTANCE_ID set in the process environment" })),
    host: Type.Optional(Type.String()),
    uid: Type.Optional(Type.Integer()),
    restarts: Type.Optional(Type.Integer({ minimum: 0 })),
    adopted: Type.Optional(Type.Boolean()),
    cpu_affinity: Type.Optional(Type.String()),
    status_reason: Type.Optional(Type.String()),
    expected_ready_ms: Type.Optional(
      Type.Number({
        description: "spawn → ready of the last load of this model with these arguments: a loading entry's progress",
      }),
    ),
    updated_at: Type.Optional(Type.String()),
    api_key: Type.Optional(
      Type.String({
        description: "the key corral gave this llama-server (server_api_key: auto); never shown by the API",
      }),
    ),
    config_hash: Type.Optional(
      Type.String({ description: "fingerprint of the model's configuration it was started with (reload compares it)" }),
    ),
    stale: Type.Optional(
      Type.String({
        description: "why it no longer matches the configuration in force (set by a reload); gone once restarted",
      }),
    ),
    last_request_at: Type.Optional(
      Type.String({
        description: "ISO time the gateway last finished a request to it: a restart rebuilds the idle clock",
      }),
    ),
  },
  { additionalProperties: true, $id: "ProcessEntry" },
);
/** @see ProcessEntrySchema */
export type ProcessEntry = Static<typeof ProcessEntrySchema>;

/**
 * An entry as the API shows it: without the server's API key.
 * @example
 * publicEntry({ ...entry, api_key: "k" }).api_key // undefined
 */
export function publicEntry(entry: ProcessEntry): ProcessEntry {
  if (entry.api_key === undefined) return entry;
  const { api_key: _key, ...rest } = entry;
  return rest;
}

/**
 * The whole `processes.json` document.
 * @example
 * const empty: RegistryDocument = { version: "1.1", last_updated: new Date().toISOString(), processes: {} }
 */
export const RegistryDocumentSchema = Type.Object(
  {
    version: Type.String(),
    last_updated: Type.String(),
    processes: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: true },
);
/** @see RegistryDocumentSchema */
export type RegistryDocument = Static<typeof RegistryDocumentSchema>;

/** The format version corral writes. The original controller wrote "1.0". */
export const REGISTRY_VERSION = "1.1";

/** Status values corral writes; files from elsewhere may hold others. */
export type EntryStatus = "loading" | "running" | "unhealthy" | "stopping" | "exited";

/**
 * What corral knew of a server that exited unexpectedly: how it ended, its last log lines, its
 * last `/slots` state and usage, its uptime and what the supervisor decided about a restart.
 * @example
 * const report: CrashReport = { slot: "0", pid: 4242, model_id: "qwen", reason: "process 4242 is gone",
 *   detected_at: "2026-11-26T12:00:00.000Z", started_at: "2026-11-26T11:00:00.000Z",
 *   exit: { code: 134, signal: null, known: true }, log_tail: ["GGML_ASSERT(...) failed"],
 *   restart: { decision: "restart", reason: "attempt 1 of 5 in 1000 ms", attempt: 1, max_attempts: 5, delay_ms: 1000 } }
 */
export const CrashReportSchema = Type.Object(
  {
    slot: Type.String(),
    pid: Type.Integer(),
    model_id: Type.String(),
    reason: Type.String({ description: "what the process check saw" }),
    detected_at: Type.String({ description: "ISO time the supervisor saw it gone" }),
    started_at: Type.String(),
    uptime_ms: Type.Optional(Type.Number({ description: "from its start to the last tick that saw it alive" })),
    last_seen_at: Type.Optional(Type.String({ description: "ISO time of the last tick that saw it alive" })),
    exit: Type.Object({
      code: Type.Union([Type.Integer(), Type.Null()]),
      signal: Type.Union([Type.String(), Type.Null()]),
      known: Type.Boolean({
        description: "false: this corral did not spawn it (reattached, adopted), so it cannot tell",
      }),
      note: Type.Optional(Type.String()),
    }),
    usage: Type.Optional(
      Type.Object({
        cpu_percent: Type.Number(),
        rss_bytes: Type.Number(),
        gpu_memory_mib: Type.Optional(Type.Number()),
        at: Type.String(),
      }),
    ),
    slots: Type.Optional(
      Type.Object({
        at: Type.String(),
        slots: Type.Array(
          Type.Object({
            id: Type.Optional(Type.Integer()),
            is_processing: Type.Boolean(),
            n_ctx: Type.Optional(Type.Integer()),
            n_decoded: Type.Optional(Type.Integer()),
            id_task: Type.Optional(Type.Integer()),
          }),
        ),
      }),
    ),
    log_file: Type.Optional(Type.String()),
    log_tail: Type.Array(Type.String(), { description: "its last 50 log lines (each cut at 1000 characters)" }),
    restart: Type.Object({
      decision: Type.Union([Type.Literal("restart"), Type.Literal("none"), Type.Literal("give-up")]),
      reason: Type.String(),
      attempt: Type.Optional(Type.Integer()),
      max_attempts: Type.Optional(Type.Integer()),
      delay_ms: Type.Optional(Type.Integer()),
    }),
  },
  { $id: "CrashReport" },
);
/** @see CrashReportSchema */
export type CrashReport = Static<typeof CrashReportSchema>;

/**
 * What a configuration reload changed, as its history event carries it.
 * @example
 * const summary: ReloadSummary = { file: "/h/corral.yaml", changed: ["webhooks"], added: [], removed: [], changed_models: ["qwen"], stale: ["0"] }
 */
export const ReloadSummarySchema = Type.Object({
  file: Type.Optional(Type.String()),
  changed: Type.Array(Type.String(), { description: "top-level settings that changed" }),
  added: Type.Array(Type.String(), { description: "model ids" }),
  removed: Type.Array(Type.String(), { description: "model ids" }),
  changed_models: Type.Array(Type.String(), { description: "model ids whose settings changed" }),
  stale: Type.Array(Type.String(), { description: "slots now marked stale" }),
  restart_needed: Type.Optional(
    Type.Array(Type.String(), { description: "settings that take effect only when corral serve restarts" }),
  ),
});
/** @see ReloadSummarySchema */
export type ReloadSummary = Static<typeof ReloadSummarySchema>;

/**
 * One line of `history.jsonl`.
 * @example
 * const ev: HistoryEvent = { time: "2026-11-26T12:00:00.000Z", event: "registered", slot: "0", pid: 4242 }
 */
export const HistoryEventSchema = Type.Object(
  {
    time: Type.String(),
    event: Type.String({ description: "registered, unregistered, status, killed, orphan-killed, …" }),
    slot: Type.Optional(Type.String()),
    pid: Type.Optional(Type.Integer()),
    model_id: Type.Optional(Type.String()),
    from: Type.Optional(Type.String()),
    to: Type.Optional(Type.String()),
    reason: Type.Optional(Type.String()),
    by: Type.Optional(Type.String({ description: "name of the API token that made the request" })),
    report: Type.Optional(CrashReportSchema),
    reload: Type.Optional(ReloadSummarySchema),
  },
  { additionalProperties: true },
);
/** @see HistoryEventSchema */
export type HistoryEvent = Static<typeof HistoryEventSchema>;

/**
 * `GET /api/v1/history`: events of `history.jsonl`, newest first.
 * @example
 * const body: HistoryList = { events: [{ time: "2026-11-26T12:00:00.000Z", event: "registered", slot: "0" }] }
 */
export const HistoryListSchema = Type.Object({ events: Type.Array(HistoryEventSchema) });
/** @see HistoryListSchema */
export type HistoryList = Static<typeof HistoryListSchema>;
