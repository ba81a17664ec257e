/**
 * Two small facts about the OS that several layers ask (the store's lock, the process probe and
 * kills): an error's errno code, and whether a PID exists at all.
 */

/**
 * The `code` of a Node or Bun system error ("ENOENT", "EPERM" …), else undefined.
 * @example
 * errorCode(Object.assign(new Error("x"), { code: "ESRCH" })) // "ESRCH"
 */
export function errorCode(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : undefined;
}

/**
 * Whether a process with this PID exists (signal 0). One we may not signal (EPERM) exists too;
 * a zombie exists until it is reaped.
 * @example
 * pidExists(process.pid) // true
 */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === "EPERM";
  }
}
