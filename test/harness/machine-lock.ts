// A lock file for what one process at a time may use on this machine (the test node, the image
// build's storage): it holds the owner's pid; a lock whose owner is gone is taken over.
import { existsSync, readFileSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { eventually } from "./wait.ts";

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

export interface LockOptions {
  /** What the lock guards, for the waiting note and the time-out error. */
  what: string;
  timeoutMs: number;
}

/** Waits until the lock at `path` is ours; resolves with the function that releases it. */
export async function acquireLock(path: string, options: LockOptions): Promise<() => Promise<void>> {
  let told = false;
  await eventually(
    async () => {
      try {
        await writeFile(path, `${String(process.pid)}\n`, { flag: "wx" });
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const owner = existsSync(path) ? Number(readFileSync(path, "utf8").trim()) : 0;
      if (!(owner > 0) || !isRunning(owner)) {
        await rm(path, { force: true });
        throw new Error(`took over the lock of process ${String(owner)}, which is gone`);
      }
      if (!told) {
        process.stderr.write(`waiting for process ${String(owner)} to release ${options.what}\n`);
        told = true;
      }
      throw new Error(`${options.what} is held by process ${String(owner)}`);
    },
    { timeoutMs: options.timeoutMs, intervalMs: 500, message: options.what },
  );
  return () => rm(path, { force: true });
}
