// The Helm chart against helm itself and a real API server: lint, render each tested value set,
// server-side dry-run apply every object (ServiceMonitor and PrometheusRule against the real
// prometheus-operator CRDs), run the operator Pod under the restricted Pod Security Standard, and
// keep the generated files (CRD, static manifest, field reference) in sync with their sources.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  loadAllYaml,
  type KubernetesObject,
  type V1ClusterRole,
  type V1ConfigMap,
  type V1Deployment,
  type V1MutatingWebhookConfiguration,
  type V1Pod,
  type V1Role,
  type V1Secret,
  type V1Service,
} from "@kubernetes/client-node";
import { parse } from "yaml";
import { ecrPullSecretCrd } from "../../src/api/crd.ts";
import { loadConfig } from "../../src/config.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import { staleGeneratedFiles, staticInstall } from "../../scripts/generated-files.ts";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import {
  HelmError,
  chartDir,
  configFromArgs,
  chartValueSetsDir,
  helmTemplate,
  monitoringCrdPaths,
  runHelm,
} from "../harness/helm.ts";
import { repoRoot } from "../harness/paths.ts";

const namespace = staticInstall.namespace;

interface PrometheusRule extends KubernetesObject {
  spec?: { groups?: { rules?: { alert?: string; expr?: string }[] }[] };
}

async function valueSets(): Promise<string[]> {
  const files = (await readdir(chartValueSetsDir)).filter((f) => f.endsWith(".yaml")).sort();
  assert.ok(files.length >= 4, `expected at least four value sets in ${chartValueSetsDir}`);
  return files.map((f) => join(chartValueSetsDir, f));
}

function objectsOf(yamlText: string): KubernetesObject[] {
  // loadAllYaml reads each document into client-node's model classes, whose serializer then
  // writes every field back (plain objects would lose x-kubernetes-* fields on the way out).
  return (loadAllYaml(yamlText) as (KubernetesObject | null)[]).filter(
    (o): o is KubernetesObject => o !== null && typeof o === "object" && "kind" in o,
  );
}

/** A model object as plain data, for deep comparison with literals. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? null)) as unknown;
}

function ofKind<T extends KubernetesObject>(objects: readonly KubernetesObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as T[];
}

function onlyDeployment(objects: readonly KubernetesObject[]): V1Deployment {
  const deployments = ofKind<V1Deployment>(objects, "Deployment");
  assert.equal(deployments.length, 1, "exactly one Deployment");
  const [deployment] = deployments;
  assert.ok(deployment !== undefined);
  return deployment;
}

function operatorArgs(deployment: V1Deployment): string[] {
  const container = deployment.spec?.template.spec?.containers.find((c) => c.name === "operator");
  assert.ok(container !== undefined, "the Deployment has an operator container");
  return container.args ?? [];
}

/** The API server's message from a failed request (its Status body), else the error's. */
function describeFailure(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === "string") {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  return err instanceof Error ? err.message : String(err);
}

/** The README and every page under docs/. */
async function documents(): Promise<{ path: string; text: string }[]> {
  const docs = (await readdir(join(repoRoot, "docs")))
    .filter((f) => f.endsWith(".md"))
    .map((f) => join("docs", f));
  return Promise.all(
    ["README.md", ...docs].map(async (path) => ({
      path,
      text: await readFile(join(repoRoot, path), "utf8"),
    })),
  );
}

/** The contents of the fenced code blocks of one language, also those indented in list items (dedented). */
function codeBlocks(markdown: string, language: string): string[] {
  return [...markdown.matchAll(new RegExp(`^( *)\`\`\`${language}\n([\\s\\S]*?)^\\1\`\`\`$`, "gm"))].map(
    (m) => {
      const indent = (m[1] ?? "").length;
      return (m[2] ?? "")
        .split("\n")
        .map((line) => line.slice(Math.min(indent, line.length - line.trimStart().length)))
        .join("\n");
    },
  );
}

