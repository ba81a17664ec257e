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
