// Child processes of the harness: started with their output kept in a log
// file, stopped on demand and killed if the test process exits first.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logPath: string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  stop(graceMs?: number): Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

const running = new Set<ManagedProcess>();

function killAllNow(): void {
  for (const proc of running) {
    proc.kill("SIGKILL");
  }
}

process.once("exit", killAllNow);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAllNow();
    process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1));
  });
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function startProcess(
  name: string,
  command: string,
  args: string[],
  logPath: string,
  options: StartOptions = {},
): ManagedProcess {
  const log: WriteStream = createWriteStream(logPath, { flags: "a" });
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      running.delete(proc);
      log.end();
      resolve(code ?? signal ?? "unknown");
    });
    child.once("error", (err) => {
      log.write(`failed to start ${command}: ${err.message}\n`);
    });
  });
  const proc: ManagedProcess = {
    name,
    child,
    logPath,
    exited,
    kill(signal) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
      }
    },
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) {
        return;
      }
      child.kill("SIGTERM");
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
      }, graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  running.add(proc);
  return proc;
}

/** Waits for a child to exit, or rejects if it exits before `ready` resolves. */
export async function whileRunning<T>(proc: ManagedProcess, ready: Promise<T>): Promise<T> {
  const died = proc.exited.then((code) => {
    throw new Error(`${proc.name} exited with ${String(code)} before it was ready; see ${proc.logPath}`);
  });
  return Promise.race([ready, died]);
}

/**
 * Stops what a suite's `before` started, in order, skipping parts it never got to (undefined) and
 * going on past a failure, so that a set-up that failed halfway still leaves nothing running.
 */
export async function stopStarted(...parts: ({ stop(): Promise<void> } | undefined)[]): Promise<void> {
  const failures: unknown[] = [];
  for (const part of parts) {
    try {
      await part?.stop();
    } catch (err) {
      failures.push(err);
    }
  }
  if (failures.length > 0) throw new AggregateError(failures, "stopping the test environment failed");
}
