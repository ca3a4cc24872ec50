// Security, with the operator running as the Helm chart's ServiceAccount under the chart's own
// RBAC: a CR cannot make it read a Secret outside the trusted namespaces, overwrite an unmanaged
// Secret, or remove imagePullSecrets entries it did not add; every request it makes is one the
// chart allows; and the audit log shows it reads no Secret it does not manage.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  AuthorizationV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  loadAllYaml,
  type KubernetesObject,
  type V1ResourceAttributes,
  type V1Secret,
} from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION } from "../../src/api/types.ts";
import { MANAGED_SECRETS_SELECTOR } from "../../src/controller/plan/labels.ts";
import { readAuditLog, type AuditEvent } from "../harness/audit.ts";
import { helmTemplate, operatorAccessKinds } from "../harness/helm.ts";
import {
  createPullSecretCr,
  deleteCr,
  operatorNamespace,
  readCr,
  startOperatorEnv,
  waitForPullSecret,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { eventually } from "../harness/wait.ts";
import { createNamespaces, readyOf, startOperatorAs, waitForCr, type RunningOperator } from "./fixtures.ts";
import { ServiceAccountLedger, entriesOf } from "./ledger.ts";
import { assertNoLeaks, secretValues, webhookKeyFragments } from "./leaks.ts";
import { saveLogs, scenario } from "./results.ts";

/** The chart's ServiceAccount for release "ecr-creds-refresher" in the operator namespace. */
const chartUser = `system:serviceaccount:${operatorNamespace}:ecr-creds-refresher`;
const chartGroups = ["system:serviceaccounts", `system:serviceaccounts:${operatorNamespace}`];
const managedSelector = `labelSelector=${encodeURIComponent(MANAGED_SECRETS_SELECTOR)}`;
const bait = { secretKey: "BaitSecretAccessKeyInAnUntrustedNamespace01", name: "bait-aws" };
const readVerbs = new Set(["get", "list", "watch"]);
/** The chart's webhook objects for release "ecr-creds-refresher", which the operator's defaults name. */
const webhookSecret = "ecr-creds-refresher-webhook-tls";
const webhookConfiguration = "ecr-creds-refresher";
const webhookHosts = "ecr-creds-refresher-webhook.ecr-system.svc,127.0.0.1";

describe("security, as the Helm chart's ServiceAccount", () => {
  let env: OperatorEnv;
  let operator: RunningOperator;
  let chartKubeConfigPath = "";
  let started = 0;

  before(async () => {
    env = await startOperatorEnv({ audit: true, startOperator: false });
    const rendered = (
      loadAllYaml(await helmTemplate({ namespace: operatorNamespace })) as (KubernetesObject | null)[]
    ).filter((o): o is KubernetesObject => o !== null && typeof o === "object");
    const api = KubernetesObjectApi.makeApiClient(env.plane.kubeConfig);
    for (const object of rendered.filter((o) => operatorAccessKinds.has(o.kind ?? "")))
      await api.create(object);
    await createNamespaces(env, "sec", 6);
    for (const ns of ["kube-system", "default", "sec-0000"]) {
      await env.core.createNamespacedSecret({
        namespace: ns,
        body: {
          metadata: { name: bait.name },
          stringData: { AWS_ACCESS_KEY_ID: "AKIABAITBAITBAIT0001", AWS_SECRET_ACCESS_KEY: bait.secretKey },
        },
      });
    }
    chartKubeConfigPath = (await env.plane.userKubeConfig(chartUser, chartGroups)).kubeconfigPath;
    started = Date.now();
    const webhook = ["--webhook-addr", "127.0.0.1:0", "--webhook-cert-hosts", webhookHosts];
    operator = await startOperatorAs(env, chartUser, ["--lease-name", "ecr-creds-refresher", ...webhook], {
      kubeconfigPath: chartKubeConfigPath,
    });
  });

  after(async () => {
    await operator.proc.stop();
    await env.stop();
  });

  function operatorEvents(): AuditEvent[] {
    return readAuditLog(env.plane.auditLogPath).filter(
      (e) => e.user === chartUser && e.receivedAt >= started,
    );
  }

  /** Why a Secret read by the operator is not one of the reads it may make, or undefined if it is. */
  function unexpectedRead(e: AuditEvent): string | undefined {
    if (e.resource !== "secrets" || !readVerbs.has(e.verb)) return undefined;
    if (e.uri.includes(managedSelector)) return undefined;
    const byName = /fieldSelector=metadata\.name(%3D|=)/.test(e.uri);
    if (e.namespace === operatorNamespace && byName) return undefined;
    return `${e.verb} ${e.uri}`;
  }

  it("cannot be made to read a Secret outside the trusted namespaces", async () => {
    await scenario("S1", "CRs naming credentials in untrusted namespaces", async (figures) => {
      for (const [name, namespace] of [
        ["steal-kube-system", "kube-system"],
        ["steal-default", "default"],
        ["steal-tenant", "sec-0000"],
      ] as const) {
        await createPullSecretCr(env, name, {
          namespaces: ["sec-0000"],
          aws: { credentialsSecretRef: { namespace, name: bait.name } },
        });
      }
      for (const name of ["steal-kube-system", "steal-default", "steal-tenant"]) {
        await waitForCr(env, name, { reason: "CredentialsNotTrusted" });
      }
      figures.refused = 3;
      // Same name, trusted namespace: allowed, and only that Secret is read.
      await env.core.createNamespacedSecret({
        namespace: operatorNamespace,
        body: {
          metadata: { name: bait.name },
          stringData: { AWS_ACCESS_KEY_ID: "AKIATRUSTEDTRUSTED01", AWS_SECRET_ACCESS_KEY: bait.secretKey },
        },
      });
      await createPullSecretCr(env, "trusted", {
        secretName: "trusted-pull",
        namespaces: ["sec-0000"],
        aws: { credentialsSecretRef: { namespace: operatorNamespace, name: bait.name } },
      });
      await waitForCr(env, "trusted", { synced: 1 });
      const events = operatorEvents();
      const secretReads = events.filter((e) => e.resource === "secrets" && readVerbs.has(e.verb));
      const outside = secretReads.filter(
        (e) =>
          e.namespace !== undefined && e.namespace !== operatorNamespace && !e.uri.includes(managedSelector),
      );
      const baitReads = secretReads.filter(
        (e) => e.namespace !== operatorNamespace && (e.name === bait.name || e.uri.includes(bait.name)),
      );
      figures.secretReads = secretReads.length;
      figures.readsOutsideTrustedNamespaces = outside.length;
      figures.untrustedBaitReads = baitReads.length;
      assert.deepEqual(
        outside.map((e) => e.uri),
        [],
      );
      assert.deepEqual(
        baitReads.map((e) => e.uri),
        [],
      );
      for (const name of ["steal-kube-system", "steal-default", "steal-tenant", "trusted"])
        await deleteCr(env, name);
    });
  });

  it("never overwrites an unmanaged Secret of the same name, and reports each as a conflict", async () => {
    await scenario("S2", "unmanaged Secrets with the managed name", async (figures) => {
      const theirs: Record<string, V1Secret> = {};
      const make = async (namespace: string, body: V1Secret): Promise<void> => {
        theirs[namespace] = await env.core.createNamespacedSecret({ namespace, body });
      };
      await make("sec-0001", { metadata: { name: "sec-pull" }, stringData: { note: "mine" } });
      await make("sec-0002", {
        metadata: { name: "sec-pull" },
        type: "kubernetes.io/dockerconfigjson",
        stringData: { ".dockerconfigjson": '{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNz"}}}' },
      });
      await make("sec-0003", {
        metadata: { name: "sec-pull", labels: { "app.kubernetes.io/managed-by": "Helm" } },
        stringData: { note: "helm's" },
      });
      await createPullSecretCr(env, "sec", { secretName: "sec-pull", namespaces: ["sec-*"] });
      await waitForPullSecret(env, "sec-0000", "sec-pull");
      // The user takes a managed Secret over: our labels and ownerReference removed.
      await waitForPullSecret(env, "sec-0004", "sec-pull");
      const takenOverAt = Date.now();
      theirs["sec-0004"] = await env.core.patchNamespacedSecret({
        namespace: "sec-0004",
        name: "sec-pull",
        body: [
          { op: "remove", path: "/metadata/labels/app.kubernetes.io~1managed-by" },
          { op: "remove", path: "/metadata/labels/ecr-creds-refresher.io~1owner" },
          { op: "remove", path: "/metadata/ownerReferences" },
        ],
      });
      const cr = await eventually(
        async () => {
          const current = await readCr(env, "sec");
          const failing = (current.status?.failures ?? []).map((f) => `${f.namespace}:${f.reason}`).sort();
          assert.deepEqual(
            failing,
            ["sec-0001", "sec-0002", "sec-0003", "sec-0004"].map((ns) => `${ns}:SecretConflict`),
          );
          return current;
        },
        { timeoutMs: 60_000, message: "four conflicts reported" },
      );
      figures.conflictsReported = cr.status?.failures?.length ?? 0;
      figures.readyReason = readyOf(cr).reason;
      let untouched = 0;
      for (const [namespace, before] of Object.entries(theirs)) {
        const now = await env.core.readNamespacedSecret({ namespace, name: "sec-pull" });
        if (now.metadata?.resourceVersion === before.metadata?.resourceVersion) untouched += 1;
      }
      figures.unmanagedUntouched = `${untouched}/4`;
      const overwrites = operatorEvents().filter(
        (e) =>
          e.resource === "secrets" &&
          e.name === "sec-pull" &&
          Object.keys(theirs).includes(e.namespace ?? "") &&
          ["update", "patch", "delete"].includes(e.verb) &&
          (e.namespace !== "sec-0004" || e.receivedAt > takenOverAt),
      );
      figures.writesToUnmanaged = overwrites.length;
      assert.equal(untouched, 4);
      assert.deepEqual(
        overwrites.map((e) => `${e.verb} ${e.namespace ?? ""}`),
        [],
      );
    });
  });

  it("never removes an imagePullSecrets entry it did not add", async () => {
    await scenario("S3", "imagePullSecrets entries the operator did not add", async (figures) => {
      // Before any CR targets own-0000, the user lists the managed name (and another) on default and builder.
      await createNamespaces(env, "own", 2);
      await env.core.createNamespacedServiceAccount({
        namespace: "own-0000",
        body: { metadata: { name: "builder" }, imagePullSecrets: [{ name: "own-pull" }] },
      });
      await env.core.patchNamespacedServiceAccount({
        namespace: "own-0000",
        name: "default",
        body: [{ op: "add", path: "/imagePullSecrets", value: [{ name: "theirs" }, { name: "own-pull" }] }],
      });
      const ledger = new ServiceAccountLedger({
        kubeConfig: env.plane.kubeConfig,
        watched: (entry) => entry === "theirs" || entry === "own-pull",
      });
      await ledger.start();
      const setServiceAccounts = async (serviceAccounts: string[]): Promise<void> => {
        await env.objects.patchClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          name: "own",
          body: [{ op: "add", path: "/spec/serviceAccounts", value: serviceAccounts }],
        });
      };
      try {
        await createPullSecretCr(env, "own", { secretName: "own-pull", namespaces: ["own-*"] });
        await waitForCr(env, "own", { synced: 2 });
        // Every ServiceAccount, then only default again: it removes what it added, and only that.
        await setServiceAccounts(["*"]);
        await env.core.createNamespacedServiceAccount({
          namespace: "own-0000",
          body: { metadata: { name: "late" } },
        });
        await waitForPullSecret(env, "own-0000", "own-pull", "late");
        await setServiceAccounts(["default"]);
        await eventually(async () => {
          const late = await env.core.readNamespacedServiceAccount({ namespace: "own-0000", name: "late" });
          assert.deepEqual(entriesOf(late), [], "the entry it added to late is removed");
        });
        await deleteCr(env, "own");
        await eventually(async () => {
          const left = await env.core.listSecretForAllNamespaces({ fieldSelector: "metadata.name=own-pull" });
          assert.equal(left.items.length, 0, "own-pull Secrets left");
          const other = await env.core.readNamespacedServiceAccount({
            namespace: "own-0001",
            name: "default",
          });
          assert.deepEqual(entriesOf(other), [], "the entry it added in own-0001 is removed");
        });
        const [def, builder] = await Promise.all([
          env.core.readNamespacedServiceAccount({ namespace: "own-0000", name: "default" }),
          env.core.readNamespacedServiceAccount({ namespace: "own-0000", name: "builder" }),
        ]);
        figures.defaultEntries = entriesOf(def).join(",");
        figures.builderEntries = entriesOf(builder).join(",");
        const userEntriesRemoved = ledger.lostEntries.filter(
          (e) => !e.startsWith("own-0000/late:") && !e.startsWith("own-0001/"),
        );
        figures.userEntriesRemoved = userEntriesRemoved.length;
        assert.deepEqual(entriesOf(def), ["theirs", "own-pull"]);
        assert.deepEqual(entriesOf(builder), ["own-pull"]);
        assert.deepEqual(userEntriesRemoved, []);
      } finally {
        await ledger.stop();
      }
    });
  });

  it("makes only requests the chart's RBAC allows, and reads no Secret it does not manage", async () => {
    await scenario("S4", "the Helm chart's ServiceAccount and RBAC", async (figures) => {
      const events = operatorEvents();
      const forbidden = events.filter((e) => e.code === 403);
      const unexpected = events.map(unexpectedRead).filter((u): u is string => u !== undefined);
      figures.requests = events.length;
      figures.forbiddenRequests = forbidden.length;
      figures.readsOfUnmanagedSecrets = unexpected.length;
      // What RBAC itself allows the ServiceAccount: no get of an arbitrary Secret; but list cannot
      // be limited to labelled Secrets by RBAC, so the grant is wider than the operator's use.
      const credentials = await env.plane.userKubeConfig(chartUser, chartGroups);
      await assert.rejects(
        credentials.kubeConfig
          .makeApiClient(CoreV1Api)
          .readNamespacedSecret({ namespace: "kube-system", name: bait.name }),
        (err: unknown) => (err as { code?: number }).code === 403,
      );
      figures.rbacDeniesGetOfUnmanagedSecret = true;
      const review = await credentials.kubeConfig
        .makeApiClient(AuthorizationV1Api)
        .createSelfSubjectAccessReview({
          body: {
            spec: { resourceAttributes: { verb: "list", resource: "secrets", namespace: "kube-system" } },
          },
        });
      figures.rbacAllowsListOfAllSecrets = review.status?.allowed === true;
      // The webhook: its one Secret and its one configuration written, and nothing of the kind else.
      const written = await eventually(() => {
        const writes = operatorEvents().filter((e) => e.verb === "update" && e.code === 200);
        const tls = writes.filter((e) => e.resource === "secrets" && e.name === webhookSecret);
        const configurations = writes.filter(
          (e) => e.resource === "mutatingwebhookconfigurations" && e.name === webhookConfiguration,
        );
        assert.ok(
          tls.length > 0 && configurations.length > 0,
          "the webhook Secret and caBundle not written yet",
        );
        return { tls: tls.length, configurations: configurations.length };
      });
      figures.webhookSecretUpdates = written.tls;
      figures.webhookConfigurationUpdates = written.configurations;
      const allowed = async (resourceAttributes: V1ResourceAttributes): Promise<boolean> =>
        (
          await credentials.kubeConfig
            .makeApiClient(AuthorizationV1Api)
            .createSelfSubjectAccessReview({ body: { spec: { resourceAttributes } } })
        ).status?.allowed === true;
      figures.rbacDeniesOtherWebhookConfigurations = !(await allowed({
        verb: "update",
        group: "admissionregistration.k8s.io",
        resource: "mutatingwebhookconfigurations",
        name: "someone-elses",
      }));
      figures.rbacDeniesUpdateOfOtherSecrets = !(await allowed({
        verb: "update",
        resource: "secrets",
        namespace: operatorNamespace,
        name: bait.name,
      }));
      assert.deepEqual(
        forbidden.map((e) => `${e.verb} ${e.uri}`),
        [],
      );
      assert.deepEqual(unexpected, []);
      assert.equal(figures.rbacDeniesOtherWebhookConfigurations, true);
      assert.equal(figures.rbacDeniesUpdateOfOtherSecrets, true);
      assert.equal(operator.proc.process.child.exitCode, null);
    });
  });

  it("never puts a secret in a log line, Event or status", async () => {
    await scenario("L6", "no secret leaked: security", async (figures) => {
      const logs = operator.proc.logs();
      saveLogs("security", logs);
      const webhookKeys = await webhookKeyFragments(env.core, operatorNamespace, webhookSecret);
      assert.equal(webhookKeys.length, 2, "the webhook's CA and serving keys are scanned for");
      await assertNoLeaks(figures, {
        core: env.core,
        objects: env.objects,
        logs,
        secrets: secretValues([bait.secretKey, ...webhookKeys]),
      });
    });
  });
});
