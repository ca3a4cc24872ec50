// The Pod admission webhook on a real API server with the ServiceAccount admission plugin on,
// registered by URL on loopback with the chart's own selectors. The same table of Pods runs twice:
// against a standby replica that never patches a ServiceAccount (so whatever a Pod gets, the
// webhook gave it), and against the leader after it has patched them (so the Pods get what the
// ServiceAccount plugin copies, and the webhook adds nothing twice). Both must give each Pod the
// same entries: exactly what a patched ServiceAccount gives. Then the operator is stopped and Pod
// creation must not slow down by a second.
import { after, before, describe, it, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AdmissionregistrationV1Api } from "@kubernetes/client-node";
import type { ECRPullSecretSpec } from "../../src/api/types.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import { rotationPolicy, validityWindow } from "../../src/webhook/certificates.ts";
import { bundleFingerprints } from "../../src/webhook/tls-secret.ts";
import { issueCa, issueServing } from "../../src/webhook/x509.ts";
import { X509Certificate } from "node:crypto";
import {
  createNamespace,
  createPullSecretCr,
  operatorNamespace,
  readServiceAccount,
  pullSecretNames,
  startOperatorEnv,
  waitForPullSecret,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { stopStarted } from "../harness/processes.ts";
import { metricValue } from "../harness/prometheus-text.ts";
import { eventually } from "../harness/wait.ts";
import {
  createPod,
  podPullSecrets,
  registerWebhook,
  setWebhookUrl,
  unregisterWebhook,
  webhookCalls,
  webhookConfigurationName,
  webhookUrl,
} from "../harness/webhook.ts";

const crs: Record<string, ECRPullSecretSpec> = {
  teams: { secretName: "team-pull", namespaces: ["*-team-*"], excludeNamespaces: ["*-team-excluded"] },
  second: { secretName: "second-pull", namespaces: ["*-team-two"] },
  builders: { secretName: "builder-pull", namespaces: ["*-team-b"], serviceAccounts: ["builder"] },
  everyone: { secretName: "all-pull", namespaces: ["*-all"], serviceAccounts: ["*"] },
  nobody: { secretName: "none-pull", namespaces: ["*-none"], serviceAccounts: [] },
  labelled: { secretName: "label-pull", namespaceSelector: { matchLabels: { pull: "yes" } } },
  system: { secretName: "system-pull", namespaces: ["kube-system", operatorNamespace] },
};

interface PodCase {
  name: string;
  /** Namespace suffix: the namespace is `${mode}-${suffix}` unless `namespace` is given. */
  suffix?: string;
  namespace?: string;
  namespaceLabels?: Record<string, string>;
  serviceAccount?: string;
  /** Entries the ServiceAccount has before any CR touches it. */
  serviceAccountEntries?: string[];
  podEntries?: string[];
  podLabels?: Record<string, string>;
  /** What the Pod lists once admitted, in order. */
  expected: string[];
  /** Only with the standby replica: with a patched ServiceAccount the plugin copies the entry anyway. */
  standbyOnly?: boolean;
}

const cases: PodCase[] = [
  { name: "a targeted namespace, default ServiceAccount", suffix: "team-a", expected: ["team-pull"] },
  { name: "a namespace no CR targets", suffix: "other", expected: [] },
  {
    name: "a named ServiceAccount the CR selects",
    suffix: "team-b",
    serviceAccount: "builder",
    expected: ["builder-pull"],
  },
  { name: "the default ServiceAccount next to it", suffix: "team-b", expected: ["team-pull"] },
  { name: "a named ServiceAccount no CR selects", suffix: "team-a", serviceAccount: "other", expected: [] },
  { name: 'serviceAccounts: ["*"]', suffix: "all", serviceAccount: "anything", expected: ["all-pull"] },
  { name: "serviceAccounts: []", suffix: "none", expected: [] },
  {
    name: "a Pod that lists its own pull secrets",
    suffix: "team-a",
    podEntries: ["mine"],
    expected: ["mine"],
  },
  {
    name: "a ServiceAccount with an entry of its own, kept first",
    suffix: "team-c",
    serviceAccountEntries: ["theirs"],
    expected: ["theirs", "team-pull"],
  },
  { name: "two CRs targeting the namespace", suffix: "team-two", expected: ["second-pull", "team-pull"] },
  { name: "a namespace the CR excludes", suffix: "team-excluded", expected: [] },
  {
    name: "a namespace selected by label",
    suffix: "labelled",
    namespaceLabels: { pull: "yes" },
    expected: ["label-pull"],
  },
  {
    name: "kube-system, which the webhook never sees",
    namespace: "kube-system",
    expected: [],
    standbyOnly: true,
  },
  {
    name: "the operator's namespace, which the webhook never sees",
    namespace: operatorNamespace,
    expected: [],
    standbyOnly: true,
  },
  {
    name: "a namespace labelled to opt out",
    suffix: "team-optout",
    namespaceLabels: { "ecr-creds-refresher.io/webhook": "disabled" },
    expected: [],
    standbyOnly: true,
  },
  {
    name: "a Pod labelled to opt out",
    suffix: "team-a",
    podLabels: { "ecr-creds-refresher.io/webhook": "disabled" },
    expected: [],
    standbyOnly: true,
  },
];

function namespaceOf(mode: string, c: PodCase): string {
  return c.namespace ?? `${mode}-${c.suffix ?? ""}`;
}

/** Our entries in any order, the others first and in their order. */
function assertEntries(actual: string[], expected: string[], what: string): void {
  const ours = (name: string): boolean => name.endsWith("-pull");
  const foreign = expected.filter((n) => !ours(n));
  assert.deepEqual(actual.slice(0, foreign.length), foreign, `${what}: entries not added by a CR come first`);
  assert.deepEqual([...actual].sort(), [...expected].sort(), what);
}

describe("the Pod admission webhook on a real API server", () => {
  let env: OperatorEnv | undefined;
  let certDir: string | undefined;
  let ready: OperatorEnv;

  before(async () => {
    env = await startOperatorEnv({ startOperator: false, serviceAccountAdmission: true });
    ready = env;
    for (const [name, spec] of Object.entries(crs)) await createPullSecretCr(env, name, spec);
  });

  after(async () => {
    await stopStarted(env);
    if (certDir !== undefined) await rm(certDir, { recursive: true, force: true });
  });

  /** Creates the namespaces and ServiceAccounts of the cases for `mode`. */
  async function prepare(mode: string): Promise<void> {
    const created = new Set<string>();
    for (const c of cases) {
      const namespace = namespaceOf(mode, c);
      if (c.namespace === undefined && !created.has(namespace)) {
        created.add(namespace);
        await createNamespace(ready, namespace, c.namespaceLabels);
      }
      const account = c.serviceAccount ?? "default";
      await eventually(async () => {
        if (account !== "default") {
          await ready.core
            .createNamespacedServiceAccount({ namespace, body: { metadata: { name: account } } })
            .catch((err: unknown) => {
              if ((err as { code?: number }).code !== 409) throw err;
            });
        }
        await readServiceAccount(ready, namespace, account);
      });
      if (c.serviceAccountEntries !== undefined) {
        await ready.core.patchNamespacedServiceAccount({
          namespace,
          name: account,
          body: [
            {
              op: "add",
              path: "/imagePullSecrets",
              value: c.serviceAccountEntries.map((name) => ({ name })),
            },
          ],
        });
      }
    }
  }

  async function runCases(mode: string, t: TestContext): Promise<void> {
    let index = 0;
    for (const c of cases.filter((c) => mode === "standby" || c.standbyOnly !== true)) {
      index += 1;
      const pod = await createPod(ready.core, namespaceOf(mode, c), `${mode}-${index}`, {
        serviceAccountName: c.serviceAccount,
        imagePullSecrets: c.podEntries,
        labels: c.podLabels,
      });
      t.diagnostic(`${c.name}: ${podPullSecrets(pod).join(",") || "(none)"}`);
      assertEntries(podPullSecrets(pod), c.expected, c.name);
    }
  }

  /** Waits until the webhook answers the API server's calls: a dry-run Pod in a targeted namespace. */
  async function waitForWebhook(mode: string): Promise<void> {
    await eventually(
      async () => {
        const before = await webhookCalls(ready.plane.kubeConfig);
        const pod = await createPod(ready.core, `${mode}-team-a`, "probe", { dryRun: true });
        const after = await webhookCalls(ready.plane.kubeConfig);
        assert.ok(after.answered > before.answered, "the webhook did not answer");
        assert.deepEqual(podPullSecrets(pod), ["team-pull"]);
      },
      { timeoutMs: 30_000, intervalMs: 200, message: "the API server calls the webhook" },
    );
  }

  describe("served by a standby replica, which never patches a ServiceAccount", () => {
    const metrics = new Metrics();

    before(async () => {
      await prepare("standby");
      // cert-manager's way: the serving certificate comes as files, the caBundle from elsewhere.
      const policy = rotationPolicy(3_600_000);
      const now = Date.now();
      const ca = await issueCa("test CA", validityWindow(now, policy.caValidityMs, policy));
      const serving = await issueServing(
        ca,
        ["127.0.0.1"],
        validityWindow(now, policy.servingValidityMs, policy),
      );
      certDir = await mkdtemp(join(tmpdir(), "ecr-webhook-certs-"));
      await writeFile(join(certDir, "tls.crt"), serving.certPem);
      await writeFile(join(certDir, "tls.key"), serving.keyPem, { mode: 0o600 });
      const operator = await ready.startOperator(
        { webhookAddr: "127.0.0.1:0", webhookCertDir: certDir },
        { workers: false, metrics },
      );
      const address = await eventually(() => operator.webhookAddress() ?? assert.fail("not serving yet"));
      await registerWebhook(ready.plane.kubeConfig, webhookUrl(address), ca.certPem);
      await waitForWebhook("standby");
    });

    after(async () => {
      await ready.stopOperator();
    });

    it("gives each Pod exactly what a patched ServiceAccount would", async (t) => {
      await runCases("standby", t);
      const sa = await readServiceAccount(ready, "standby-team-a", "default");
      assert.deepEqual(
        pullSecretNames(sa),
        [],
        "no ServiceAccount was patched: the entries came from the webhook",
      );
      const text = await metrics.registry.metrics();
      assert.ok(
        metricValue(text, "ecr_creds_refresher_webhook_mutations_total", { ecrpullsecret: "teams" }) > 0,
      );
    });

    it("mutates a dry-run Pod create and stores nothing", async () => {
      const pod = await createPod(ready.core, "standby-team-a", "dry-run", { dryRun: true });
      assert.deepEqual(podPullSecrets(pod), ["team-pull"]);
      await assert.rejects(
        ready.core.readNamespacedPod({ namespace: "standby-team-a", name: "dry-run" }),
        (err: unknown) => (err as { code?: number }).code === 404,
      );
    });

    it("logs each mutation at debug without secret content", () => {
      const lines = ready.logs.filter((line) => line.includes('"added pull secrets to a Pod"'));
      assert.ok(lines.length > 0, "no mutation logged");
      const record = JSON.parse(lines[0] ?? "{}") as Record<string, unknown>;
      assert.deepEqual(
        Object.keys(record)
          .filter((k) => !["level", "time", "name", "msg"].includes(k))
          .sort(),
        ["added", "dryRun", "ecrPullSecrets", "namespace", "pod", "serviceAccount"],
      );
    });
  });

  describe("served by the leader with its own certificates, after it patched the ServiceAccounts", () => {
    const metrics = new Metrics();
    let address = "";

    before(async () => {
      await prepare("leader");
      const operator = await ready.startOperator(
        { webhookAddr: "127.0.0.1:0", webhookCertHosts: "127.0.0.1" },
        { metrics },
      );
      address = await eventually(() => operator.webhookAddress() ?? assert.fail("not serving yet"), {
        timeoutMs: 30_000,
      });
      await setWebhookUrl(ready.plane.kubeConfig, webhookUrl(address));
      for (const c of cases.filter(
        (c) => c.standbyOnly !== true && c.expected.some((e) => e.endsWith("-pull")),
      )) {
        for (const entry of c.expected.filter((e) => e.endsWith("-pull"))) {
          await waitForPullSecret(ready, namespaceOf("leader", c), entry, c.serviceAccount ?? "default");
        }
      }
      await waitForWebhook("leader");
    });

    it("puts its own CA into the webhook configuration", async () => {
      const configuration = await ready.plane.kubeConfig
        .makeApiClient(AdmissionregistrationV1Api)
        .readMutatingWebhookConfiguration({ name: webhookConfigurationName });
      const secret = await ready.core.readNamespacedSecret({
        namespace: operatorNamespace,
        name: "ecr-creds-refresher-webhook-tls",
      });
      const bundle = configuration.webhooks?.[0]?.clientConfig.caBundle;
      assert.equal(bundle, secret.data?.["ca.crt"]);
      const [fingerprint] = bundleFingerprints(bundle);
      const served = new X509Certificate(Buffer.from(secret.data?.["tls.crt"] ?? "", "base64"));
      assert.ok(fingerprint !== undefined && served.checkIP("127.0.0.1") === "127.0.0.1");
    });

    it("gives each Pod the same entries, none twice", async (t) => {
      const before = metricValue(
        await metrics.registry.metrics(),
        "ecr_creds_refresher_webhook_requests_total",
      );
      await runCases("leader", t);
      const after = metricValue(
        await metrics.registry.metrics(),
        "ecr_creds_refresher_webhook_requests_total",
      );
      assert.ok(
        after - before >= cases.filter((c) => c.standbyOnly !== true).length,
        "the webhook saw every Pod",
      );
    });

    it("gives the Secret to a Pod created the moment its namespace's ServiceAccount exists, every time", async () => {
      for (let i = 0; i < 10; i++) {
        const namespace = `leader-team-race-${i}`;
        await createNamespace(ready, namespace);
        const pod = await createPod(ready.core, namespace, "first");
        assert.deepEqual(podPullSecrets(pod), ["team-pull"], namespace);
      }
    });

    it("adds under a second to Pod creation while the operator is down", async (t) => {
      await ready.stopOperator();
      const samples = 20;
      const time = async (label: string): Promise<number[]> => {
        const took: number[] = [];
        for (let i = 0; i < samples; i++) {
          const started = performance.now();
          await createPod(ready.core, "leader-team-a", `${label}-${i}`);
          took.push(performance.now() - started);
        }
        return took.sort((a, b) => a - b);
      };
      const callsBefore = await webhookCalls(ready.plane.kubeConfig);
      const down = await time("down");
      const callsDuring = await webhookCalls(ready.plane.kubeConfig);
      await unregisterWebhook(ready.plane.kubeConfig);
      await eventually(async () => {
        const before = (await webhookCalls(ready.plane.kubeConfig)).calls;
        await createPod(ready.core, "leader-team-a", `unregistered-probe-${Date.now()}`, { dryRun: true });
        assert.equal(
          (await webhookCalls(ready.plane.kubeConfig)).calls,
          before,
          "the webhook is still called",
        );
      });
      const none = await time("none");
      const median = (xs: number[]): number => xs[Math.floor(xs.length / 2)] ?? 0;
      const slowest = (xs: number[]): number => xs.at(-1) ?? 0;
      t.diagnostic(
        `Pod create, operator down: median ${median(down).toFixed(1)} ms, slowest ${slowest(down).toFixed(1)} ms; ` +
          `no webhook: median ${median(none).toFixed(1)} ms, slowest ${slowest(none).toFixed(1)} ms; ` +
          `failed-open calls ${callsDuring.failedOpen - callsBefore.failedOpen}/${samples}`,
      );
      assert.equal(
        callsDuring.failedOpen - callsBefore.failedOpen,
        samples,
        "each create called the webhook and failed open",
      );
      assert.ok(
        slowest(down) < slowest(none) + 1000,
        `slowest create ${slowest(down)} ms with the operator down`,
      );
      assert.ok(median(down) < median(none) + 1000);
    });
  });
});
