// An operator running in-process against the real control plane and moto (behind a counting,
// fault-injecting proxy), with the helpers integration tests share.
import { Writable } from "node:stream";
import { CoreV1Api, CustomObjectsApi, type V1Secret, type V1ServiceAccount } from "@kubernetes/client-node";
import { ecrPullSecretCrd } from "../../src/api/crd.ts";
import {
  API_VERSION,
  GROUP,
  KIND,
  PLURAL,
  VERSION,
  type ECRPullSecret,
  type ECRPullSecretSpec,
} from "../../src/api/types.ts";
import { loadConfig, type RawConfig } from "../../src/config.ts";
import { Operator } from "../../src/operator.ts";
import type { Clock } from "../../src/clock.ts";
import type { ClusterConnection } from "../../src/kube/kubeconfig/cluster-access.ts";
import { loadKubeConfig } from "../../src/kube/kubeconfig/load.ts";
import { createLogger } from "../../src/observability/logger.ts";
import type { Metrics } from "../../src/observability/metrics.ts";
import { MetricsObserver } from "../../src/observability/metrics-observer.ts";
import { startAwsProxy, type AwsProxy } from "./aws-proxy.ts";
import { startControlPlane, type ControlPlane } from "./controlplane.ts";
import { createMotoCredentials, startMoto, type Moto, type MotoOptions } from "./moto.ts";
import { eventually, type EventuallyOptions } from "./wait.ts";

export const operatorNamespace = "ecr-system";
export const credentialsSecretName = "aws-creds";

export interface OperatorEnv {
  plane: ControlPlane;
  moto: Moto;
  aws: AwsProxy;
  core: CoreV1Api;
  objects: CustomObjectsApi;
  /** Every log line the in-process operators wrote. */
  logs: string[];
  /** The running operator, if any. */
  operator: Operator | undefined;
  startOperator(overrides?: RawConfig, options?: StartOperatorOptions): Promise<Operator>;
  stopOperator(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOperatorOptions {
  /**
   * false: a standby replica that syncs its caches and serves the webhook but never reconciles or
   * writes (as a replica that does not hold the Lease). Default true.
   */
  workers?: boolean;
  metrics?: Metrics;
  /** The operator's clock, e.g. an OffsetClock a test moves past a token's expiry. */
  clock?: Clock;
}

export interface OperatorEnvOptions {
  startOperator?: boolean;
  config?: RawConfig;
  /** Write the API server's audit log (plane.auditLogPath). */
  audit?: boolean;
  /** Run the operator as this user (in system:masters) instead of admin, to tell its requests apart in the audit log. */
  operatorUser?: string;
  /** The operator user's groups instead of system:masters, e.g. a ServiceAccount's, to run it under RBAC. */
  operatorGroups?: readonly string[];
  moto?: MotoOptions;
  /** Turn the API server's ServiceAccount admission plugin on, so that Pods get their account's pull secrets. */
  serviceAccountAdmission?: boolean;
  /** Wraps the operator's cluster connection, e.g. to delay its requests. */
  connection?: (loaded: ClusterConnection) => ClusterConnection;
}

export async function startOperatorEnv(options: OperatorEnvOptions = {}): Promise<OperatorEnv> {
  const plane = await startControlPlane({
    controllerManager: true,
    crds: [ecrPullSecretCrd],
    audit: options.audit === true,
    serviceAccountAdmission: options.serviceAccountAdmission === true,
  });
  // The operator reads its kubeconfig file with its own loader, as the process does.
  const operatorKubeconfigPath =
    options.operatorUser === undefined
      ? plane.kubeconfigPath
      : (await plane.userKubeConfig(options.operatorUser, options.operatorGroups ?? ["system:masters"]))
          .kubeconfigPath;
  const loaded = loadKubeConfig({ path: operatorKubeconfigPath, env: {} });
  const operatorKubeConfig = options.connection?.(loaded) ?? loaded;
  const moto = await startMoto(options.moto);
  const aws = await startAwsProxy(moto.endpoint);
  const core = plane.kubeConfig.makeApiClient(CoreV1Api);
  const objects = plane.kubeConfig.makeApiClient(CustomObjectsApi);
  await createMotoCredentials(core, operatorNamespace, credentialsSecretName);

  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(
        ...chunk
          .toString()
          .split("\n")
          .filter((line) => line.length > 0),
      );
      callback();
    },
  });

  const env: OperatorEnv = {
    plane,
    moto,
    aws,
    core,
    objects,
    logs,
    operator: undefined,
    async startOperator(overrides = {}, startOptions = {}) {
      const config = loadConfig(
        {
          operatorNamespace,
          credentialsSecret: `${operatorNamespace}/${credentialsSecretName}`,
          region: "eu-west-1",
          awsEndpointUrl: aws.endpoint,
          logLevel: "debug",
          logFormat: "json",
          ...overrides,
        },
        {},
      );
      const log = createLogger({ level: config.logLevel, pretty: false, destination: sink });
      const standby = startOptions.workers === false;
      const operator = new Operator({
        config,
        kubeConfig: operatorKubeConfig,
        log,
        observer: startOptions.metrics === undefined ? undefined : new MetricsObserver(startOptions.metrics),
        clock: startOptions.clock,
        minRequeueMs: 1_000,
        canWrite: standby ? () => false : undefined,
      });
      if (standby) {
        await operator.startCaches();
        operator.startWebhook();
      } else {
        await operator.start();
      }
      env.operator = operator;
      return operator;
    },
    async stopOperator() {
      await env.operator?.stop();
      env.operator = undefined;
    },
    async stop() {
      await env.stopOperator();
      await aws.stop();
      await moto.stop();
      await plane.stop();
    },
  };
  if (options.startOperator !== false) {
    await env.startOperator(options.config);
  }
  return env;
}

