// The local environment for trying the operator by hand: a real control plane
// and the AWS stand-ins (moto, and one for ECR Public, which moto lacks) in the
// background, and with --node a real node that runs Pods and a registry
// answering as two ECR hosts.
//   node scripts/dev.ts up [--node]  start them; writes .dev/kubeconfig and .dev/aws.env
//   node scripts/dev.ts down         stop them
// `up` hands the work to a detached `serve` process that owns the children.
import { spawn } from "node:child_process";
import { existsSync, openSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { ecrPullSecretCrd } from "../src/api/crd.ts";
import { ecrPublicTarget, startEcrPublicStandIn } from "../test/harness/ecr-public-standin.ts";
import { podSubnet } from "../test/harness/node.ts";
import { appRepository, ecrHosts, startLocalCluster } from "../test/harness/node-env.ts";
import { repoRoot } from "../test/harness/paths.ts";

const devDir = join(repoRoot, ".dev");
const pidFile = join(devDir, "pid");
const readyFile = join(devDir, "ready");
const logFile = join(devDir, "dev.log");

async function runningPid(): Promise<number | undefined> {
  if (!existsSync(pidFile)) {
    return undefined;
  }
  const pid = Number((await readFile(pidFile, "utf8")).trim());
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

async function up(): Promise<void> {
  const existing = await runningPid();
  if (existing !== undefined) {
    console.log(`local environment already running (pid ${existing}); kubeconfig: .dev/kubeconfig`);
    return;
  }
  await mkdir(devDir, { recursive: true });
  await rm(readyFile, { force: true });
  const out = openSync(logFile, "a");
  const serveArgs = process.argv.includes("--node") ? ["serve", "--node"] : ["serve"];
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, ...serveArgs], {
    detached: true,
    stdio: ["ignore", out, out],
  });
  child.unref();
  const deadline = Date.now() + 120_000;
  while (!existsSync(readyFile)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`the local environment did not start; see ${logFile}`);
    }
    await delay(200);
  }
  console.log(await readFile(readyFile, "utf8"));
}

async function serve(): Promise<void> {
  const withNode = process.argv.includes("--node");
  const cluster = await startLocalCluster(withNode, [ecrPullSecretCrd]);
  const { plane, moto, nodeEnv } = cluster;
  const ecrPublic = await startEcrPublicStandIn();
  // Pods reach AWS through the node's proxy; it hands ECR Public calls to the stand-in.
  nodeEnv?.aws.routeTarget(ecrPublicTarget, ecrPublic.endpoint);
  const stop = async (): Promise<void> => {
    await ecrPublic.stop();
    await cluster.stop();
    await rm(pidFile, { force: true });
    await rm(readyFile, { force: true });
    process.exit(0);
  };
  process.removeAllListeners("SIGTERM");
  process.removeAllListeners("SIGINT");
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());

  await writeFile(join(devDir, "kubeconfig"), plane.kubeConfig.exportConfig(), { mode: 0o600 });
  const env = { ...moto.sdkEnv(), AWS_ENDPOINT_URL_ECR_PUBLIC: ecrPublic.endpoint };
  await writeFile(
    join(devDir, "aws.env"),
    Object.entries(env)
      .map(([key, value]) => `export ${key}=${value}`)
      .join("\n") + "\n",
    { mode: 0o600 },
  );
  await writeFile(pidFile, `${process.pid}\n`);
  await writeFile(
    readyFile,
    [
      `local control plane: ${plane.server} (ready in ${(plane.startupMs / 1000).toFixed(1)} s)`,
      `AWS stand-in (moto): ${moto.endpoint}`,
      `ECR Public stand-in: ${ecrPublic.endpoint} (AWS_ENDPOINT_URL_ECR_PUBLIC in .dev/aws.env)`,
      "kubeconfig:          .dev/kubeconfig   (kubectl --kubeconfig .dev/kubeconfig get ns)",
      "AWS SDK environment: .dev/aws.env      (source .dev/aws.env)",
      ...(nodeEnv === undefined
        ? []
        : [
            `real node:           ${nodeEnv.node.name}, Pods on ${podSubnet}`,
            `private images:      ${ecrHosts.map((host) => `${host}/${appRepository}`).join(", ")}`,
            `AWS for Pods:        ${nodeEnv.aws.endpoint} (e.g. the chart's aws.endpointUrl)`,
          ]),
      "stop with:           npm run dev:down",
    ].join("\n"),
  );
  await Promise.race([
    plane.apiServer.exited,
    plane.etcd.exited,
    moto.process.exited,
    ...(nodeEnv?.node.processes.map((p) => p.exited) ?? []),
  ]);
  console.error("a process of the local environment exited; stopping the rest");
  await stop();
}

async function down(): Promise<void> {
  const pid = await runningPid();
  if (pid === undefined) {
    console.log("local environment is not running");
    return;
  }
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + 30_000;
  while ((await runningPid()) !== undefined && Date.now() < deadline) {
    await delay(200);
  }
  if ((await runningPid()) !== undefined) {
    process.kill(pid, "SIGKILL");
  }
  await rm(pidFile, { force: true });
  console.log("local environment stopped");
}

const commands: Record<string, () => Promise<void>> = { up, down, serve };
const command = commands[process.argv[2] ?? ""];
if (command === undefined) {
  console.error("usage: node scripts/dev.ts up [--node] | down");
  process.exit(2);
}
await command();
