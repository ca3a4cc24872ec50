// The Pod admission webhook's endpoint cut while Pods are created: the API server's connections to
// it reset, refused, or black-holed through a loopback TCP proxy. Pods must still be admitted
// within the webhook's timeout, unchanged where the webhook could not answer, and nothing else may
// fail: the operator keeps reconciling, logs no error, and the webhook answers again once the path
// is back.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Metrics } from "../../src/observability/metrics.ts";
import {
  createNamespace,
  createPullSecretCr,
  operatorNamespace,
  readSecret,
  startOperatorEnv,
  waitForPullSecret,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { stopStarted } from "../harness/processes.ts";
import { startTcpProxy, type TcpProxy } from "../harness/tcp-proxy.ts";
import { eventually } from "../harness/wait.ts";
import { createPod, podPullSecrets, registerWebhook, webhookCalls, webhookUrl } from "../harness/webhook.ts";
import { errorLines, waitForCr } from "./fixtures.ts";
import { assertNoLeaks, secretValues, webhookKeyFragments } from "./leaks.ts";
import { saveLogs, scenario, secondsBetween, type Figures } from "./results.ts";
import { byScale } from "./scale.ts";

/** The chart's timeoutSeconds: how long the API server waits for the webhook before admitting. */
const webhookTimeoutMs = 3_000;
/** Slack for the API server's own work on top of the webhook's timeout. */
const admissionSlackMs = 1_000;
const faultWindowMs = byScale(10_000, 30_000);
const secretName = "hook-pull";

interface Creation {
  ms: number;
  entries: string[];
}

describe("webhook endpoint faults", () => {
  let env: OperatorEnv | undefined;
  let proxy: TcpProxy | undefined;
  let ready: OperatorEnv;
  let wire: TcpProxy;
  const metrics = new Metrics();
  let podCount = 0;

  before(async () => {
    env = await startOperatorEnv({ startOperator: false, serviceAccountAdmission: true });
    ready = env;
    await createNamespace(ready, "hook-a");
    await createPullSecretCr(ready, "hook", { secretName, namespaces: ["hook-*"] });
    const operator = await ready.startOperator(
      { webhookAddr: "127.0.0.1:0", webhookCertHosts: "127.0.0.1" },
      { metrics },
    );
    const address = await eventually(() => operator.webhookAddress() ?? assert.fail("not serving yet"));
    proxy = await startTcpProxy(Number(address.slice(address.lastIndexOf(":") + 1)));
    wire = proxy;
    await registerWebhook(ready.plane.kubeConfig, webhookUrl(`127.0.0.1:${wire.port}`));
    await waitForCr(ready, "hook", { synced: 1 });
    await waitForAnswers();
  });

  after(async () => {
    if (env !== undefined) saveLogs("webhook-faults", env.logs);
    await stopStarted(proxy, env);
  });

  /** Waits until the API server's calls reach the webhook again. */
  async function waitForAnswers(): Promise<number> {
    const started = Date.now();
    await eventually(
      async () => {
        const before = await webhookCalls(ready.plane.kubeConfig);
        await createPod(ready.core, "hook-a", "probe", { dryRun: true });
        const after = await webhookCalls(ready.plane.kubeConfig);
        assert.ok(after.answered > before.answered, "the webhook did not answer");
      },
      { timeoutMs: 60_000, intervalMs: 200, message: "the webhook answers the API server" },
    );
    return Date.now() - started;
  }

  /** Two creators make Pods one after the other until the window closes; every create is timed. */
  async function createPodsFor(windowMs: number, during?: (elapsedMs: number) => void): Promise<Creation[]> {
    const windowStart = Date.now();
    const deadline = windowStart + windowMs;
    const creations: Creation[] = [];
    await Promise.all(
      [0, 1].map(async () => {
        while (Date.now() < deadline) {
          during?.(Date.now() - windowStart);
          podCount += 1;
          const started = performance.now();
          const pod = await ready.core.createNamespacedPod({
            namespace: "hook-a",
            body: {
              metadata: { name: `hook-${podCount}` },
              spec: {
                containers: [{ name: "app", image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1" }],
              },
            },
          });
          creations.push({ ms: performance.now() - started, entries: podPullSecrets(pod) });
        }
      }),
    );
    return creations;
  }

  /** Runs the fault while Pods are created and a new namespace must be synced; records the figures. */
  async function underFault(
    figures: Figures,
    start: () => void,
    whilePodsAreCreated?: (elapsedMs: number) => void,
  ): Promise<void> {
    const logsBefore = ready.logs.length;
    const callsBefore = await webhookCalls(ready.plane.kubeConfig);
    const late = `hook-late-${podCount}`;
    start();
    const faultStarted = Date.now();
    const [creations] = await Promise.all([
      createPodsFor(faultWindowMs, whilePodsAreCreated),
      (async () => {
        await createNamespace(ready, late);
        await waitForPullSecret(ready, late, secretName, "default", { timeoutMs: faultWindowMs + 30_000 });
      })(),
    ]);
    figures.faultSeconds = secondsBetween(faultStarted, Date.now());
    wire.setMode("forward");
    const callsAfter = await webhookCalls(ready.plane.kubeConfig);
    const slowest = Math.max(...creations.map((c) => c.ms));
    figures.podsAdmitted = `${creations.length}/${creations.length}`;
    figures.slowestCreateSeconds = Math.round(slowest / 100) / 10;
    figures.createsOver1s = creations.filter((c) => c.ms > 1000).length;
    figures.failedOpenCalls = callsAfter.failedOpen - callsBefore.failedOpen;
    figures.podsWithSecret = `${creations.filter((c) => c.entries.includes(secretName)).length}/${creations.length}`;
    figures.newNamespaceSynced =
      (await readSecret(ready, late, secretName)).type === "kubernetes.io/dockerconfigjson";
    const errors = errorLines(ready.logs.slice(logsBefore));
    figures.operatorErrorLines = errors.length;
    figures.webhookBackSeconds = Math.round((await waitForAnswers()) / 100) / 10;
    const cr = await waitForCr(ready, "hook");
    figures.crReady = cr.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";

    assert.ok(creations.length >= 4, `only ${creations.length} Pods created`);
    assert.ok(
      slowest < webhookTimeoutMs + admissionSlackMs,
      `a Pod took ${Math.round(slowest)} ms to be admitted (webhook timeout ${webhookTimeoutMs} ms)`,
    );
    assert.ok(figures.failedOpenCalls > 0, "the fault never reached the API server's calls");
    assert.deepEqual(errors, []);
    // The operator had patched hook-a's ServiceAccount, so the Pods got the entry from it.
    assert.equal(figures.podsWithSecret, `${creations.length}/${creations.length}`);
  }

  it("admits Pods within the webhook's timeout while its connections are reset or refused", async () => {
    await scenario("F9a", "webhook endpoint: connections reset and refused", async (figures) => {
      let lastCut = 0;
      await underFault(
        figures,
        () => {
          wire.setMode("forward");
        },
        (elapsedMs) => {
          // Half the window every open connection is reset (RST) every 100 ms; then none is accepted.
          if (elapsedMs > faultWindowMs / 2) {
            wire.setMode("refuse");
          } else if (Date.now() - lastCut > 100) {
            lastCut = Date.now();
            wire.cutAll();
          }
        },
      );
    });
  });

  it("admits Pods within the webhook's timeout while the webhook's endpoint is black-holed", async () => {
    await scenario("F9b", "webhook endpoint black-holed (bytes dropped, sockets open)", async (figures) => {
      await underFault(figures, () => {
        wire.setMode("stall");
      });
    });
  });

  it("never puts a secret or a private key in a log line, Event or status during webhook faults", async () => {
    await scenario("L7", "no secret leaked: webhook faults", async (figures) => {
      const keys = await webhookKeyFragments(
        ready.core,
        operatorNamespace,
        "ecr-creds-refresher-webhook-tls",
      );
      assert.equal(keys.length, 2, "the webhook Secret holds both private keys");
      await assertNoLeaks(figures, {
        core: ready.core,
        objects: ready.objects,
        logs: ready.logs,
        secrets: secretValues(keys),
      });
    });
  });
});