export async function createNamespace(
  env: OperatorEnv,
  name: string,
  labels?: Record<string, string>,
): Promise<void> {
  await env.core.createNamespace({ body: { metadata: { name, labels } } });
}

export async function createPullSecretCr(
  env: OperatorEnv,
  name: string,
  spec: ECRPullSecretSpec,
): Promise<ECRPullSecret> {
  return (await env.objects.createClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    body: { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec },
  })) as ECRPullSecret;
}

export async function readCr(env: OperatorEnv, name: string): Promise<ECRPullSecret> {
  return (await env.objects.getClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    name,
  })) as ECRPullSecret;
}

export async function deleteCr(env: OperatorEnv, name: string): Promise<void> {
  await env.objects.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, name });
}

export async function readSecret(env: OperatorEnv, namespace: string, name: string): Promise<V1Secret> {
  return env.core.readNamespacedSecret({ namespace, name });
}

export async function readServiceAccount(
  env: OperatorEnv,
  namespace: string,
  name: string,
): Promise<V1ServiceAccount> {
  return env.core.readNamespacedServiceAccount({ namespace, name });
}

export function pullSecretNames(sa: V1ServiceAccount): string[] {
  return (sa.imagePullSecrets ?? []).map((ref) => ref.name ?? "");
}

export interface DockerConfig {
  auths: Record<string, { username: string; password: string; auth: string }>;
}

export function dockerConfigOf(secret: V1Secret): DockerConfig {
  const encoded = secret.data?.[".dockerconfigjson"];
  if (encoded === undefined) {
    throw new Error(
      `Secret ${secret.metadata?.namespace ?? ""}/${secret.metadata?.name ?? ""} has no .dockerconfigjson`,
    );
  }
  return JSON.parse(Buffer.from(encoded, "base64").toString()) as DockerConfig;
}

/** Waits until the namespace has the pull Secret and `serviceAccount` lists it. */
export async function waitForPullSecret(
  env: OperatorEnv,
  namespace: string,
  secretName: string,
  serviceAccount: string | null = "default",
  options: EventuallyOptions = {},
): Promise<V1Secret> {
  return eventually(
    async () => {
      const secret = await readSecret(env, namespace, secretName);
      if (serviceAccount !== null) {
        const sa = await readServiceAccount(env, namespace, serviceAccount);
        if (!pullSecretNames(sa).includes(secretName)) {
          throw new Error(`ServiceAccount ${namespace}/${serviceAccount} does not list ${secretName}`);
        }
      }
      return secret;
    },
    { timeoutMs: 30_000, message: `pull secret ${namespace}/${secretName}`, ...options },
  );
}

export async function waitForReady(
  env: OperatorEnv,
  name: string,
  reason = "Synced",
  options: EventuallyOptions = {},
): Promise<ECRPullSecret> {
  return eventually(
    async () => {
      const cr = await readCr(env, name);
      const ready = cr.status?.conditions?.find((c) => c.type === "Ready");
      if (ready?.reason !== reason || cr.status?.observedGeneration !== cr.metadata.generation) {
        throw new Error(
          `Ready is ${ready?.status ?? "unset"}/${ready?.reason ?? "-"}: ${ready?.message ?? ""}`,
        );
      }
      return cr;
    },
    { timeoutMs: 30_000, message: `${name} Ready with reason ${reason}`, ...options },
  );
}

/** Replaces one key of an AWS credentials Secret in the operator namespace, as a key rotation does. */
export async function replaceCredentialsKey(
  env: OperatorEnv,
  secretName: string,
  key: string,
  value: string,
): Promise<void> {
  await env.core.patchNamespacedSecret({
    namespace: operatorNamespace,
    name: secretName,
    body: [{ op: "replace", path: `/data/${key}`, value: Buffer.from(value).toString("base64") }],
  });
}

/** Replaces the access key id in the operator's AWS credentials Secret, as a key rotation does: it mints again. */
export async function rotateAccessKeyId(env: OperatorEnv, accessKeyId: string): Promise<void> {
  await replaceCredentialsKey(env, credentialsSecretName, "AWS_ACCESS_KEY_ID", accessKeyId);
}
