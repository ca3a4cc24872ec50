// The original alchemy.com/v1alpha1 operator (Python, kopf) as its code behaves, not as its CRD
// reads: one Secret name and one region whatever a CR says, and the `default` ServiceAccount's
// imagePullSecrets replaced whole. Tests re-enact it on a real API server, then migrate away.
import { ECRClient, GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr";
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from "@kubernetes/client-node";
import { installCrds } from "./controlplane.ts";

/** The constant its handler names every Secret; also its CRD's default for `spec.secretName`. */
export const originalSecretName = "aws-registry-209202477790";
/** Its REGISTRY default: only the key in `.dockerconfigjson`, never the region it mints in. */
export const originalRegistry = "209202477790.dkr.ecr.us-east-1.amazonaws.com";
/** The one region it mints in; its AWS_REGION setting is never read. */
export const originalRegion = "us-east-1";
/** kopf puts this on every CR of an operator with a delete handler, and only kopf removes it. */
export const kopfFinalizer = "kopf.zalando.org/KopfFinalizerMarker";

export const originalApi = { group: "alchemy.com", version: "v1alpha1", plural: "ecrpullsecrets" } as const;

export const originalCrd = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `${originalApi.plural}.${originalApi.group}` },
  spec: {
    group: originalApi.group,
    names: {
      kind: "ECRPullSecret",
      plural: originalApi.plural,
      singular: "ecrpullsecret",
      shortNames: ["ecrps"],
    },
    scope: "Cluster",
    versions: [
      {
        name: originalApi.version,
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: {
                type: "object",
                properties: {
                  secretName: { type: "string", default: originalSecretName },
                  namespaces: { type: "array", items: { type: "string" } },
                },
              },
            },
          },
        },
      },
    ],
  },
};

export interface OriginalSpec {
  secretName?: string;
  namespaces?: string[];
}

interface OriginalCr {
  metadata: { name: string };
  spec?: OriginalSpec;
}

export interface OriginalOperatorOptions {
  kubeConfig: KubeConfig;
  /** Where it calls AWS (the tests' stand-in). */
  awsEndpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Its REGISTRY setting; default `originalRegistry`. */
  registry?: string;
}

/** What one handler run did in one namespace, as its log lines say. */
export interface OriginalOutcome {
  namespace: string;
  written: boolean;
  message: string;
}

export async function installOriginalCrd(kubeConfig: KubeConfig): Promise<void> {
  await installCrds(kubeConfig, [originalCrd]);
}

/** A CR as kopf leaves it once seen: with kopf's finalizer. */
export async function createOriginalCr(
  kubeConfig: KubeConfig,
  name: string,
  spec: OriginalSpec,
): Promise<void> {
  await kubeConfig.makeApiClient(CustomObjectsApi).createClusterCustomObject({
    ...originalApi,
    body: {
      apiVersion: `${originalApi.group}/${originalApi.version}`,
      kind: "ECRPullSecret",
      metadata: { name, finalizers: [kopfFinalizer] },
      spec,
    },
  });
}

async function mintInUsEast1(
  options: OriginalOperatorOptions,
): Promise<{ username: string; password: string; token: string }> {
  const ecr = new ECRClient({
    region: originalRegion,
    endpoint: options.awsEndpoint,
    credentials: options.credentials,
  });
  try {
    const reply = await ecr.send(new GetAuthorizationTokenCommand({}));
    const token = reply.authorizationData?.[0]?.authorizationToken ?? "";
    const decoded = Buffer.from(token, "base64").toString();
    const colon = decoded.indexOf(":");
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), token };
  } finally {
    ecr.destroy();
  }
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
}

/**
 * What its create, update, resume and timer handlers all do with one CR: mint one token in
 * us-east-1, then in each listed namespace (none listed: `default`) replace or create Secret
 * `aws-registry-209202477790`, whatever `spec.secretName` says, and set the `default`
 * ServiceAccount's imagePullSecrets to that one entry. A namespace that fails is logged and skipped.
 */
export async function runOriginalHandler(
  options: OriginalOperatorOptions,
  spec: OriginalSpec,
): Promise<OriginalOutcome[]> {
  const core = options.kubeConfig.makeApiClient(CoreV1Api);
  const registry = options.registry ?? originalRegistry;
  const outcomes: OriginalOutcome[] = [];
  for (const namespace of spec.namespaces ?? ["default"]) {
    try {
      // It mints again for every namespace.
      const { username, password, token } = await mintInUsEast1(options);
      const dockerConfig = JSON.stringify({
        auths: { [registry]: { username, password, auth: token, email: "none@no@email.local" } },
      });
      const body = {
        metadata: { name: originalSecretName },
        type: "kubernetes.io/dockerconfigjson",
        data: { ".dockerconfigjson": Buffer.from(dockerConfig).toString("base64") },
      };
      try {
        await core.readNamespacedSecret({ namespace, name: originalSecretName });
        // A replace without resourceVersion: whatever labels, annotations or owners were there go.
        await core.replaceNamespacedSecret({ namespace, name: originalSecretName, body });
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
        await core.createNamespacedSecret({ namespace, body });
      }
    } catch (err) {
      outcomes.push({
        namespace,
        written: false,
        message: `Failed to process namespace ${namespace}: ${statusOf(err) ?? "error"}`,
      });
      continue;
    }
    let message = `PATCHED default service account in ${namespace}`;
    try {
      const sa = await core.readNamespacedServiceAccount({ namespace, name: "default" });
      sa.imagePullSecrets = [{ name: originalSecretName }];
      await core.patchNamespacedServiceAccount(
        { namespace, name: "default", body: sa },
        setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
      );
    } catch (err) {
      message = `Failed to patch default SA in ${namespace}: ${statusOf(err) ?? "error"}`;
    }
    outcomes.push({ namespace, written: true, message });
  }
  return outcomes;
}

/** Runs the handler for every CR, as the operator does when it starts (its resume handler). */
export async function runOriginalOperator(options: OriginalOperatorOptions): Promise<OriginalOutcome[]> {
  const list = (await options.kubeConfig
    .makeApiClient(CustomObjectsApi)
    .listClusterCustomObject({ ...originalApi })) as { items: OriginalCr[] };
  const outcomes: OriginalOutcome[] = [];
  for (const cr of list.items) {
    outcomes.push(...(await runOriginalHandler(options, cr.spec ?? {})));
  }
  return outcomes;
}
