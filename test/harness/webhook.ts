// The Pod admission webhook in tests: the chart's MutatingWebhookConfiguration registered by URL on
// loopback (a Service would need a node and a proxy), Pods created as a ReplicaSet would, and the
// API server's own count of webhook calls that failed open.
import { request } from "node:https";
import {
  AdmissionregistrationV1Api,
  loadAllYaml,
  type CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  type V1MutatingWebhookConfiguration,
  type V1Pod,
} from "@kubernetes/client-node";
import { MUTATE_PODS_PATH } from "../../src/webhook/server.ts";
import { helmTemplate } from "./helm.ts";
import { metricValue } from "./prometheus-text.ts";
import { operatorNamespace } from "./operator-env.ts";
import { eventually } from "./wait.ts";

/** The chart's webhook name, as the API server's metrics label it. */
export const webhookName = "pull-secrets.ecr-creds-refresher.io";
/** The configuration name the chart gives release ecr-creds-refresher, and the operator's default. */
export const webhookConfigurationName = "ecr-creds-refresher";

export function webhookUrl(address: string): string {
  const port = address.slice(address.lastIndexOf(":") + 1);
  return `https://127.0.0.1:${port}${MUTATE_PODS_PATH}`;
}

/** The chart's MutatingWebhookConfiguration (default values), calling `url` instead of the Service. */
export async function chartWebhookConfiguration(
  url: string,
  caBundlePem?: string,
): Promise<V1MutatingWebhookConfiguration> {
  const objects = (
    loadAllYaml(await helmTemplate({ namespace: operatorNamespace })) as KubernetesObject[]
  ).filter((o) => o.kind === "MutatingWebhookConfiguration");
  const [configuration] = objects as V1MutatingWebhookConfiguration[];
  if (configuration?.webhooks?.[0] === undefined)
    throw new Error("the chart renders no MutatingWebhookConfiguration");
  for (const webhook of configuration.webhooks ?? []) {
    webhook.clientConfig = {
      url,
      caBundle: caBundlePem === undefined ? undefined : Buffer.from(caBundlePem).toString("base64"),
    };
  }
  return configuration;
}

export async function registerWebhook(
  kc: KubeConfig,
  url: string,
  caBundlePem?: string,
): Promise<V1MutatingWebhookConfiguration> {
  const api = kc.makeApiClient(AdmissionregistrationV1Api);
  return api.createMutatingWebhookConfiguration({ body: await chartWebhookConfiguration(url, caBundlePem) });
}

/** Points the registered webhook at another URL, keeping its caBundle. */
export async function setWebhookUrl(kc: KubeConfig, url: string): Promise<void> {
  const api = kc.makeApiClient(AdmissionregistrationV1Api);
  await api.patchMutatingWebhookConfiguration({
    name: webhookConfigurationName,
    body: [{ op: "replace", path: "/webhooks/0/clientConfig/url", value: url }],
  });
}

export async function unregisterWebhook(kc: KubeConfig): Promise<void> {
  await kc
    .makeApiClient(AdmissionregistrationV1Api)
    .deleteMutatingWebhookConfiguration({ name: webhookConfigurationName });
}

export interface PodOptions {
  serviceAccountName?: string;
  imagePullSecrets?: string[];
  labels?: Record<string, string>;
  dryRun?: boolean;
}

export function podBody(name: string, options: PodOptions = {}): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: options.labels },
    spec: {
      serviceAccountName: options.serviceAccountName,
      imagePullSecrets: options.imagePullSecrets?.map((n) => ({ name: n })),
      containers: [{ name: "app", image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1" }],
    },
  };
}

/**
 * Creates a Pod as a controller would: retried while the ServiceAccount admission plugin refuses it
 * because its ServiceAccount does not exist yet. Returns the Pod as admitted.
 */
export async function createPod(
  core: CoreV1Api,
  namespace: string,
  name: string,
  options: PodOptions = {},
): Promise<V1Pod> {
  return eventually(
    () =>
      core.createNamespacedPod({
        namespace,
        body: podBody(name, options),
        dryRun: options.dryRun === true ? "All" : undefined,
      }),
    { timeoutMs: 30_000, intervalMs: 50, message: `Pod ${namespace}/${name} created` },
  );
}

export function podPullSecrets(pod: V1Pod): string[] {
  return (pod.spec?.imagePullSecrets ?? []).map((ref) => ref.name ?? "");
}

/** The API server's /metrics text, read as admin. */
export async function apiServerMetrics(kc: KubeConfig): Promise<string> {
  const server = kc.getCurrentCluster()?.server ?? "";
  const options: Parameters<typeof request>[1] = { method: "GET" };
  await kc.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    const req = request(`${server}/metrics`, options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        resolve(Buffer.concat(chunks).toString());
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

export interface WebhookCalls {
  /** Calls the API server made to the webhook. */
  calls: number;
  /** Calls the webhook answered with 200. */
  answered: number;
  /** Calls that failed (refused, reset, timed out, bad TLS), after which the Pod was admitted unchanged. */
  failedOpen: number;
}

/** The API server's own count of its calls to a webhook (the chart's by default). */
export async function webhookCalls(kc: KubeConfig, name = webhookName): Promise<WebhookCalls> {
  const text = await apiServerMetrics(kc);
  return {
    calls: metricValue(text, "apiserver_admission_webhook_request_total", { name }),
    answered: metricValue(text, "apiserver_admission_webhook_request_total", { name, code: "200" }),
    failedOpen: metricValue(text, "apiserver_admission_webhook_fail_open_count", { name }),
  };
}
