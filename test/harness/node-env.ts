// A cluster that runs Pods: the control plane as a real cluster has it (ServiceAccount admission,
// scheduler, the workload controllers), one real node, moto behind the AWS proxy where Pods reach
// it, and a TLS + htpasswd registry that answers as two accounts' ECR hosts on port 443. The
// operator is installed into it as users install it, from the image and the Helm chart.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type V1Pod } from "@kubernetes/client-node";
import { startAwsProxy, type AwsProxy } from "./aws-proxy.ts";
import { buildBusyboxImages } from "./busybox-image.ts";
import { startControlPlane, workloadControllers, type ControlPlane } from "./controlplane.ts";
import { motoDefaultCredentials, startMoto, type Moto } from "./moto.ts";
import { chartDir, runHelm } from "./helm.ts";
import { checkNodePrerequisites, nodeAddress, startNode, type TestNode } from "./node.ts";
import { buildOperatorImage } from "./operator-image.ts";
import { originalRegistry } from "./original-operator.ts";
import { binDir, requireBinary } from "./paths.ts";
import { startRegistry, type LocalRegistry, type RegistryCredentials } from "./registry.ts";
import { eventually, type EventuallyOptions } from "./wait.ts";

const run = promisify(execFile);

/** Two accounts' registries in one region: one token from moto serves both. */
export const ecrHosts = [
  "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
  "210987654321.dkr.ecr.eu-west-1.amazonaws.com",
] as const;
/**
 * Every host the registry answers as: the two accounts, and the original operator's default
 * registry (us-east-1), for the migration from it.
 */
const registryHosts = [...ecrHosts, originalRegistry];
/** The walkthrough's image, pushed to the registry behind every ECR host. */
export const appRepository = "os/alpine:latest";
/** A loopback address of the registry's own, so port 443 on it is free. */
const registryAddress = "127.0.24.43";

/** The credentials the registry accepts: user AWS and the password in moto's token for the account. */
export function ecrRegistryCredentials(
  password = `${ecrAccount(ecrHosts[0])}-auth-token`,
): RegistryCredentials {
  return { username: "AWS", password };
}

function ecrAccount(host: string): string {
  return host.split(".")[0] ?? "";
}

export interface NodeEnv {
  plane: ControlPlane;
  node: TestNode;
  moto: Moto;
  /** The AWS proxy in front of moto, on the node's address so that Pods reach it. */
  aws: AwsProxy;
  registry: LocalRegistry;
  core: CoreV1Api;
  apps: AppsV1Api;
  objects: CustomObjectsApi;
  /** Runs the control plane's own kubectl against the cluster; `input` goes to its stdin. */
  kubectl(args: readonly string[], input?: string): Promise<string>;
  stop(): Promise<void>;
}

export interface NodeEnvOptions {
  /** CRDs to install in the control plane (the chart installs the operator's own). */
  crds?: object[];
}

