// Takes a lock, prints "locked", and holds it until killed.
// usage: bun store-lock-holder.ts <lock file> <flock|pidfile>
import { type LockMethod, withFileLock } from "../../src/store/lock.ts";

const [lockFile, method] = process.argv.slice(2);
if (!lockFile || (method !== "flock" && method !== "pidfile")) {
  throw new Error("usage: store-lock-holder.ts <lock file> <flock|pidfile>");
}
await withFileLock(
  lockFile,
  async () => {
    console.log("locked");
    await new Promise(() => setInterval(() => {}, 60_000));
  },
  { method: method as LockMethod },
);
