/**
 * The shapes of what the process layer reports, as TypeBox schemas: the API declares them as its
 * responses and the page imports their static types. Only TypeBox here, so `@corral/core/views`
 * stays free of Node and Bun APIs.
 */
import { type Static, Type } from "@sinclair/typebox";

/**
 * What a registry entry's PID turned out to be. `judgeEntry` never answers "unknown"; callers
 * use it when the probe itself failed.
 * @example
 * Value.Check(ProbeStateSchema, "pid-reused") // true
 */
export const ProbeStateSchema = Type.Union(
  [
    Type.Literal("running"),
    Type.Literal("exited"),
    Type.Literal("pid-reused"),
    Type.Literal("access-denied"),
    Type.Literal("unknown"),
  ],
  { description: "what the OS says about the PID: running | exited | pid-reused | access-denied | unknown" },
);
/** @see ProbeStateSchema */
export type ProbeState = Static<typeof ProbeStateSchema>;

/**
 * CPU and memory of one process.
 * @example
 * const usage: ProcessUsage = { cpu_percent: 12.5, rss_bytes: 1_000_000, gpu_memory_mib: 512 }
 */
export const ProcessUsageSchema = Type.Object({
  cpu_percent: Type.Number({ description: "CPU use since the previous sample (or since start), percent of one core" }),
  rss_bytes: Type.Number(),
  gpu_memory_mib: Type.Optional(Type.Number({ description: "GPU memory this PID holds, MiB, where nvidia-smi tells" })),
});
/** @see ProcessUsageSchema */
export type ProcessUsage = Static<typeof ProcessUsageSchema>;

/**
 * Whose an untracked llama-server is: "ours" carries this home's marker and runs as our user;
 * "likely-ours" has no marker but runs as our user (started by hand, or by the original
 * controller); "foreign" belongs to another corral home or another user.
 * @example
 * Value.Check(OrphanVerdictSchema, "likely-ours") // true
 */
export const OrphanVerdictSchema = Type.Union(
  [Type.Literal("ours"), Type.Literal("likely-ours"), Type.Literal("foreign")],
  { description: "ours | likely-ours | foreign" },
);
/** @see OrphanVerdictSchema */
export type OrphanVerdict = Static<typeof OrphanVerdictSchema>;

/**
 * A running llama-server that the registry does not track, with the evidence about it.
 * @example
 * const orphan: Orphan = { pid: 4242, ppid: 1, command_line: ["llama-server"], marker_readable: true,
 *   verdict: "likely-ours", reasons: ["runs as you, without a corral marker"] }
 */
export const OrphanSchema = Type.Object({
  pid: Type.Integer(),
  ppid: Type.Integer(),
  uid: Type.Optional(Type.Integer()),
  user: Type.Optional(Type.String()),
  executable: Type.Optional(Type.String()),
  command_line: Type.Array(Type.String()),
  model_path: Type.Optional(Type.String({ description: "from -m / --model on its command line" })),
  port: Type.Optional(Type.Integer()),
  host: Type.Optional(Type.String()),
  started_at: Type.Optional(Type.String({ description: "process start time, ISO" })),
  marker: Type.Optional(
    Type.Object(
      { home_id: Type.Optional(Type.String()), instance_id: Type.Optional(Type.String()) },
      { description: "the corral marker variables found in its environment" },
    ),
  ),
  marker_readable: Type.Boolean({ description: "whether its environment could be read at all" }),
  verdict: OrphanVerdictSchema,
  reasons: Type.Array(Type.String(), { description: "short sentences saying why" }),
});
/** @see OrphanSchema */
export type Orphan = Static<typeof OrphanSchema>;