/** Starts everything; stops what it started when any part fails, so a failed set-up leaves nothing behind. */
export async function startNodeEnv(options: NodeEnvOptions = {}): Promise<NodeEnv> {
  checkNodePrerequisites();
  const kubectlBin = requireBinary(join(binDir, "kubectl"));
  const stack: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of stack.reverse()) await stop();
    stack.length = 0;
  };
  try {
    const plane = await startControlPlane({
      controllerManager: true,
      controllers: workloadControllers,
      scheduler: true,
      serviceAccountAdmission: true,
      servingAddresses: [nodeAddress],
      crds: options.crds,
    });
    stack.push(() => plane.stop());
    const moto = await startMoto();
    stack.push(() => moto.stop());

    const credentials = ecrRegistryCredentials();
    const registry = await startRegistry([credentials], {
      address: registryAddress,
      port: 443,
      hostNames: registryHosts,
    });
    stack.push(() => registry.stop());
    const images = await buildBusyboxImages();
    try {
      await registry.pushImage(images.source("app"), appRepository, credentials);
    } finally {
      await images.remove();
    }

    const node = await startNode({
      plane,
      registry: {
        address: registryAddress,
        hostNames: registryHosts,
        caPath: join(registry.certDir, "ca.crt"),
      },
    });
    stack.push(() => node.stop());
    // After the node: its bridge carries the address Pods reach the host on.
    const aws = await startAwsProxy(moto.endpoint, nodeAddress);
    stack.push(() => aws.stop());

    return {
      plane,
      node,
      moto,
      aws,
      registry,
      core: plane.kubeConfig.makeApiClient(CoreV1Api),
      apps: plane.kubeConfig.makeApiClient(AppsV1Api),
      objects: plane.kubeConfig.makeApiClient(CustomObjectsApi),
      async kubectl(args, input) {
        const child = run(kubectlBin, ["--kubeconfig", plane.kubeconfigPath, ...args], {
          maxBuffer: 16 * 1024 * 1024,
          env: { PATH: process.env.PATH ?? "", HOME: node.dir },
        });
        if (input !== undefined) child.child.stdin?.end(input);
        return (await child).stdout;
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** The chart's release and namespace, as the README installs it. */
export const operatorRelease = { name: "ecr-creds-refresher", namespace: "ecr-system" } as const;

/**
 * Installs the operator as users do: the image built from the Dockerfile, imported into the node,
 * and the Helm chart with its defaults apart from the image, moto's keys as the credentials Secret,
 * the region, and the AWS endpoint Pods reach. The namespace enforces the restricted Pod Security
 * Standard. `set` adds --set pairs. Returns the image reference.
 */
export async function installOperatorChart(env: NodeEnv, set: readonly string[] = []): Promise<string> {
  const image = await buildOperatorImage();
  await env.node.importImage(image.archivePath);
  await env.core.createNamespace({
    body: {
      metadata: {
        name: operatorRelease.namespace,
        labels: { "pod-security.kubernetes.io/enforce": "restricted" },
      },
    },
  });
  const [repository = "", tag = ""] = image.reference.split(/:(?=[^:]+$)/);
  const values = [
    `image.repository=${repository}`,
    `image.tag=${tag}`,
    "credentials.source=secret",
    `credentials.accessKeyId=${motoDefaultCredentials.accessKeyId}`,
    `credentials.secretAccessKey=${motoDefaultCredentials.secretAccessKey}`,
    "aws.region=eu-west-1",
    `aws.endpointUrl=${env.aws.endpoint}`,
    ...set,
  ];
  await runHelm([
    "install",
    operatorRelease.name,
    chartDir,
    ...helmTarget(env),
    ...values.flatMap((pair) => ["--set", pair]),
    "--wait",
    "--timeout",
    "3m",
  ]);
  return image.reference;
}

/** `helm upgrade --reuse-values` with more --set pairs, waiting for the rollout. */
export async function upgradeOperatorChart(env: NodeEnv, set: readonly string[]): Promise<void> {
  await runHelm([
    "upgrade",
    operatorRelease.name,
    chartDir,
    ...helmTarget(env),
    "--reuse-values",
    ...set.flatMap((pair) => ["--set", pair]),
    "--wait",
    "--timeout",
    "3m",
  ]);
}

export async function uninstallOperatorChart(env: NodeEnv): Promise<void> {
  await runHelm(["uninstall", operatorRelease.name, ...helmTarget(env), "--wait"]);
}

function helmTarget(env: NodeEnv): string[] {
  return ["--kubeconfig", env.plane.kubeconfigPath, "--namespace", operatorRelease.namespace];
}

/** Why a Pod's containers are waiting (ImagePullBackOff, ErrImagePull, ...), or undefined. */
export function waitingReasons(pod: V1Pod): string[] {
  return [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])]
    .map((status) => status.state?.waiting?.reason)
    .filter((reason): reason is string => reason !== undefined);
}

/** Waits for a Pod to reach `phase`, or for `check` on it to pass. */
export async function waitForPod(
  env: NodeEnv,
  namespace: string,
  name: string,
  check: (pod: V1Pod) => void,
  options: EventuallyOptions = {},
): Promise<V1Pod> {
  return eventually(
    async () => {
      const pod = await env.core.readNamespacedPod({ namespace, name });
      check(pod);
      return pod;
    },
    { timeoutMs: 120_000, intervalMs: 250, message: `Pod ${namespace}/${name}`, ...options },
  );
}

export interface LocalCluster {
  plane: ControlPlane;
  moto: Moto;
  /** The node and everything around it, when one was asked for. */
  nodeEnv: NodeEnv | undefined;
  stop(): Promise<void>;
}

/** The demo's and the local environment's cluster: with a real node, or a control plane and moto only. */
export async function startLocalCluster(withNode: boolean, crds: object[]): Promise<LocalCluster> {
  if (withNode) {
    const nodeEnv = await startNodeEnv({ crds });
    return { plane: nodeEnv.plane, moto: nodeEnv.moto, nodeEnv, stop: () => nodeEnv.stop() };
  }
  const plane = await startControlPlane({ controllerManager: true, crds });
  const moto = await startMoto().catch(async (err: unknown) => {
    await plane.stop();
    throw err;
  });
  return {
    plane,
    moto,
    nodeEnv: undefined,
    stop: async () => {
      await moto.stop();
      await plane.stop();
    },
  };
}
