// The operator as a child process (`node src/main.ts run`, or the compiled build), for tests that
// need what only a process has: its own environment, read by the AWS SDK's default credential
// chain (IRSA, Pod Identity), and its own memory and CPU figures.
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { imageNodeArgs } from "./image.ts";
import { repoRoot } from "./paths.ts";
import { startProcess, type ManagedProcess } from "./processes.ts";

export interface OperatorProcessOptions {
  kubeconfigPath: string;
  /** Flags after `run --kubeconfig <path>`, e.g. ["--operator-namespace", "ecr-system"]. */
  args?: string[];
  /** Environment on top of PATH and the hermetic AWS settings below. */
  env?: Record<string, string>;
  /**
   * "source" runs src/main.ts; "build" runs the compiled dist/main.js (npm run build) with the
   * image's node flags, as the container does.
   */
  entry?: "source" | "build";
}

export interface OperatorProcess {
  readonly process: ManagedProcess;
  /** Every line the operator wrote to stdout and stderr so far. */
  logs(): string[];
  /** SIGTERM, then SIGKILL after a grace period; the logs stay readable through logs(). */
  stop(): Promise<void>;
}

/**
 * Starts the operator with only PATH, `env` and settings that keep the AWS SDK inside the test: no
 * shared config or credentials files, no instance metadata (which would leave loopback). Logs are JSON.
 */
export async function startOperatorProcess(options: OperatorProcessOptions): Promise<OperatorProcess> {
  const dir = await mkdtemp(join(tmpdir(), "ecr-operator-"));
  const logPath = join(dir, "operator.log");
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    AWS_CONFIG_FILE: join(dir, "no-aws-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, "no-aws-credentials"),
    AWS_EC2_METADATA_DISABLED: "true",
    ECR_REFRESHER_LOG_FORMAT: "json",
    ...options.env,
  };
  const proc = startProcess(
    "operator",
    process.execPath,
    [
      ...(options.entry === "build"
        ? [...imageNodeArgs(), join(repoRoot, "dist", "main.js")]
        : [join(repoRoot, "src", "main.ts")]),
      "run",
      "--kubeconfig",
      options.kubeconfigPath,
      ...(options.args ?? []),
    ],
    logPath,
    { env, cwd: repoRoot },
  );
  const readLogs = (): string[] =>
    readFileSync(logPath, "utf8")
      .split("\n")
      .filter((line) => line.length > 0);
  let finalLogs: string[] | undefined;
  return {
    process: proc,
    logs: () => finalLogs ?? readLogs(),
    async stop() {
      await proc.stop();
      finalLogs ??= readLogs();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
