// The chart's RBAC on a real API server: the operator runs as the chart's ServiceAccount (a client
// certificate for system:serviceaccount:<namespace>:<name>, bound only by the rendered ClusterRole,
// Roles and bindings) through the core scenarios. The API server's audit log then shows that it
// was never denied, that it listed Secrets only through its filters, and that it used every rule
// the chart grants; as that identity, reading Secrets it does not manage is denied.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import {
  AdmissionregistrationV1Api,
  AuthorizationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  loadAllYaml,
  type KubernetesObject,
  type V1ClusterRole,
  type V1Deployment,
  type V1PolicyRule,
  type V1ResourceAttributes,
  type V1Role,
} from "@kubernetes/client-node";
import { loadKubeConfig } from "../../src/kube/kubeconfig/load.ts";
import { leaseApi, LeaderElector } from "../../src/kube/leader-election.ts";
import { KubeClient } from "../../src/kube/rest.ts";
import { MANAGED_SECRETS_SELECTOR } from "../../src/controller/plan/labels.ts";
import { configFromArgs, helmTemplate, operatorAccessKinds } from "../harness/helm.ts";
import { motoDefaultCredentials } from "../harness/moto.ts";
import {
  createNamespace,
  createPullSecretCr,
  credentialsSecretName,
  deleteCr,
  operatorNamespace,
  pullSecretNames,
  readCr,
  readSecret,
  readServiceAccount,
  rotateAccessKeyId,
  startOperatorEnv,
  waitForPullSecret,
  waitForReady,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { eventually } from "../harness/wait.ts";

/** The value set under test: the operator's own credentials Secret and one more trusted namespace. */
const trustedNamespace = "team-creds";
const chartValues = [
  "credentials.source=existingSecret",
  `credentials.existingSecret=${credentialsSecretName}`,
  `credentials.trustedNamespaces={${trustedNamespace}}`,
];

interface AuditEvent {
  stage: string;
  verb: string;
  requestURI: string;
  user: { username: string };
  objectRef?: {
    apiGroup?: string;
    resource?: string;
    subresource?: string;
    namespace?: string;
    name?: string;
  };
  annotations?: Record<string, string>;
}

interface Rendered {
  objects: KubernetesObject[];
  clusterRole: V1ClusterRole;
  roles: V1Role[];
  serviceAccount: string;
  operatorArgs: string[];
}

async function renderChart(): Promise<Rendered> {
  const objects = (
    loadAllYaml(
      await helmTemplate({ namespace: operatorNamespace, set: chartValues }),
    ) as (KubernetesObject | null)[]
  ).filter((o): o is KubernetesObject => o !== null);
  const ofKind = <T extends KubernetesObject>(kind: string): T[] =>
    objects.filter((o) => o.kind === kind) as T[];
  const [clusterRole] = ofKind<V1ClusterRole>("ClusterRole");
  const [serviceAccount] = ofKind("ServiceAccount");
  const [deployment] = ofKind<V1Deployment>("Deployment");
  assert.ok(
    clusterRole !== undefined && serviceAccount?.metadata?.name !== undefined && deployment !== undefined,
  );
  const args = deployment.spec?.template.spec?.containers[0]?.args ?? [];
  assert.equal(args[0], "run");
  return {
    objects,
    clusterRole,
    roles: ofKind<V1Role>("Role"),
    serviceAccount: serviceAccount.metadata.name,
    operatorArgs: args.slice(1),
  };
}

function ruleKeys(rule: V1PolicyRule): { group: string; resource: string; verb: string }[] {
  return (rule.apiGroups ?? []).flatMap((group) =>
    (rule.resources ?? []).flatMap((resource) => rule.verbs.map((verb) => ({ group, resource, verb }))),
  );
}

describe("the chart's RBAC, with the operator running as the chart's ServiceAccount", () => {
  let env: OperatorEnv;
  let chart: Rendered;
  let saUser: string;
  let saGroups: string[];

  async function auditEvents(): Promise<AuditEvent[]> {
    const text = await readFile(env.plane.auditLogPath, "utf8");
    return text
      .split("\n")
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as AuditEvent)
      .filter((e) => e.user.username === saUser && e.stage !== "RequestReceived");
  }

  /** Holds back the operator's PATCH requests by this long (0: not at all). */
  let patchDelayMs = 0;

  async function asServiceAccount(): Promise<CoreV1Api> {
    return (await env.plane.userKubeConfig(saUser, saGroups)).kubeConfig.makeApiClient(CoreV1Api);
  }

  before(async () => {
    chart = await renderChart();
    saUser = `system:serviceaccount:${operatorNamespace}:${chart.serviceAccount}`;
    saGroups = ["system:serviceaccounts", `system:serviceaccounts:${operatorNamespace}`];
    env = await startOperatorEnv({
      startOperator: false,
      audit: true,
      operatorUser: saUser,
      operatorGroups: saGroups,
      connection: (loaded) => ({
        getCurrentCluster: () => loaded.getCurrentCluster(),
        async applyToHTTPSOptions(options) {
          if (options.method === "PATCH" && patchDelayMs > 0) await delay(patchDelayMs);
          await loaded.applyToHTTPSOptions(options);
        },
      }),
    });
    const admin = KubernetesObjectApi.makeApiClient(env.plane.kubeConfig);
    for (const object of chart.objects.filter((o) => operatorAccessKinds.has(o.kind ?? ""))) {
      await admin.create(object);
    }
    await createNamespace(env, trustedNamespace);
    await env.core.createNamespacedSecret({
      namespace: trustedNamespace,
      body: {
        metadata: { name: "team-aws" },
        stringData: {
          AWS_ACCESS_KEY_ID: motoDefaultCredentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: motoDefaultCredentials.secretAccessKey,
        },
      },
    });
    await createNamespace(env, "untrusted");
    await env.core.createNamespacedSecret({
      namespace: "untrusted",
      body: {
        metadata: { name: "aws-creds" },
        stringData: { AWS_ACCESS_KEY_ID: "x", AWS_SECRET_ACCESS_KEY: "y" },
      },
    });
    // Exactly the flags the chart's Deployment passes; the test adds only the AWS stand-in's address
    // and has the webhook listen on a free loopback port.
    await env.startOperator({ ...configFromArgs(chart.operatorArgs), webhookAddr: "127.0.0.1:0" });
  });

  after(async () => {
    await env.stop();
  });

  it("syncs the original operator's example CR", async () => {
    await createNamespace(env, "orig-a");
    await createNamespace(env, "orig-b");
    await createPullSecretCr(env, "original", {
      secretName: "ecr-original",
      namespaces: ["orig-a", "orig-b"],
    });
    await waitForPullSecret(env, "orig-a", "ecr-original");
    await waitForPullSecret(env, "orig-b", "ecr-original");
    const cr = await waitForReady(env, "original");
    assert.deepEqual(cr.status?.namespaces, { desired: 2, synced: 2 });
  });

  it("targets globs and label selectors, and a namespace created later", async () => {
    await createNamespace(env, "team-a");
    await createNamespace(env, "labelled", { "ecr-pull": "true" });
    await createPullSecretCr(env, "teams", {
      secretName: "ecr-teams",
      namespaces: ["team-*"],
      namespaceSelector: { matchLabels: { "ecr-pull": "true" } },
    });
    await waitForPullSecret(env, "team-a", "ecr-teams");
    await waitForPullSecret(env, "labelled", "ecr-teams");
    await createNamespace(env, "team-late");
    await waitForPullSecret(env, "team-late", "ecr-teams");
  });

  it("restores a managed Secret that was deleted or edited", async () => {
    const original = await readSecret(env, "team-a", "ecr-teams");
    await env.core.deleteNamespacedSecret({ namespace: "team-a", name: "ecr-teams" });
    const restored = await waitForPullSecret(env, "team-a", "ecr-teams");
    assert.notEqual(restored.metadata?.uid, original.metadata?.uid);
    await env.core.patchNamespacedSecret({
      namespace: "team-a",
      name: "ecr-teams",
      body: [{ op: "replace", path: "/data/.dockerconfigjson", value: Buffer.from("{}").toString("base64") }],
    });
    await eventually(async () => {
      assert.deepEqual((await readSecret(env, "team-a", "ecr-teams")).data, original.data);
    });
  });

  it("keeps a ServiceAccount's other entries and adds its own again after the account is re-created", async () => {
    await createNamespace(env, "keep");
    await eventually(() => readServiceAccount(env, "keep", "default"));
    await env.core.patchNamespacedServiceAccount({
      namespace: "keep",
      name: "default",
      body: [{ op: "add", path: "/imagePullSecrets", value: [{ name: "theirs" }] }],
    });
    await createPullSecretCr(env, "keep", { secretName: "ecr-keep", namespaces: ["keep"] });
    await waitForPullSecret(env, "keep", "ecr-keep");
    assert.deepEqual(pullSecretNames(await readServiceAccount(env, "keep", "default")), [
      "theirs",
      "ecr-keep",
    ]);
    await env.core.deleteNamespacedServiceAccount({ namespace: "keep", name: "default" });
    await eventually(async () => {
      assert.deepEqual(pullSecretNames(await readServiceAccount(env, "keep", "default")), ["ecr-keep"]);
    });
  });

  it("re-reads a ServiceAccount after a write conflict and keeps the other writer's entry", async () => {
    await createNamespace(env, "race");
    await createPullSecretCr(env, "race", { secretName: "ecr-race", namespaces: ["race"] });
    await waitForPullSecret(env, "race", "ecr-race");
    let round = 0;
    // Another writer replaces the list and then changes the account again while the operator's
    // patches are held back: the operator's patch, prepared from the replaced list, carries a stale
    // resourceVersion by the time it arrives and gets a 409.
    patchDelayMs = 500;
    await eventually(
      async () => {
        round += 1;
        await env.core.patchNamespacedServiceAccount({
          namespace: "race",
          name: "default",
          body: [
            { op: "replace", path: "/imagePullSecrets", value: [{ name: "theirs" }] },
            { op: "add", path: "/metadata/labels", value: { round: String(round) } },
          ],
        });
        for (let change = 0; change < 5; change++) {
          await env.core.patchNamespacedServiceAccount({
            namespace: "race",
            name: "default",
            body: [{ op: "replace", path: "/metadata/labels/round", value: `${round}-${change}` }],
          });
        }
        const reread = (await auditEvents()).some(
          (e) =>
            e.verb === "get" &&
            e.objectRef?.resource === "serviceaccounts" &&
            e.objectRef.namespace === "race",
        );
        assert.ok(reread, `no conflict after ${round} rounds`);
      },
      { timeoutMs: 60_000, intervalMs: 200, message: "a ServiceAccount write conflict" },
    ).finally(() => {
      patchDelayMs = 0;
    });
    await eventually(async () => {
      assert.deepEqual(pullSecretNames(await readServiceAccount(env, "race", "default")), [
        "theirs",
        "ecr-race",
      ]);
    });
  });

  it("leaves an unmanaged Secret of the same name untouched and reports the conflict", async () => {
    await createNamespace(env, "conflict-a");
    await createNamespace(env, "conflict-b");
    const theirs = await env.core.createNamespacedSecret({
      namespace: "conflict-a",
      body: { metadata: { name: "ecr-conflict" }, stringData: { note: "not yours" } },
    });
    await createPullSecretCr(env, "conflict", { secretName: "ecr-conflict", namespaces: ["conflict-*"] });
    await waitForPullSecret(env, "conflict-b", "ecr-conflict");
    const cr = await waitForReady(env, "conflict", "SecretConflict");
    assert.equal(cr.status?.failures?.[0]?.reason, "SecretConflict");
    const untouched = await readSecret(env, "conflict-a", "ecr-conflict");
    assert.equal(untouched.metadata?.resourceVersion, theirs.metadata?.resourceVersion);
  });

  it("reads credentials from a namespace the chart trusts", async () => {
    await createNamespace(env, "team-own-creds");
    await createPullSecretCr(env, "own-creds", {
      secretName: "ecr-own",
      namespaces: ["team-own-creds"],
      aws: { credentialsSecretRef: { namespace: trustedNamespace, name: "team-aws" } },
    });
    await waitForPullSecret(env, "team-own-creds", "ecr-own");
    await waitForReady(env, "own-creds");
  });

  it("refuses credentials from a namespace it does not trust, without asking for them", async () => {
    await createPullSecretCr(env, "untrusted", {
      secretName: "ecr-untrusted",
      namespaces: ["team-a"],
      aws: { credentialsSecretRef: { namespace: "untrusted", name: "aws-creds" } },
    });
    await waitForReady(env, "untrusted", "CredentialsNotTrusted");
    const asked = (await auditEvents()).filter((e) => e.objectRef?.namespace === "untrusted");
    assert.deepEqual(
      asked.map((e) => e.requestURI),
      [],
    );
  });

  it("picks up rotated default credentials without a restart", async () => {
    const before = await readSecret(env, "orig-a", "ecr-original");
    await rotateAccessKeyId(env, "AKIAROTATEDKEY000009");
    await eventually(async () => {
      const after = await readSecret(env, "orig-a", "ecr-original");
      assert.notEqual(
        after.metadata?.annotations?.["ecr-creds-refresher.io/refreshed-at"],
        before.metadata?.annotations?.["ecr-creds-refresher.io/refreshed-at"],
      );
    });
  });

  it("removes exactly what it added when a CR is deleted", async () => {
    await deleteCr(env, "keep");
    await eventually(async () => {
      await assert.rejects(readCr(env, "keep"), (err: unknown) => (err as { code?: number }).code === 404);
    });
    await assert.rejects(
      readSecret(env, "keep", "ecr-keep"),
      (err: unknown) => (err as { code?: number }).code === 404,
    );
    assert.deepEqual(pullSecretNames(await readServiceAccount(env, "keep", "default")), []);
  });

  it("issues its webhook certificate into the chart's Secret and its CA into the chart's webhook configuration", async () => {
    const config = configFromArgs(chart.operatorArgs);
    const secretName = config.webhookSecret ?? "";
    const configurationName = config.webhookConfiguration ?? "";
    await eventually(async () => {
      const secret = await env.core.readNamespacedSecret({ namespace: operatorNamespace, name: secretName });
      const configuration = await env.plane.kubeConfig
        .makeApiClient(AdmissionregistrationV1Api)
        .readMutatingWebhookConfiguration({ name: configurationName });
      assert.ok(secret.data?.["tls.crt"] !== undefined && secret.data["tls.key"] !== undefined);
      assert.equal(configuration.webhooks?.[0]?.clientConfig.caBundle, secret.data["ca.crt"]);
      assert.equal(
        secret.metadata?.labels?.["app.kubernetes.io/managed-by"],
        "Helm",
        "the chart's Secret, updated",
      );
    });
    assert.ok(env.operator?.webhookAddress() !== undefined, "the webhook serves");
  });

  it("holds and hands back the leader Lease with the chart's Role", async () => {
    const leaseName = configFromArgs(chart.operatorArgs).leaseName;
    assert.ok(leaseName !== undefined, "the chart names the Lease");
    const { kubeconfigPath } = await env.plane.userKubeConfig(saUser, saGroups);
    const errors: string[] = [];
    const elector = new LeaderElector({
      api: leaseApi(new KubeClient(loadKubeConfig({ path: kubeconfigPath, env: {} }))),
      namespace: operatorNamespace,
      name: leaseName,
      identity: "rbac-test",
      retryPeriodMs: 200,
      onStartedLeading: () => undefined,
      onStoppedLeading: () => undefined,
      onError: (message) => errors.push(message),
    });
    elector.start();
    try {
      await eventually(() => {
        assert.ok(elector.isLeader(), errors.join("; "));
      });
      const lease = await env.plane.kubeConfig
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ namespace: operatorNamespace, name: leaseName });
      assert.equal(lease.spec?.holderIdentity, "rbac-test");
    } finally {
      await elector.stop();
    }
    const released = await env.plane.kubeConfig
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ namespace: operatorNamespace, name: leaseName });
    assert.equal(released.spec?.holderIdentity ?? "", "", `lease not handed back: ${errors.join("; ")}`);
  });

  it("was never denied a request it made", async () => {
    const denied = (await auditEvents()).filter(
      (e) => e.annotations?.["authorization.k8s.io/decision"] === "forbid",
    );
    assert.deepEqual(
      [...new Set(denied.map((e) => `${e.verb} ${e.requestURI}`))],
      [],
      "the chart's RBAC does not cover these requests",
    );
  });

  it("lists and watches Secrets only by the managed-by label or by name", async () => {
    const selector = encodeURIComponent(MANAGED_SECRETS_SELECTOR);
    const reads = (await auditEvents()).filter(
      (e) => e.objectRef?.resource === "secrets" && (e.verb === "list" || e.verb === "watch"),
    );
    assert.ok(reads.length > 0);
    const unfiltered = reads.filter(
      (e) =>
        !e.requestURI.includes(`labelSelector=${selector}`) &&
        !/fieldSelector=metadata\.name(%3D|=)/.test(e.requestURI),
    );
    assert.deepEqual(
      unfiltered.map((e) => e.requestURI),
      [],
    );
  });

  it("cannot read a Secret it does not manage, nor a credentials Secret it does not trust", async () => {
    const core = await asServiceAccount();
    await env.core.createNamespacedSecret({
      namespace: "team-a",
      body: { metadata: { name: "app-password" }, stringData: { password: "hunter2" } },
    });
    const forbidden = (err: unknown): boolean => (err as { code?: number }).code === 403;
    await assert.rejects(core.readNamespacedSecret({ namespace: "team-a", name: "app-password" }), forbidden);
    await assert.rejects(core.readNamespacedSecret({ namespace: "untrusted", name: "aws-creds" }), forbidden);
    // Nor change what RBAC grants it.
    await assert.rejects(
      core.createNamespacedServiceAccount({ namespace: "team-a", body: { metadata: { name: "mine" } } }),
      forbidden,
    );
    // Nor replace another Secret in its namespace, nor another webhook configuration.
    const { kubeConfig } = await env.plane.userKubeConfig(saUser, saGroups);
    const allowed = async (attributes: V1ResourceAttributes): Promise<boolean> =>
      (
        await kubeConfig
          .makeApiClient(AuthorizationV1Api)
          .createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: attributes } } })
      ).status?.allowed === true;
    const webhookSecret = configFromArgs(chart.operatorArgs).webhookSecret ?? "";
    const secretUpdate = { verb: "update", resource: "secrets", namespace: operatorNamespace };
    assert.equal(await allowed({ ...secretUpdate, name: webhookSecret }), true);
    assert.equal(await allowed({ ...secretUpdate, name: credentialsSecretName }), false);
    const configurationUpdate = {
      verb: "update",
      group: "admissionregistration.k8s.io",
      resource: "mutatingwebhookconfigurations",
    };
    assert.equal(await allowed({ ...configurationUpdate, name: "another-webhook" }), false);
    assert.equal(
      await allowed({ ...configurationUpdate, resource: "validatingwebhookconfigurations" }),
      false,
    );
  });

  it("uses every rule the chart grants", async () => {
    // Events are created at once, but a repeated Event is only patched (its count raised) a
    // minute after the first; re-enqueue every CR until the untrusted CR's warning repeats.
    const rules = [
      ...(chart.clusterRole.rules ?? []).map((rule) => ({ rule, namespace: undefined })),
      ...chart.roles.flatMap((role) =>
        (role.rules ?? []).map((rule) => ({ rule, namespace: role.metadata?.namespace })),
      ),
    ];
    let touch = 0;
    const unused = async (): Promise<string[]> => {
      const events = (await auditEvents()).filter(
        (e) => e.annotations?.["authorization.k8s.io/decision"] === "allow",
      );
      return rules.flatMap(({ rule, namespace }) =>
        ruleKeys(rule)
          .filter(
            ({ group, resource, verb }) =>
              !events.some((e) => {
                const ref = e.objectRef;
                const used =
                  ref?.subresource === undefined ? ref?.resource : `${ref.resource ?? ""}/${ref.subresource}`;
                return (
                  e.verb === verb &&
                  (ref?.apiGroup ?? "") === group &&
                  used === resource &&
                  (namespace === undefined || ref?.namespace === namespace) &&
                  (rule.resourceNames === undefined || rule.resourceNames.includes(ref?.name ?? ""))
                );
              }),
          )
          .map(
            ({ group, resource, verb }) =>
              `${verb} ${group === "" ? "" : `${group}/`}${resource}${namespace === undefined ? "" : ` in ${namespace}`}`,
          ),
      );
    };
    await eventually(
      async () => {
        touch += 1;
        await env.core.patchNamespace({
          name: "team-a",
          body: [{ op: "add", path: "/metadata/labels/touched", value: String(touch) }],
        });
        assert.deepEqual(await unused(), [], "rules no test made the operator use");
      },
      { timeoutMs: 150_000, intervalMs: 2_000, message: "every granted rule used" },
    );
  });
});