describe("the Helm chart", () => {
  let plane: ControlPlane;
  let objectsApi: KubernetesObjectApi;

  before(async () => {
    const monitoringCrds = await Promise.all(
      monitoringCrdPaths.map(async (path) => parse(await readFile(path, "utf8")) as object),
    );
    plane = await startControlPlane({ crds: [ecrPullSecretCrd, ...monitoringCrds] });
    objectsApi = KubernetesObjectApi.makeApiClient(plane.kubeConfig);
    await plane.kubeConfig.makeApiClient(CoreV1Api).createNamespace({
      body: {
        metadata: {
          name: namespace,
          labels: {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
          },
        },
      },
    });
  });

  after(async () => {
    await plane.stop();
  });

  async function dryRunApply(object: KubernetesObject): Promise<void> {
    try {
      await objectsApi.patch(
        object,
        undefined,
        "All",
        "helm-chart-test",
        true,
        PatchStrategy.ServerSideApply,
      );
    } catch (err) {
      throw new Error(
        `${object.kind ?? "?"} ${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}: ${describeFailure(err)}`,
        { cause: err },
      );
    }
  }

  async function dryRunPod(pod: V1Pod): Promise<void> {
    await plane.kubeConfig
      .makeApiClient(CoreV1Api)
      .createNamespacedPod({ namespace, body: pod, dryRun: "All" });
  }

  function podFrom(deployment: V1Deployment, name: string): V1Pod {
    const template = deployment.spec?.template;
    assert.ok(template?.spec !== undefined);
    return {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace, labels: template.metadata?.labels },
      spec: template.spec,
    };
  }

  it("passes helm lint --strict with the defaults and every tested value set", async () => {
    await runHelm(["lint", "--strict", chartDir, "--namespace", namespace]);
    for (const file of await valueSets()) {
      await runHelm(["lint", "--strict", chartDir, "--namespace", namespace, "--values", file]);
    }
  });

  it("renders every value set into objects the API server accepts in a server-side dry-run apply", async () => {
    const kinds = new Set<string>();
    for (const file of await valueSets()) {
      const objects = objectsOf(await helmTemplate({ namespace, valuesFiles: [file], includeCrds: true }));
      assert.ok(objects.length > 5, `${file} rendered only ${objects.length} objects`);
      for (const object of objects) {
        kinds.add(object.kind ?? "");
        await dryRunApply(object);
      }
    }
    // Between them the value sets must render every template of the chart.
    for (const kind of [
      "CustomResourceDefinition",
      "ServiceAccount",
      "ClusterRole",
      "ClusterRoleBinding",
      "Role",
      "RoleBinding",
      "Secret",
      "Deployment",
      "Service",
      "PodDisruptionBudget",
      "ServiceMonitor",
      "PrometheusRule",
      "ConfigMap",
      "ECRPullSecret",
      "MutatingWebhookConfiguration",
    ]) {
      assert.ok(kinds.has(kind), `no value set renders a ${kind}`);
    }
  });

  it("runs the operator Pod of every value set under the restricted Pod Security Standard", async () => {
    for (const file of await valueSets()) {
      const deployment = onlyDeployment(objectsOf(await helmTemplate({ namespace, valuesFiles: [file] })));
      await dryRunPod(podFrom(deployment, "pss-check"));
    }
  });

  it("is held to the restricted standard: a Pod that may escalate privileges is refused", async () => {
    const deployment = onlyDeployment(objectsOf(await helmTemplate({ namespace })));
    const pod = podFrom(deployment, "pss-negative");
    const container = pod.spec?.containers[0];
    assert.ok(container?.securityContext !== undefined);
    container.securityContext.allowPrivilegeEscalation = true;
    await assert.rejects(dryRunPod(pod), (err: unknown) => {
      assert.match(
        describeFailure(err),
        /violates PodSecurity "restricted:latest": allowPrivilegeEscalation/,
      );
      return true;
    });
  });

  it("applies the static manifest, namespace included, in a server-side dry run", async () => {
    const objects = objectsOf(await readFile(join(repoRoot, "deploy", "install.yaml"), "utf8"));
    assert.equal(objects[0]?.kind, "Namespace");
    for (const object of objects) {
      await dryRunApply(object);
    }
  });

  it("keeps the CRD, the static manifest and the field reference in sync with their sources", async () => {
    assert.deepEqual(await staleGeneratedFiles(), [], "run npm run generate");
  });

  it("passes the operator only flags it defines, with values its configuration accepts", async () => {
    for (const file of await valueSets()) {
      const deployment = onlyDeployment(objectsOf(await helmTemplate({ namespace, valuesFiles: [file] })));
      const args = operatorArgs(deployment);
      assert.equal(args[0], "run");
      const env = deployment.spec?.template.spec?.containers[0]?.env ?? [];
      const fromField = env.find((e) => e.name === "ECR_REFRESHER_NAMESPACE")?.valueFrom?.fieldRef?.fieldPath;
      assert.equal(fromField, "metadata.namespace", "the operator learns its namespace from the Pod");
      const config = loadConfig(configFromArgs(args.slice(1)), { ECR_REFRESHER_NAMESPACE: namespace });
      assert.equal(config.logFormat, "json", file);
      assert.ok(config.trustedCredentialsNamespaces.includes(namespace), file);
    }
  });

  it("points the operator at AWS-compatible endpoints, one or per service, and checks extraEnv", async () => {
    const local = "http://localstack.tools.svc:4566";
    const vpc = "https://vpce-0123.api.ecr.eu-west-1.vpce.amazonaws.com";
    const deployment = onlyDeployment(
      objectsOf(
        await helmTemplate({
          namespace,
          set: [
            `aws.endpointUrl=${local}`,
            `aws.endpointUrls.ecr=${vpc}`,
            "extraEnv[0].name=AWS_ENDPOINT_URL_ECR_PUBLIC",
            "extraEnv[0].value=http://ecr-public.tools.svc:8080",
          ],
        }),
      ),
    );
    const container = deployment.spec?.template.spec?.containers[0];
    const env = Object.fromEntries(
      (container?.env ?? []).flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]])),
    );
    const config = loadConfig(configFromArgs(operatorArgs(deployment).slice(1)), {
      ECR_REFRESHER_NAMESPACE: namespace,
      ...env,
    });
    assert.deepEqual(config.awsEndpoints, {
      ecr: vpc,
      ecrPublic: "http://ecr-public.tools.svc:8080",
      sts: local,
    });

    for (const [set, field] of [
      ["aws.endpointUrl=localstack:4566", "endpointUrl"],
      ["aws.endpointUrls.sts=https://sts .example", "sts"],
      ["aws.endpointUrls.ecrpublic=http://x", "ecrpublic"],
      ["extraEnv[0].value=x", "name"],
      ["extraEnv[0].name=AWS ENDPOINT", "name"],
      ["extraEnv[0].name=X,extraEnv[0].vaule=y", "vaule"],
      [
        "extraEnv[0].name=X,extraEnv[0].value=y,extraEnv[0].valueFrom.fieldRef.fieldPath=metadata.name",
        "extraEnv",
      ],
    ] as const) {
      await assert.rejects(
        helmTemplate({ namespace, set: [set] }),
        (err: unknown) =>
          err instanceof HelmError &&
          /values don't meet the specifications/.test(err.stderr) &&
          err.stderr.includes(field),
        set,
      );
    }
  });

  it("elects a leader whenever it runs more than one replica, and refuses to run several without", async () => {
    const ha = objectsOf(await helmTemplate({ namespace, set: ["replicaCount=3"] }));
    const args = operatorArgs(onlyDeployment(ha));
    assert.ok(args.includes("--leader-elect=true"), args.join(" "));
    assert.ok(args.includes("--lease-name=ecr-creds-refresher"), args.join(" "));
    const leaseRole = ofKind<V1Role>(ha, "Role").find((r) => r.metadata?.name?.endsWith("-leader-election"));
    assert.deepEqual(
      leaseRole?.rules?.flatMap((r) => r.resourceNames ?? []),
      ["ecr-creds-refresher"],
      "get and update are limited to the operator's Lease",
    );

    const single = onlyDeployment(
      objectsOf(await helmTemplate({ namespace, set: ["leaderElection.enabled=false"] })),
    );
    assert.ok(operatorArgs(single).includes("--leader-elect=false"));
    assert.equal(single.spec?.strategy?.type, "Recreate", "without a Lease two operators must never overlap");

    await assert.rejects(
      helmTemplate({ namespace, set: ["replicaCount=2", "leaderElection.enabled=false"] }),
      (err: unknown) => err instanceof HelmError && /leaderElection/.test(err.message),
    );
  });

  it("registers the Pod webhook by Service, served by every replica, never blocking Pod creation", async () => {
    const objects = objectsOf(await helmTemplate({ namespace, set: ["replicaCount=3"] }));
    const [configuration] = ofKind<V1MutatingWebhookConfiguration>(objects, "MutatingWebhookConfiguration");
    const webhook = configuration?.webhooks?.[0];
    assert.ok(configuration !== undefined && webhook !== undefined && configuration.webhooks?.length === 1);
    assert.equal(webhook.failurePolicy, "Ignore");
    assert.ok((webhook.timeoutSeconds ?? 10) <= 3, `timeoutSeconds ${webhook.timeoutSeconds ?? "unset"}`);
    assert.equal(webhook.sideEffects, "None");
    assert.equal(webhook.reinvocationPolicy, "IfNeeded");
    assert.deepEqual(plain(webhook.rules), [
      {
        apiGroups: [""],
        apiVersions: ["v1"],
        operations: ["CREATE"],
        resources: ["pods"],
        scope: "Namespaced",
      },
    ]);
    assert.equal(
      webhook.clientConfig.caBundle,
      undefined,
      "the operator sets the caBundle; upgrades keep it",
    );
    assert.equal(webhook.clientConfig.url, undefined);
    assert.deepEqual(plain(webhook.namespaceSelector?.matchExpressions), [
      { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system", namespace] },
      { key: "ecr-creds-refresher.io/webhook", operator: "NotIn", values: ["disabled"] },
    ]);
    assert.deepEqual(plain(webhook.objectSelector?.matchExpressions), [
      { key: "ecr-creds-refresher.io/webhook", operator: "NotIn", values: ["disabled"] },
    ]);

    // The Service reaches the webhook port of every replica, not only the leader's.
    const service = ofKind<V1Service>(objects, "Service").find(
      (s) => s.metadata?.name === webhook.clientConfig.service?.name,
    );
    assert.ok(service !== undefined, "the webhook's Service");
    assert.equal(webhook.clientConfig.service?.namespace, namespace);
    assert.equal(webhook.clientConfig.service.path, "/mutate-v1-pod");
    assert.equal(service.spec?.ports?.[0]?.port, webhook.clientConfig.service.port);
    const deployment = onlyDeployment(objects);
    assert.deepEqual(plain(service.spec?.selector), plain(deployment.spec?.selector.matchLabels));
    const container = deployment.spec?.template.spec?.containers[0];
    const port = container?.ports?.find((p) => p.name === service.spec?.ports?.[0]?.targetPort);
    assert.ok(port !== undefined, "the Service targets the container's webhook port");
    const config = loadConfig(configFromArgs(operatorArgs(deployment).slice(1)), {
      ECR_REFRESHER_NAMESPACE: namespace,
    });
    assert.equal(config.webhookAddr, `0.0.0.0:${port.containerPort}`);
    assert.equal(config.leaderElect, true, "three replicas elect a leader, and all three serve the webhook");
    assert.equal(config.webhookConfiguration, configuration.metadata?.name);
    const serviceHost = `${service.metadata?.name ?? ""}.${namespace}.svc`;
    assert.deepEqual(config.webhookCertHosts, [serviceHost, `${serviceHost}.cluster.local`]);

    // Least privilege: that one configuration and that one Secret, by name.
    const [clusterRole] = ofKind<V1ClusterRole>(objects, "ClusterRole");
    const configurationRule = clusterRole?.rules?.find((r) =>
      r.resources?.includes("mutatingwebhookconfigurations"),
    );
    assert.deepEqual(configurationRule?.resourceNames, [configuration.metadata?.name]);
    assert.deepEqual(configurationRule.verbs, ["list", "watch", "update"]);
    const secretRole = ofKind<V1Role>(objects, "Role").find((r) =>
      r.metadata?.name?.endsWith("-webhook-tls"),
    );
    assert.equal(secretRole?.metadata?.namespace, namespace);
    assert.deepEqual(plain(secretRole.rules), [
      { apiGroups: [""], resources: ["secrets"], resourceNames: [config.webhookSecret], verbs: ["update"] },
    ]);
    const secret = ofKind<V1Secret>(objects, "Secret").find((s) => s.metadata?.name === config.webhookSecret);
    assert.ok(secret !== undefined && secret.data === undefined, "the chart creates the Secret empty");

    const off = objectsOf(await helmTemplate({ namespace, set: ["webhook.enabled=false"] }));
    assert.deepEqual(ofKind(off, "MutatingWebhookConfiguration"), []);
    assert.ok(!JSON.stringify(off).includes("webhook"), "no trace of the webhook when it is off");

    await assert.rejects(
      helmTemplate({ namespace, set: ["webhook.timeoutSeconds=10"] }),
      (err: unknown) => err instanceof HelmError && /timeoutSeconds/.test(err.message),
    );
  });

  it("leaves the webhook's certificate and caBundle to cert-manager when asked", async () => {
    const objects = objectsOf(await helmTemplate({ namespace, set: ["webhook.certManager.enabled=true"] }));
    const [configuration] = ofKind<V1MutatingWebhookConfiguration>(objects, "MutatingWebhookConfiguration");
    const certificates = ofKind<KubernetesObject & { spec?: Record<string, unknown> }>(
      objects,
      "Certificate",
    );
    const serving = certificates.find((c) => c.spec?.isCA !== true);
    assert.equal(
      configuration?.metadata?.annotations?.["cert-manager.io/inject-ca-from"],
      `${namespace}/${serving?.metadata?.name ?? "?"}`,
    );
    const service = ofKind<V1Service>(objects, "Service").find(
      (s) => s.metadata?.name === configuration.webhooks?.[0]?.clientConfig.service?.name,
    );
    const host = `${service?.metadata?.name ?? "?"}.${namespace}.svc`;
    assert.deepEqual(serving?.spec?.dnsNames, [host, `${host}.cluster.local`]);
    assert.deepEqual(
      ofKind(objects, "Issuer").map((i) => i.metadata?.name),
      ["ecr-creds-refresher-selfsigned", "ecr-creds-refresher-webhook-ca"].sort(),
    );

    const deployment = onlyDeployment(objects);
    const config = loadConfig(configFromArgs(operatorArgs(deployment).slice(1)), {
      ECR_REFRESHER_NAMESPACE: namespace,
    });
    const mount = deployment.spec?.template.spec?.containers[0]?.volumeMounts?.find(
      (m) => m.mountPath === config.webhookCertDir,
    );
    const volume = deployment.spec?.template.spec?.volumes?.find((v) => v.name === mount?.name);
    assert.equal(volume?.secret?.secretName, serving.spec.secretName, "the Pods mount cert-manager's Secret");
    const clusterRole = ofKind<V1ClusterRole>(objects, "ClusterRole")[0];
    assert.ok(
      !JSON.stringify(clusterRole).includes("mutatingwebhookconfigurations"),
      "no caBundle rights needed",
    );
    assert.ok(!ofKind(objects, "Role").some((r) => r.metadata?.name?.endsWith("-webhook-tls")));
    // cert-manager's own kinds need its CRDs; everything else is checked by the API server.
    for (const object of objects.filter((o) => !["Issuer", "Certificate"].includes(o.kind ?? ""))) {
      await dryRunApply(object);
    }

    const own = objectsOf(
      await helmTemplate({
        namespace,
        set: [
          "webhook.certManager.enabled=true",
          "webhook.certManager.issuerRef.name=corp-ca",
          "webhook.certManager.issuerRef.kind=ClusterIssuer",
        ],
      }),
    );
    assert.deepEqual(ofKind(own, "Issuer"), [], "with an issuer of the user's, the chart makes none");
    const ownServing = ofKind<KubernetesObject & { spec?: Record<string, unknown> }>(own, "Certificate");
    assert.deepEqual(
      ownServing.map((c) => c.spec?.issuerRef),
      [{ name: "corp-ca", kind: "ClusterIssuer", group: "cert-manager.io" }],
    );
  });

  it("passes the credentials Secret and the trusted namespaces to the operator", async () => {
    const cases: { set: string[]; secret: string | undefined }[] = [
      { set: [], secret: undefined },
      {
        set: ["credentials.source=existingSecret", "credentials.existingSecret=mine"],
        secret: `${namespace}/mine`,
      },
      {
        set: ["credentials.source=secret", "credentials.accessKeyId=AKIAX", "credentials.secretAccessKey=s"],
        secret: `${namespace}/ecr-creds-refresher-aws-credentials`,
      },
    ];
    for (const { set, secret } of cases) {
      const objects = objectsOf(
        await helmTemplate({ namespace, set: [...set, "credentials.trustedNamespaces={team-a,team-b}"] }),
      );
      const args = operatorArgs(onlyDeployment(objects));
      const flag = args.find((a) => a.startsWith("--credentials-secret="));
      assert.equal(flag?.slice("--credentials-secret=".length), secret, set.join(" "));
      assert.ok(args.includes(`--trusted-credentials-namespaces=${namespace},team-a,team-b`), args.join(" "));
      const created = ofKind(objects, "Secret")
        .filter((s) => s.metadata?.labels?.["app.kubernetes.io/component"] !== "webhook-tls")
        .map((s) => `${s.metadata?.namespace ?? ""}/${s.metadata?.name ?? ""}`);
      assert.deepEqual(created, set.includes("credentials.source=secret") ? [secret] : []);
    }
    await assert.rejects(
      helmTemplate({ namespace, set: ["credentials.source=existingSecret"] }),
      (err: unknown) => err instanceof HelmError && /existingSecret/.test(err.message),
    );
  });

  it("queries only metrics the operator exports, in its alerts and its dashboard", async () => {
    const objects = objectsOf(
      await helmTemplate({
        namespace,
        set: ["metrics.prometheusRule.enabled=true", "grafanaDashboard.enabled=true"],
      }),
    );
    const rule = ofKind<PrometheusRule>(objects, "PrometheusRule")[0];
    const alerts = rule?.spec?.groups?.flatMap((g) => g.rules ?? []) ?? [];
    assert.deepEqual(
      alerts.map((a) => a.alert),
      [
        "ECRPullSecretTokenExpiringSoon",
        "ECRPullSecretRefreshFailing",
        "ECRPullSecretRegistryRefreshFailing",
        "ECRPullSecretNotReady",
        "ECRCredsRefresherDown",
      ],
    );
    const dashboard = ofKind<V1ConfigMap>(objects, "ConfigMap")[0];
    assert.ok(dashboard !== undefined, "a dashboard ConfigMap");
    assert.equal(dashboard.metadata?.labels?.grafana_dashboard, "1");
    const dashboardJson = dashboard.data?.["ecr-creds-refresher.json"] ?? "";
    assert.ok(JSON.parse(dashboardJson), "the dashboard is valid JSON");

    const used = new Set(
      [...alerts.map((a) => a.expr ?? ""), dashboardJson].flatMap((text) =>
        [...text.matchAll(/\becr_creds_refresher_[a-z_]+/g)].map((m) => m[0]),
      ),
    );
    const exported = new Set(
      (await new Metrics().registry.getMetricsAsJSON()).flatMap((m) =>
        m.type.toString() === "histogram"
          ? [m.name, `${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`]
          : [m.name],
      ),
    );
    assert.ok(used.size >= 8, `only ${used.size} metrics queried`);
    assert.deepEqual(
      [...used].filter((name) => !exported.has(name)),
      [],
      "queried metrics the operator does not export",
    );
  });

  it("accepts every ECRPullSecret example in the README, the docs and the install notes", async () => {
    const examples: KubernetesObject[] = [];
    for (const doc of await documents()) {
      for (const block of codeBlocks(doc.text, "yaml")) {
        const object = parse(block) as KubernetesObject | null;
        if (object?.kind === "ECRPullSecret") examples.push(object);
      }
    }
    // The first ECRPullSecret the install notes suggest.
    const install = await runHelm([
      "install",
      "ecr-creds-refresher",
      chartDir,
      "--namespace",
      namespace,
      "--dry-run=client",
    ]);
    const notesExample = /<<'YAML'\n([\s\S]*?)\nYAML\n/.exec(
      install.stdout.slice(install.stdout.indexOf("NOTES:")),
    )?.[1];
    assert.ok(notesExample !== undefined, "NOTES.txt shows a first ECRPullSecret");
    examples.push(parse(notesExample) as KubernetesObject);
    assert.ok(examples.length >= 8, `found only ${examples.length} examples`);
    for (const example of examples) {
      await objectsApi.create(example, undefined, "All");
    }
  });

  it("gives the README's IAM policies as valid policy documents", async () => {
    const readme = await readFile(join(repoRoot, "README.md"), "utf8");
    const policies = codeBlocks(readme, "json").map(
      (block) => JSON.parse(block) as { Version?: string; Statement?: unknown[] },
    );
    assert.ok(policies.length >= 6, `found only ${policies.length} policies`);
    for (const policy of policies) {
      assert.equal(policy.Version, "2012-10-17");
      assert.ok((policy.Statement ?? []).length > 0);
    }
    const actions = JSON.stringify(policies);
    for (const action of [
      "ecr:GetAuthorizationToken",
      "ecr:BatchGetImage",
      "sts:AssumeRole",
      "sts:ExternalId",
      "sts:AssumeRoleWithWebIdentity",
      "pods.eks.amazonaws.com",
      "ecr-public:GetAuthorizationToken",
      "sts:GetServiceBearerToken",
    ]) {
      assert.ok(actions.includes(action), `no policy mentions ${action}`);
    }
  });

  it("documents every metric, alert and Ready reason in docs/operations.md", async () => {
    const operations = await readFile(join(repoRoot, "docs", "operations.md"), "utf8");
    const metrics = (await new Metrics().registry.getMetricsAsJSON())
      .map((m) => m.name)
      .filter((name) => name.startsWith("ecr_creds_refresher_"));
    assert.deepEqual(
      metrics.filter((name) => !operations.includes(`\`${name}\``)),
      [],
      "metrics missing from docs/operations.md",
    );
    const rule = objectsOf(
      await helmTemplate({ namespace, set: ["metrics.prometheusRule.enabled=true"] }),
    ).find((o): o is PrometheusRule => o.kind === "PrometheusRule");
    const alerts = rule?.spec?.groups?.flatMap((g) => g.rules ?? []).map((r) => r.alert ?? "") ?? [];
    assert.deepEqual(
      alerts.filter((alert) => !operations.includes(`### ${alert}\n`)),
      [],
      "alerts without a section (the runbook_url anchor) in docs/operations.md",
    );
    const statusSource = await readFile(join(repoRoot, "src", "controller", "plan", "status.ts"), "utf8");
    const reasons = [
      ...(/export type ReadyReason =([^;]+);/.exec(statusSource)?.[1] ?? "").matchAll(/"(\w+)"/g),
    ].map((m) => m[1] ?? "");
    assert.ok(reasons.length >= 10, "could not read ReadyReason from src/controller/plan/status.ts");
    assert.deepEqual(
      reasons.filter((reason) => !operations.includes(`| \`${reason}\``)),
      [],
      "Ready reasons missing from the troubleshooting table",
    );
  });

  it("versions the chart's appVersion and image tag with the operator", async () => {
    const pkg = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as { version: string };
    const chart = parse(await readFile(join(chartDir, "Chart.yaml"), "utf8")) as { appVersion: string };
    assert.equal(chart.appVersion, pkg.version);
    const deployment = onlyDeployment(objectsOf(await helmTemplate({ namespace })));
    assert.match(deployment.spec?.template.spec?.containers[0]?.image ?? "", new RegExp(`:${pkg.version}$`));
  });
});
