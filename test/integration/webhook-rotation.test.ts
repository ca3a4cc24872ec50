// The webhook's own certificates rotate under continuous Pod creation without one failed
// admission: serving certificates that live 6 s (renewed every 4 s) and CAs that live 24 s, served
// by the leader and by a standby replica that only follows the Secret. The configuration has one
// webhook per replica, so the API server calls both for every Pod, and its own metrics count each
// call that failed and was let through (failurePolicy Ignore): there must be none.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { AdmissionregistrationV1Api, type V1MutatingWebhookConfiguration } from "@kubernetes/client-node";
import { loadConfig } from "../../src/config.ts";
import { Operator } from "../../src/operator.ts";
import { loadKubeConfig } from "../../src/kube/kubeconfig/load.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { mapLimit } from "../../src/kube/concurrency.ts";
import {
  createNamespace,
  createPullSecretCr,
  credentialsSecretName,
  operatorNamespace,
  startOperatorEnv,
  waitForPullSecret,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { stopStarted } from "../harness/processes.ts";
import { eventually } from "../harness/wait.ts";
import {
  chartWebhookConfiguration,
  createPod,
  podPullSecrets,
  webhookCalls,
  webhookName,
  webhookUrl,
  type WebhookCalls,
} from "../harness/webhook.ts";

const validity = "6s";
const creationWindowMs = 45_000;
const standbyWebhookName = `standby.${webhookName}`;

describe("webhook certificate rotation under continuous Pod creation", () => {
  let env: OperatorEnv | undefined;
  let standby: Operator | undefined;
  let ready: OperatorEnv;

  async function calls(): Promise<WebhookCalls[]> {
    return Promise.all([
      webhookCalls(ready.plane.kubeConfig),
      webhookCalls(ready.plane.kubeConfig, standbyWebhookName),
    ]);
  }

  before(async () => {
    env = await startOperatorEnv({ startOperator: false, serviceAccountAdmission: true });
    ready = env;
    await createNamespace(ready, "rot-a");
    await createPullSecretCr(ready, "rot", { secretName: "rot-pull", namespaces: ["rot-*"] });
    const webhookConfig = {
      webhookAddr: "127.0.0.1:0",
      webhookCertHosts: "127.0.0.1",
      webhookCertValidity: validity,
    };
    const leader = await ready.startOperator(webhookConfig);
    // A second replica that never writes: it serves whatever the Secret holds as it changes.
    standby = new Operator({
      config: loadConfig(
        {
          operatorNamespace,
          credentialsSecret: `${operatorNamespace}/${credentialsSecretName}`,
          region: "eu-west-1",
          ...webhookConfig,
        },
        {},
      ),
      kubeConfig: loadKubeConfig({ path: ready.plane.kubeconfigPath, env: {} }),
      log: createLogger({ level: "silent", pretty: false }),
      canWrite: () => false,
    });
    await standby.startCaches();
    standby.startWebhook();
    const serving = (operator: Operator) => () => operator.webhookAddress() ?? assert.fail("not serving yet");
    const [leaderAddress, standbyAddress] = [
      await eventually(serving(leader)),
      await eventually(serving(standby)),
    ];

    const configuration: V1MutatingWebhookConfiguration = await chartWebhookConfiguration(
      webhookUrl(leaderAddress),
    );
    const [first] = configuration.webhooks ?? [];
    assert.ok(first !== undefined);
    const second = JSON.parse(JSON.stringify(first)) as typeof first;
    second.name = standbyWebhookName;
    second.clientConfig = { url: webhookUrl(standbyAddress) };
    configuration.webhooks = [first, second];
    await ready.plane.kubeConfig
      .makeApiClient(AdmissionregistrationV1Api)
      .createMutatingWebhookConfiguration({ body: configuration });
    await waitForPullSecret(ready, "rot-a", "rot-pull");
    await eventually(
      async () => {
        const before = await calls();
        await createPod(ready.core, "rot-a", "probe", { dryRun: true });
        const after = await calls();
        assert.ok(
          after.every((c, i) => c.answered > (before[i]?.answered ?? 0)),
          "not both answered yet",
        );
      },
      { timeoutMs: 30_000, intervalMs: 200, message: "both replicas answer the API server" },
    );
  });

  after(async () => {
    await stopStarted(standby, env);
  });

  it("admits every Pod through both replicas while serving certificates and CAs rotate", async (t) => {
    const before = await calls();
    const logsBefore = ready.logs.length;
    const deadline = Date.now() + creationWindowMs;
    const created: string[][] = [];
    const failures: string[] = [];
    // Two creators in parallel, each one Pod after the other until the window closes.
    await mapLimit([0, 1], 2, async (creator) => {
      for (let i = 0; Date.now() < deadline; i++) {
        try {
          const pod = await ready.core.createNamespacedPod({
            namespace: "rot-a",
            body: {
              metadata: { name: `rot-${creator}-${i}` },
              spec: {
                containers: [{ name: "app", image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1" }],
              },
            },
          });
          created.push(podPullSecrets(pod));
        } catch (err) {
          failures.push(err instanceof Error ? err.message : String(err));
        }
      }
    });
    const after = await calls();
    const written = ready.logs
      .slice(logsBefore)
      .filter((line) => line.includes('"webhook certificates written"'))
      .map((line) => JSON.parse(line) as { newCa: boolean; newServingCertificate: boolean });
    const caRotations = written.filter((w) => w.newCa).length;
    const servingRotations = written.filter((w) => w.newServingCertificate).length;
    const failedOpen = after.map((c, i) => c.failedOpen - (before[i]?.failedOpen ?? 0));
    const answered = after.map((c, i) => c.answered - (before[i]?.answered ?? 0));
    t.diagnostic(
      `${created.length} Pods in ${creationWindowMs / 1000} s; ${servingRotations} serving certificates and ` +
        `${caRotations} CAs issued; answered by leader/standby ${answered.join("/")}; ` +
        `failed open ${failedOpen.join("/")}; create errors ${failures.length}`,
    );
    assert.deepEqual(failures, []);
    assert.ok(created.length >= 50, `only ${created.length} Pods created`);
    assert.deepEqual(
      created.filter((entries) => !entries.includes("rot-pull")),
      [],
    );
    assert.deepEqual(failedOpen, [0, 0], "admission calls that failed and let the Pod through unchanged");
    assert.ok(
      answered.every((n) => n >= created.length),
      `answered ${answered.join("/")} of ${created.length}`,
    );
    assert.ok(servingRotations >= 8, `only ${servingRotations} serving certificates issued`);
    assert.ok(caRotations >= 1, "no CA rotation in the window");
  });
});
