// The comparator users recognise: bench/cronjob-refresh.sh, a CronJob-style script (the AWS CLI's
// `aws ecr get-login-password`, then kubectl per namespace), run once over the benchmark's namespaces
// as its own client certificate user, against the same API server and the same AWS stand-in. Timed
// like the baseline, from its start until the driver's watches see every namespace done; its requests
// are its user's entries in the API server's audit log. A reference, not a target.
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { binDir, repoRoot } from "../test/harness/paths.ts";
import { motoDefaultCredentials } from "../test/harness/moto.ts";
import type { BenchEnv } from "./bench-env.ts";
import { byVerbAndResource, standInAuthorization, type Log } from "./scenarios.ts";

/** The AWS CLI from PyPI, in a virtualenv of its own: its botocore pin must not move moto's. */
const awsCliVersion = "1.46.2";
const awsCliVenv = join(repoRoot, ".cache", "awscli-venv");
const scriptUser = "cronjob-script";
const serviceAccount = "default";

/** The AWS CLI's bin directory, installed on first use. */
export function awsCliBin(log: Log): string {
  const bin = join(awsCliVenv, "bin");
  const installed = (): boolean => {
    if (!existsSync(join(bin, "aws"))) return false;
    try {
      const version = execFileSync(join(bin, "aws"), ["--version"], { encoding: "utf8" });
      return version.startsWith(`aws-cli/${awsCliVersion} `);
    } catch {
      // A virtualenv moved from where it was made, or a broken install: made again below.
      return false;
    }
  };
  if (installed()) return bin;
  log(`installing the AWS CLI ${awsCliVersion} into ${awsCliVenv} (first use only)`);
  execFileSync("python3", ["-m", "venv", "--clear", awsCliVenv], { stdio: "inherit" });
  execFileSync(
    join(bin, "pip"),
    ["install", "--quiet", "--disable-pip-version-check", `awscli==${awsCliVersion}`],
    { stdio: "inherit" },
  );
  if (!installed()) throw new Error(`the AWS CLI ${awsCliVersion} did not install into ${awsCliVenv}`);
  return bin;
}

export interface CronJobRun {
  namespaces: number;
  /** From starting the script until the watches saw every namespace's Secret and ServiceAccount entry. */
  seconds: number;
  /** User plus system CPU seconds of the script and every process it started (aws, kubectl). */
  cpu_seconds: number;
  /** Its requests to the API server (audit log), all verbs, discovery included. */
  api_requests: number;
  requests: Record<string, number>;
  token_calls: number;
}

/** The registry host of the stand-in's account, asked directly (not through the counting proxy). */
async function registryHost(env: BenchEnv): Promise<string> {
  return ((await standInAuthorization(env))?.proxyEndpoint ?? "").replace(/^https?:\/\//, "");
}

/** `times` prints the shell's own CPU time, then its children's: "0m1.234s 0m0.567s". */
function childCpuSeconds(timesOutput: string): number {
  const line = timesOutput.trim().split("\n").at(-1) ?? "";
  const parts = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return parts.reduce((sum, s) => sum + s, 0);
}

/** Runs the script once over `names` with no operator running; nothing is cleaned up after it. */
export async function runCronJobScript(
  env: BenchEnv,
  names: readonly string[],
  secretName: string,
  log: Log,
): Promise<CronJobRun> {
  const awsBin = awsCliBin(log);
  const user = await env.plane.userKubeConfig(scriptUser, ["system:masters"]);
  const home = await mkdtemp(join(tmpdir(), "ecr-bench-cronjob-"));
  try {
    const registry = await registryHost(env);
    const mark = await env.audit.mark();
    const tokenCallsBefore = env.aws.count("ecr:GetAuthorizationToken");
    const started = performance.now();
    // Watched from the start: a namespace counts when the watch sees it done, as for the baseline.
    const converged = env.watch.waitFor(
      names,
      (ns) => env.watch.hasPullSecret(ns, secretName, serviceAccount),
      Math.max(120_000, names.length * 2000),
      "CronJob-style script",
    );
    // Awaited below; until then a failure must not surface as an unhandled rejection.
    converged.catch(() => undefined);
    const child = spawn(
      "bash",
      ["-c", 'bash "$0"; status=$?; times >&2; exit $status', join(repoRoot, "bench", "cronjob-refresh.sh")],
      {
        stdio: ["ignore", "inherit", "pipe"],
        env: {
          PATH: `${awsBin}:${binDir}:${process.env.PATH ?? ""}`,
          HOME: home,
          KUBECONFIG: user.kubeconfigPath,
          AWS_ACCESS_KEY_ID: motoDefaultCredentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: motoDefaultCredentials.secretAccessKey,
          AWS_DEFAULT_REGION: "eu-west-1",
          AWS_ENDPOINT_URL: env.aws.endpoint,
          AWS_CONFIG_FILE: join(home, "no-aws-config"),
          AWS_SHARED_CREDENTIALS_FILE: join(home, "no-aws-credentials"),
          AWS_EC2_METADATA_DISABLED: "true",
          REGISTRY: registry,
          SECRET_NAME: secretName,
          NAMESPACES: names.join(" "),
        },
      },
    );
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const [code] = (await once(child, "exit")) as [number | null];
    if (code !== 0)
      throw new Error(`the CronJob-style script failed (${String(code)}): ${stderr.slice(-2000)}`);
    const { doneAt } = await converged;
    const requests = byVerbAndResource(await env.audit.entries(mark), scriptUser);
    const run: CronJobRun = {
      namespaces: names.length,
      seconds: Math.round(doneAt - started) / 1000,
      cpu_seconds: Math.round(childCpuSeconds(stderr) * 100) / 100,
      api_requests: Object.values(requests).reduce((sum, n) => sum + n, 0),
      requests,
      token_calls: env.aws.count("ecr:GetAuthorizationToken") - tokenCallsBefore,
    };
    log(
      `CronJob-style script: ${names.length} namespaces in ${run.seconds} s using ${run.cpu_seconds} CPU s; ${run.api_requests} API requests ${JSON.stringify(requests)}, ${run.token_calls} token calls`,
    );
    return run;
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}
